"""`cdk synth` through the pinned CDK CLI, as `make synth` runs it, without network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from infra.bytecode import find_python
from tests.infra.conftest import ROOT

CDK = ROOT / "node_modules" / ".bin" / "cdk"


def offline_prefix() -> list[str]:
    """``unshare -n`` (a network namespace with no interfaces) where this machine allows it."""
    if shutil.which("unshare") is None:
        return []
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return ["unshare", "-n"] if probe.returncode == 0 else []


def test_the_cdk_cli_is_pinned_to_v2():
    # aws-cdk 3.x cannot read the cloud assembly aws-cdk-lib 2.x writes.
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert pinned.split(".")[0] == "2", pinned
    locked = json.loads((ROOT / "package-lock.json").read_text())
    assert locked["packages"]["node_modules/aws-cdk"]["version"] == pinned


@pytest.mark.slow
def test_cdk_synth_works_offline_and_bundles_the_layer_locally(tmp_path, record_property):
    assert CDK.exists(), "node_modules is missing: run `make install` (npm ci)"
    # No credentials of any kind, so the CLI cannot ask STS or instance metadata for a
    # default account: the synthesized stacks stay environment-agnostic.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_DEFAULT_"))}
    env.update(
        CDK_DISABLE_CLI_TELEMETRY="true",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    # Given no network at all (where the machine lets us take it away)
    command = [*offline_prefix(), str(CDK), "synth", "--quiet", "--output", str(tmp_path)]
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False
    )
    seconds = time.monotonic() - started
    record_property("synth_seconds", round(seconds, 1))
    print(f"cdk synth: {seconds:.1f} s ({'offline' if command[0] == 'unshare' else 'online'})")
    assert result.returncode == 0, result.stderr[-4000:]
    # Then both stacks are in the cloud assembly, and the layer asset was built locally
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = {
        k for k, v in manifest["artifacts"].items() if v["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {"Tickerserve-dev-Storage", "Tickerserve-dev-Serving"}
    layers = [p.parent.parent for p in tmp_path.glob("asset.*/lib/libgomp.so.1")]
    assert len(layers) == 1
    assert (layers[0] / "python" / "lightgbm" / "lib" / "lib_lightgbm.so").is_file()
    assets = [p.parent.parent for p in tmp_path.glob("asset.*/tickerserve/__init__.py")]
    assert len(assets) == 2  # the prediction function's and the monitor function's
    for asset in assets:
        # Bytecode for the runtime's Python only, when this machine has it (never the host's)
        compiled = {p.name.split(".", 1)[1] for p in asset.rglob("*.pyc")}
        assert compiled == ({"cpython-313.pyc"} if find_python() else set())
        assert not list(asset.glob("*.egg-info"))
        assert not (asset / "tickerserve" / "cli").exists()  # the command line never ships
    (serving,) = [a / "tickerserve" for a in assets if (a / "tickerserve" / "handler.py").exists()]
    (monitor,) = [a / "tickerserve" for a in assets if (a / "tickerserve" / "monitor").exists()]
    # The publishing library is publisher-side: not in the prediction function's asset;
    # the monitor promotes through it, and ships no HTTP layer
    assert not (serving / "publishing").exists()
    assert (serving / "serving" / "service.py").is_file()
    assert (monitor / "monitor" / "handler.py").is_file()
    assert (monitor / "publishing" / "promotion.py").is_file()
    assert not (monitor / "http").exists()
    assert "docker" not in result.stderr.lower()


def test_infra_never_imports_the_runtime_package():
    for source in [*(ROOT / "infra").rglob("*.py"), ROOT / "app.py"]:
        text = source.read_text()
        assert "import tickerserve" not in text and "from tickerserve" not in text, source
