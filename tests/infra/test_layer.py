"""The Docker-free dependency layer: cache key, contents, size, and a real prediction
served from it under the Lambda runtime's Python (3.13)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from infra.bundling import (
    LAMBDA_UNZIPPED_LIMIT,
    LAYER_PYTHON_DIR,
    MAX_SYMBOL_VERSIONS,
    PYTHON_VERSION,
    LayerSpec,
    build_layer,
    required_symbol_versions,
    tree_size,
)
from infra.bytecode import FIXED_MTIME, find_python
from infra.constructs.dependency_layer import RUNTIME
from infra.function_asset import CODE_ROOT, PREDICTION_FILES, stage_function_code
from tests.family_support import families, rows
from tests.support import EVENTS, REGISTRY_KEY, populate
from tickerserve.publishing.demo import FEATURES
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.store import LocalStore

PYTHON_313 = find_python(PYTHON_VERSION)
NO_PYTHON_313 = (
    f"Python {PYTHON_VERSION} (the Lambda runtime's version) is not installed: looked for "
    f"python{PYTHON_VERSION} on PATH and ~/.pyenv/versions/{PYTHON_VERSION}.*; the layer "
    "cannot be imported and checked without it"
)


@pytest.fixture(scope="module")
def layer() -> Path:
    """The x86_64 layer, built once (about a minute cold) and then cached under build/."""
    return build_layer(LayerSpec.for_architecture("x86_64"))


def test_cache_key_follows_requirements_platform_python_and_bytecode(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("lightgbm==4.7.0\n")
    spec = LayerSpec(requirements=requirements)
    same = LayerSpec(requirements=requirements)
    assert spec.key == same.key
    assert replace(spec, architecture="arm64").key != spec.key
    assert replace(spec, python_version="3.12").key != spec.key
    assert replace(spec, bytecode_python=Path("/usr/bin/python3.13")).key != spec.key
    before = spec.key
    requirements.write_text("lightgbm==4.6.0\n")
    assert LayerSpec(requirements=requirements).key != before


def test_both_manylinux_tags_are_requested_so_lightgbm_4_resolves():
    assert LayerSpec(architecture="x86_64").platforms == (
        "manylinux_2_28_x86_64",
        "manylinux2014_x86_64",
    )
    assert LayerSpec(architecture="arm64").platforms[0] == "manylinux_2_28_aarch64"


@pytest.mark.slow
def test_layer_fits_lambda_with_the_function_code(layer: Path, record_property):
    size = tree_size(layer)
    code = tree_size(stage_function_code(CODE_ROOT, PREDICTION_FILES, python=PYTHON_313).path)
    record_property("layer_unzipped_mib", round(size / 2**20, 1))
    print(f"layer unzipped: {size / 2**20:.1f} MiB; function code {code / 2**10:.0f} KiB")
    assert size + code < LAMBDA_UNZIPPED_LIMIT
    manifest = json.loads((layer / "layer.json").read_text())
    assert manifest["unzipped_bytes"] <= size  # the manifest itself is counted in size


@pytest.mark.slow
def test_layer_holds_lightgbm_4_treelite_numpy_scipy_and_libgomp_but_no_sklearn(layer: Path):
    python = layer / "python"
    versions = {p.name.split("-")[0]: p.name.split("-")[1] for p in python.glob("*.dist-info")}
    assert versions["lightgbm"].startswith("4.")
    assert versions["treelite"].startswith("4.")
    assert {"numpy", "scipy", "aws_lambda_powertools"} <= set(versions)
    assert not (python / "sklearn").exists()
    assert not (python / "xgboost").exists()
    assert (layer / "lib" / "libgomp.so.1").is_file()
    assert elf_machine(python / "lightgbm" / "lib" / "lib_lightgbm.so") == 62  # x86_64
    assert elf_machine(layer / "lib" / "libgomp.so.1") == 62


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


@pytest.mark.slow
def test_arm64_layer_carries_aarch64_binaries():
    # Given the arm64 build (Graviton), built on this x86_64 machine by pip alone
    arm = build_layer(LayerSpec.for_architecture("arm64"))
    # Then LightGBM 4 and libgomp are aarch64 (ELF machine 183), not the host's x86_64 (62)
    assert elf_machine(arm / "python" / "lightgbm" / "lib" / "lib_lightgbm.so") == 183
    assert elf_machine(arm / "lib" / "libgomp.so.1") == 183
    assert elf_machine(arm / "python" / "treelite" / "lib" / "libtreelite.so") == 183
    assert any(p.name.startswith("lightgbm-4.") for p in (arm / "python").glob("*.dist-info"))
    assert tree_size(arm) < LAMBDA_UNZIPPED_LIMIT


def test_function_runtime_matches_the_python_the_layer_is_built_for():
    assert RUNTIME.name == f"python{PYTHON_VERSION}"


@pytest.mark.slow
def test_layer_has_no_tests_stubs_or_foreign_bytecode(layer: Path):
    python = layer / "python"
    assert not list(python.rglob("tests"))
    assert not list(python.rglob("*.pyi"))
    foreign = [p for p in python.rglob("*.pyc") if ".cpython-313." not in p.name]
    assert foreign == []


@pytest.mark.slow
def test_layer_bytecode_records_lambda_paths_not_the_build_folder(layer: Path):
    if PYTHON_313 is None:
        pytest.skip(NO_PYTHON_313)
    # A .pyc records its source path; the build folder's name would make every build differ.
    compiled = layer / "python" / "lightgbm" / "__pycache__" / "basic.cpython-313.pyc"
    data = compiled.read_bytes()
    assert f"{LAYER_PYTHON_DIR}/lightgbm/basic.py".encode() in data
    assert str(layer.parent).encode() not in data
    assert b".building-" not in data
    assert int.from_bytes(data[4:8], "little") == 0b01  # unchecked hash, no mtime inside
    assert {p.stat().st_mtime for p in (layer / "python" / "lightgbm").rglob("*")} == {FIXED_MTIME}


@pytest.mark.slow
def test_no_binary_needs_a_newer_glibc_or_libstdcxx_than_amazon_linux_2023(layer: Path):
    for library in [*layer.rglob("*.so"), layer / "lib" / "libgomp.so.1"]:
        for family, version in required_symbol_versions(library).items():
            assert version <= MAX_SYMBOL_VERSIONS[family], (library, family, version)


# Runs in a fresh interpreter that sees only the stdlib, the layer and lambda_src/.
CHILD = """
import json, sys
from pathlib import Path
layer, code = (Path(p) for p in sys.argv[1:3])
event_files = [Path(p) for p in sys.argv[3:]]
assert not any("site-packages" in p for p in sys.path), sys.path

from tickerserve.handler import lambda_handler

class Context:
    function_name = "tickerserve-prediction"
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tickerserve:live"
    memory_limit_in_mb = 2048
    aws_request_id = "5f0c9e4e-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/tickerserve-prediction"
    log_stream_name = "2026/11/23/[1]0123456789abcdef"

    @staticmethod
    def get_remaining_time_in_millis():
        return 29000

responses = [lambda_handler(json.loads(f.read_text()), Context()) for f in event_files]
maps = Path("/proc/self/maps").read_text().splitlines()
gomp = sorted({line.split()[-1] for line in maps if "libgomp" in line})
import lightgbm, numpy, scipy, treelite
print("RESULT " + json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "status": [r["statusCode"] for r in responses],
    "body": [json.loads(r["body"]) for r in responses],
    "libgomp": gomp,
    "modules": {m.__name__: m.__file__ for m in (lightgbm, numpy, scipy, treelite)},
    "sklearn_loaded": "sklearn" in sys.modules,
    "xgboost_loaded": "xgboost" in sys.modules,
}))
"""


@pytest.mark.slow
def test_built_layer_serves_a_prediction_under_python_3_13(layer: Path, tmp_path, models):
    if PYTHON_313 is None:
        pytest.skip(NO_PYTHON_313)
    # The function asset exactly as synth stages it (serving modules and their bytecode)
    code = stage_function_code(CODE_ROOT, PREDICTION_FILES, python=PYTHON_313).path
    # Given a local model store published by the real publisher: the demo LightGBM models,
    # an XGBoost classifier and a RandomForest regressor (Treelite members)
    store = tmp_path / "store"
    populate(LocalStore(store), models)
    treelite_events = []
    for ticker, name in (("XGBC", "xgboost_classifier"), ("RFRG", "random_forest_regressor")):
        family = families()[name]
        publish_bundle(
            LocalStore(store),
            family.bundle(f"families/{name}"),
            registry_key=REGISTRY_KEY,
            routes={ticker: "stock"},
        )
        event = json.loads((EVENTS / "rest_predict.json").read_text())
        row = rows(1, missing=True, seed=4)[0]
        features = {
            n: None if np.isnan(v) else float(v) for n, v in zip(FEATURES, row, strict=True)
        }
        event["body"] = json.dumps({"ticker": ticker, "features": features})
        (tmp_path / f"{ticker}.json").write_text(json.dumps(event))
        treelite_events.append((tmp_path / f"{ticker}.json", family, row))
    # When the handler runs from the layer alone: -S drops the interpreter's own
    # site-packages, -B keeps the cached layer free of new bytecode, and the environment
    # is built from scratch so nothing from this test process leaks in.
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": f"{layer / 'python'}:{code}",
        "LD_LIBRARY_PATH": str(layer / "lib"),
        "TICKERSERVE_STORE_PATH": str(store),
        "TICKERSERVE_CACHE_DIR": str(tmp_path / "cache"),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    args = [str(layer), str(code), str(EVENTS / "rest_predict.json")]
    args += [str(path) for path, _, _ in treelite_events]
    result = subprocess.run(
        [str(PYTHON_313), "-S", "-s", "-B", "-c", CHILD, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    outcome = json.loads(line.removeprefix("RESULT "))
    # Then a prediction comes back from Python 3.13 ...
    assert outcome["python"] == PYTHON_VERSION
    assert outcome["status"] == [200, 200, 200], outcome["body"]
    body = outcome["body"][0]
    assert body["ticker"] == "SMH"
    assert body["model"]["name"] == "etfs/SMH"
    assert body["prediction"] in body["probabilities"]
    # ... and the Treelite members answer exactly what XGBoost and scikit-learn answered
    xgb_body, rf_body = outcome["body"][1:]
    (_, xgb_family, xgb_row), (_, rf_family, rf_row) = treelite_events
    want = xgb_family.reference(xgb_row.reshape(1, -1))[0]
    assert np.allclose(list(xgb_body["probabilities"].values()), want, rtol=1e-9, atol=1e-12)
    assert np.isclose(rf_body["prediction"], rf_family.reference(rf_row.reshape(1, -1))[0])
    # ... with every compiled dependency and the OpenMP runtime taken from the layer
    assert all(path.startswith(str(layer / "python")) for path in outcome["modules"].values())
    assert outcome["libgomp"] == [str((layer / "lib" / "libgomp.so.1").resolve())]
    assert outcome["sklearn_loaded"] is False
    assert outcome["xgboost_loaded"] is False
