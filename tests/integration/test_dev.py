"""``make serve`` end to end: moto, demo models published through the CLI, the local server,
and a clean stop of everything it started."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.serving import ROOT, http, is_listening, post_json, running
from tests.support import free_port
from tickerserve.cli.demo_set import DEMO_MODELS
from tickerserve.cli.dev import has_registry
from tickerserve.publishing.demo import FEATURES

DEV = [sys.executable, "-m", "tickerserve.cli.dev"]
ROW = [0.1] * len(FEATURES)


@pytest.fixture(scope="module")
def models_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workdir per module, so the demo models are trained once."""
    return tmp_path_factory.mktemp("dev-workdir")


def test_make_serve_publishes_the_demo_set_through_the_cli_and_stops_everything(
    models_cache: Path,
):
    # Given the orchestration started on free ports, as `make serve` starts it
    port, moto_port = free_port(), free_port()
    argv = [
        *DEV,
        "--port",
        str(port),
        "--moto-port",
        str(moto_port),
        "--workdir",
        str(models_cache),
    ]
    with running(argv, port=port, log=models_cache / "dev.log") as dev:
        # When the server answers
        page = http(f"{dev.url}/models").json()
        models, routes = page["models"], page["routes"]
        # Then every demo model is there, on its production alias, with its tickers routed
        assert {
            m["name"]: sorted(r["ticker"] for r in routes if r["model"] == m["name"])
            for m in models
        } == {m.name: sorted(m.tickers) for m in DEMO_MODELS}
        assert all(m["aliases"] == {"production": "1.0.0"} for m in models)
        health = http(f"{dev.url}/health").json()
        assert health["store"] == "s3://tickerserve-demo"
        for model in DEMO_MODELS:
            ticker = model.tickers[-1]
            reply = post_json(f"{dev.url}/predict", {"ticker": ticker, "features": ROW})
            assert reply.json()["model"]["name"] == model.name
        # ... and it got there through tickerserve commands against the moto server
        endpoint = f"http://127.0.0.1:{moto_port}"
        log = dev.output()
        for model in DEMO_MODELS:
            folder = models_cache / "models" / model.name
            routes = " ".join(f"--route {ticker}" for ticker in model.tickers)
            publish = f"{endpoint} publish {folder} --model {model.name} --alias production"
            assert f"{publish} {routes}" in log
        # ... in one step each: no note about a model no ticker routes to yet
        assert "no ticker routes to" not in log
        # ... and a printed command works when pasted into a shell without AWS credentials
        printed = next(line for line in log.splitlines() if line.startswith("$ tickerserve"))
        pasted = paste(printed.removeprefix("$ "), models_cache)
        assert pasted.returncode == 0, pasted.stderr
        assert is_listening(moto_port)
        # When it is interrupted (Ctrl-C)
        code = dev.stop(signal.SIGINT)
        # Then it exits cleanly and leaves neither the server nor moto running
        assert code == 0, dev.output()
        assert not is_listening(port)
        assert not is_listening(moto_port)


def paste(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``command`` run as a person's shell would: no AWS credentials, profile or region."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TICKERSERVE_"))}
    env.update(HOME=str(home / "home"), AWS_EC2_METADATA_DISABLED="true")
    argv = shlex.split(command)
    argv[0] = str(Path(sys.executable).with_name(argv[0]))  # the venv's console script
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_store_mode_publishes_the_demo_set_into_an_empty_store(models_cache: Path, tmp_path: Path):
    # Given an empty local folder store (make serve STORE=...)
    store = tmp_path / "store"
    port = free_port()
    argv = [*DEV, "--port", str(port), "--store", str(store), "--workdir", str(models_cache)]
    # When make serve runs on it
    with running(argv, port=port, log=tmp_path / "dev.log") as dev:
        # Then the demo models are published into it and served from it
        health = http(f"{dev.url}/health").json()
        assert (health["store"], health["registry"]["models"]) == (str(store), len(DEMO_MODELS))
        assert f"--store {store} publish" in dev.output()
        # and SIGTERM stops it cleanly, leaving the store for the next run (which publishes
        # nothing: it finds the registry)
        assert dev.stop(signal.SIGTERM) == 0, dev.output()
    assert has_registry(store)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_serve_passes_its_variables_on():
    # When make shows what `make serve` would run with every variable set
    result = subprocess.run(
        ["make", "-n", "serve", "PORT=8123", "MOTO_PORT=5123", "STORE=some dir"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    # Then the orchestration gets them as options
    command = result.stdout.replace("\\\n", " ")
    assert "-m tickerserve.cli.dev --port 8123 --moto-port 5123" in command
    assert '--store "some dir"' in command


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_destroy_removes_the_stages_stacks_and_asks_unless_forced():
    def planned(*variables: str) -> str:
        result = subprocess.run(
            ["make", "-n", "destroy", *variables], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        # (under an outer make, the output also has make's "Entering directory" lines)
        return next(line for line in result.stdout.splitlines() if "cdk destroy" in line)

    assert planned("STAGE=prod").split() == [
        "npx", "cdk", "destroy", "--all", "-c", "tickerserve:stage=prod"
    ]  # fmt: skip
    assert planned("FORCE=1").endswith("tickerserve:stage=dev --force")
