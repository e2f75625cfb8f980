"""``make serve`` end to end: moto, demo models published through the CLI, the local server,
and a clean stop of everything it started."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.integration.serving import ROOT, Running, http, is_listening, post_json, running
from tests.seed_support import seed_folder, seed_models
from tests.support import free_port
from tickerserve.cli.demo_set import DEMO_MODELS, ensure_demo_folders
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
        # ... and a printed command works as printed in a new shell (clean PATH, no AWS
        # credentials) after the one activation line it prints
        printed = next(line for line in log.splitlines() if line.startswith("$ tickerserve"))
        pasted = new_shell(activation_line(log), printed.removeprefix("$ "), models_cache)
        assert pasted.returncode == 0, pasted.stderr
        assert is_listening(moto_port)
        # When it is interrupted (Ctrl-C)
        code = dev.stop(signal.SIGINT)
        # Then it exits cleanly and leaves neither the server nor moto running
        assert code == 0, dev.output()
        assert not is_listening(port)
        assert not is_listening(moto_port)


def activation_line(log: str) -> str:
    """The shell line make serve prints for using its commands in another shell."""
    match = re.search(r"in another shell, `([^`]+)` makes the tickerserve commands", log)
    assert match, log
    return match.group(1)


def new_shell(activation: str, command: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``command`` run as a person's new terminal would after ``activation``: in another
    folder, with a clean PATH without the virtual environment, no AWS credentials, profile or
    region."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home / "home"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "LANG": "C.UTF-8",
    }
    script = f"{activation} && {command}"
    (home / "home").mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        cwd=home / "home",  # a new terminal opens elsewhere than the clone
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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


class DevRun:
    """``make serve`` (the orchestration) on free ports over one workdir, as a person runs it
    again and again in the same clone."""

    def __init__(self, workdir: Path, tmp: Path) -> None:
        self.workdir = workdir
        self.tmp = tmp
        self.runs = 0
        self.moto_port = 0

    def argv(self, port: int, moto_port: int, *extra: str) -> list[str]:
        return [*DEV, "--port", str(port), "--moto-port", str(moto_port),
                "--workdir", str(self.workdir), "--save-every", "0.5", *extra]  # fmt: skip

    def start(self, *extra: str) -> AbstractContextManager[Running]:
        self.runs += 1
        port, self.moto_port = free_port(), free_port()
        log = self.tmp / f"dev-{self.runs}.log"
        return running(self.argv(port, self.moto_port, *extra), port=port, log=log)

    @property
    def target(self) -> str:
        """The global options of the commands make serve prints."""
        return f"--bucket tickerserve-demo --endpoint-url http://127.0.0.1:{self.moto_port}"

    def cli(self, activation: str, command: str) -> str:
        """``tickerserve`` in another terminal, as the README shows; its output."""
        result = new_shell(activation, f"tickerserve {self.target} {command}", self.tmp)
        assert result.returncode == 0, result.stderr
        return result.stdout


def saved_keys(workdir: Path) -> set[str]:
    manifest = workdir / "bucket" / "manifest.json"
    return set(json.loads(manifest.read_text())["objects"]) if manifest.is_file() else set()


def captured_objects(moto_port: int) -> list[str]:
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}")
    listing = client.list_objects_v2(Bucket="tickerserve-demo", Prefix="capture/")
    return [item["Key"] for item in listing.get("Contents", [])]


def registry_revision(moto_port: int) -> int:
    """The revision of the registry the bucket holds now."""
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}")
    body = client.get_object(Bucket="tickerserve-demo", Key="metadata/asset_registry.json")["Body"]
    return int(json.loads(body.read())["revision"])


def rows_of(models: list[dict[str, Any]]) -> dict[str, int]:
    """Captured rows per model in a monitor run's report."""
    return {m["model"]: m["rows"] for m in models}


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.2)


def test_make_serve_keeps_what_was_published_imported_captured_and_monitored(
    models_cache: Path, tmp_path: Path
):
    # Given make serve's first run in a clone (its workdir: the demo models already trained)
    workdir = tmp_path / "serve"
    ensure_demo_folders(models_cache / "models")  # trained once per module
    shutil.copytree(models_cache / "models", workdir / "models")
    dev_run = DevRun(workdir, tmp_path)
    seed = seed_folder(tmp_path / "seed/models_storage/etfs/IWM/production",
                       seed_models().smh, seed_models().smh_encoder)  # fmt: skip
    with dev_run.start() as dev:
        shell = activation_line(dev.output())

        def cli(command: str) -> str:
            return dev_run.cli(shell, command)

        # When a person publishes a second SMH version, imports a seed model, predicts (capture),
        # reports the outcome and runs the monitor
        cli(f"publish {workdir}/models/etfs/SPY --model etfs/SMH --alias staging")
        cli(f"import-seed {seed.parents[2]}")
        answer = http(f"{dev.url}/predict", "POST", json.dumps({"ticker": "SMH", "features": ROW}),
                      {"Content-Type": "application/json", "X-Request-Id": "kept-1"})  # fmt: skip
        assert answer.status == 200
        outcome = {"outcomes": [{"request_id": "kept-1", "label": answer.json()["prediction"]}]}
        assert post_json(f"{dev.url}/outcomes", outcome).json()["failed"] == 0
        wait_for(lambda: captured_objects(dev_run.moto_port), "capture written (every 5 s)")
        # the server reads the registry again after its cache time (5 s): wait for the last write
        revision = registry_revision(dev_run.moto_port)
        wait_for(lambda: http(f"{dev.url}/models").json()["revision"] == revision,
                 f"the server serving registry revision {revision}")  # fmt: skip
        before = {
            "models": http(f"{dev.url}/models").json(),
            "monitoring": json.loads(cli("monitor run --json"))["models"],
        }
        history = cli("history monitoring --json")
        assert json.loads(history), "the monitor run wrote history"
        # and stops it with Ctrl-C (the terminal signals the foreground process group)
        os.killpg(dev.process.pid, signal.SIGINT)
        assert dev.process.wait(timeout=30) == 0, dev.output()
        assert "saved " in dev.output() and " to " in dev.output()
        assert not is_listening(dev_run.moto_port)

    # When make serve runs again
    with dev_run.start() as dev:
        log = dev.output()
        # Then it says where the bucket came from, publishes nothing, and serves what was there
        assert "restored " in log and f"from {workdir / 'bucket'}" in log
        assert "publishing" not in log and "FRESH=1" in log
        assert http(f"{dev.url}/models").json() == before["models"]
        assert "etfs/IWM" in {m["name"] for m in before["models"]["models"]}
        shell = activation_line(log)
        assert json.loads(dev_run.cli(shell, "outcomes list --json"))[0]["request_id"] == "kept-1"
        assert dev_run.cli(shell, "history monitoring --json") == history
        # ... the captured row is there too: the monitor run finds the same rows again
        again = json.loads(dev_run.cli(shell, "monitor run --json --no-history"))["models"]
        assert rows_of(again) == rows_of(before["monitoring"])
        assert rows_of(again)["etfs/SMH"] == 1
        # When it crashes (kill -9) after answering another request
        saved = saved_keys(workdir)
        reply = http(f"{dev.url}/predict", "POST", json.dumps({"ticker": "SPY", "features": ROW}),
                     {"Content-Type": "application/json", "X-Request-Id": "kept-2"})  # fmt: skip
        assert reply.status == 200
        wait_for(lambda: len(saved_keys(workdir) - saved) > 0, "a periodic save of the capture")
        os.kill(dev.process.pid, signal.SIGKILL)
        dev.process.wait()
        # Then the moto server it started does not outlive it
        wait_for(lambda: not is_listening(dev_run.moto_port), "moto exits with its parent", 10)

    # When it runs after the crash, the periodic save has what was captured before it
    with dev_run.start() as dev:
        run = "monitor run --json --no-history --model etfs/SPY"
        rows = json.loads(dev_run.cli(activation_line(dev.output()), run))["models"]
        assert dev.stop(signal.SIGTERM) == 0, dev.output()
    assert rows and rows[0].get("rows")

    # When it runs with FRESH=1: the demo models alone, published again
    with dev_run.start("--fresh") as dev:
        assert "starting clean: removed" in dev.output()
        names = {m["name"] for m in http(f"{dev.url}/models").json()["models"]}
        assert names == {m.name for m in DEMO_MODELS}
