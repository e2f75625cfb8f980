"""The Docker-free dependency layer: cache key, contents, size, and, under the Lambda
runtime's Python (3.13) with nothing but the layer and a function asset on the path, a real
prediction, an ONNX model run by onnxruntime and a monitor run."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from infra.bundling import (
    LAMBDA_UNZIPPED_LIMIT,
    LAYER_BUDGET,
    LAYER_PYTHON_DIR,
    MAX_SYMBOL_VERSIONS,
    NOT_SHIPPED,
    PYTHON_VERSION,
    UNUSED_PARTS,
    LayerBuildError,
    LayerSpec,
    build_layer,
    check_dependencies,
    required_symbol_versions,
    tree_size,
)
from infra.bytecode import FIXED_MTIME, find_python
from infra.constructs.dependency_layer import RUNTIME
from infra.function_asset import CODE_ROOT, MONITOR_FILES, PREDICTION_FILES, stage_function_code
from tests.family_support import families, rows
from tests.network_support import gru_answers, networks, ppo_answers
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
def test_layer_fits_its_budget_and_lambda_with_the_function_code(layer: Path, record_property):
    size = tree_size(layer)
    code = tree_size(stage_function_code(CODE_ROOT, PREDICTION_FILES, python=PYTHON_313).path)
    record_property("layer_unzipped_mib", round(size / 2**20, 1))
    print(f"layer unzipped: {size / 2**20:.1f} MiB; function code {code / 2**10:.0f} KiB")
    assert size <= LAYER_BUDGET  # 160 MiB with every model family, ONNX included
    assert size + code < LAMBDA_UNZIPPED_LIMIT
    manifest = json.loads((layer / "layer.json").read_text())
    assert manifest["unzipped_bytes"] <= size  # the manifest itself is counted in size


def distributions(python: Path) -> dict[str, str]:
    """Installed distributions and their versions, from the .dist-info folder names."""
    names = (p.name.removesuffix(".dist-info") for p in python.glob("*.dist-info"))
    return {name.split("-")[0]: name.split("-")[1] for name in names}


@pytest.mark.slow
def test_layer_holds_lightgbm_4_treelite_numpy_onnxruntime_and_libgomp_but_no_scipy(
    layer: Path,
):
    python = layer / "python"
    versions = distributions(python)
    assert versions["lightgbm"].startswith("4.")
    assert versions["treelite"].startswith("4.")
    assert {"numpy", "onnxruntime", "aws_lambda_powertools", "orjson"} <= set(versions)
    # Nothing the functions never import: no scipy (104 MiB), no scikit-learn or xgboost
    for absent in ("scipy", "scipy.libs", "narwhals", "google", "flatbuffers", "packaging"):
        assert not (python / absent).exists(), absent
    assert not set(versions) & {"scipy", "narwhals", "protobuf", "flatbuffers", "packaging"}
    assert not (python / "sklearn").exists()
    # XGBoost's C library and the OpenMP runtime its wheel bundles, none of its Python
    assert not list((python / "xgboost").rglob("*.py"))
    assert elf_machine(python / "xgboost" / "lib" / "libxgboost.so") == 62
    assert list((python / "xgboost_cpu.libs").glob("libgomp-*.so*"))
    # onnxruntime without its offline tools and C-API library, with its provider bridge
    for part in UNUSED_PARTS:
        assert not list(python.glob(part)), part
    capi = python / "onnxruntime" / "capi"
    assert (capi / "libonnxruntime_providers_shared.so").is_file()
    (binding,) = capi.glob("onnxruntime_pybind11_state.cpython-313-*.so")
    assert elf_machine(binding) == 62  # x86_64
    assert (layer / "lib" / "libgomp.so.1").is_file()
    assert elf_machine(python / "lightgbm" / "lib" / "lib_lightgbm.so") == 62
    assert elf_machine(layer / "lib" / "libgomp.so.1") == 62


def test_a_dependency_neither_pinned_nor_declared_unused_fails_the_build(tmp_path):
    # Given a requirements file whose distribution needs one that is not pinned
    (tmp_path / "requirements.txt").write_text("orjson==3.13.0\n")
    spec = LayerSpec(requirements=tmp_path / "requirements.txt")
    python = tmp_path / "python"
    for name, requires in (
        ("lightgbm", ["numpy", "scipy", "narwhals>=1.15", "pandas; extra == 'pandas'"]),
        ("numpy", []),
        ("onnxruntime", ["numpy>=1.21.6", "protobuf", "coloredlogs", "sympy; extra == 'x'"]),
        ("bdist", ["pywin32; sys_platform == 'win32'"]),
    ):
        info = python / f"{name}-1.0.dist-info"
        info.mkdir(parents=True)
        lines = [f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
        (info / "METADATA").write_text("\n".join(lines) + "\n")
    # When the installed tree is checked / Then the one undeclared dependency is named
    with pytest.raises(LayerBuildError, match=r"^onnxruntime needs coloredlogs: pin it in"):
        check_dependencies(python, spec)
    # and declared ones (scipy, narwhals, protobuf), extras and other platforms pass
    assert {"scipy", "narwhals", "protobuf"} <= set(NOT_SHIPPED)
    (python / "coloredlogs-1.0.dist-info").mkdir()
    (python / "coloredlogs-1.0.dist-info" / "METADATA").write_text("Name: coloredlogs\n")
    check_dependencies(python, spec)


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


@pytest.mark.slow
def test_arm64_layer_carries_aarch64_binaries_within_the_budget(record_property):
    # Given the arm64 build (Graviton), built on this x86_64 machine by pip alone (it cannot
    # be imported here: that needs an aarch64 machine or an emulator)
    arm = build_layer(LayerSpec.for_architecture("arm64"))
    python = arm / "python"
    # Then LightGBM 4, Treelite, onnxruntime and libgomp are aarch64 (ELF machine 183), not the
    # host's x86_64 (62)
    assert elf_machine(python / "lightgbm" / "lib" / "lib_lightgbm.so") == 183
    assert elf_machine(arm / "lib" / "libgomp.so.1") == 183
    assert elf_machine(python / "treelite" / "lib" / "libtreelite.so") == 183
    (binding,) = (python / "onnxruntime" / "capi").glob("onnxruntime_pybind11_state.*.so")
    assert elf_machine(binding) == 183
    versions = distributions(python)
    assert versions["lightgbm"].startswith("4.") and "onnxruntime" in versions
    assert not set(versions) & {"scipy", "narwhals", "protobuf", "flatbuffers", "packaging"}
    for part in UNUSED_PARTS:
        assert not list(python.glob(part)), part
    # and the same budget holds
    size = tree_size(arm)
    record_property("arm64_layer_unzipped_mib", round(size / 2**20, 1))
    assert size <= LAYER_BUDGET


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
libraries = sorted({line.split()[-1] for line in maps if ".so" in line.split()[-1]})
import numpy
print("RESULT " + json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "status": [r["statusCode"] for r in responses],
    "body": [json.loads(r["body"]) for r in responses],
    "libraries": libraries,
    "numpy": numpy.__file__,
    "loaded": sorted({m.split(".")[0] for m in sys.modules}),
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
    # ... with numpy, LightGBM's and Treelite's C libraries and the OpenMP runtime taken
    # from the layer
    assert outcome["numpy"].startswith(str(layer / "python"))
    libraries = outcome["libraries"]
    for name in ("lib_lightgbm.so", "libtreelite.so", "libxgboost.so"):
        (found,) = [x for x in libraries if x.endswith(f"/{name}")]
        assert found.startswith(str(layer.resolve() / "python")), found
    # the layer's OpenMP runtime, and the copy XGBoost's wheel links its library against
    gomp = sorted(x for x in libraries if "libgomp" in x)
    assert str((layer / "lib" / "libgomp.so.1").resolve()) in gomp
    assert all(x.startswith(str(layer.resolve())) for x in gomp), gomp
    # ... and neither those libraries' Python packages nor scipy, scikit-learn or xgboost
    assert not {"lightgbm", "treelite", "scipy", "sklearn", "xgboost"} & set(outcome["loaded"])


@pytest.mark.slow
def test_built_layer_serves_a_gru_window_and_a_ppo_observation_under_python_3_13(
    layer: Path, tmp_path
):
    if PYTHON_313 is None:
        pytest.skip(NO_PYTHON_313)
    code = stage_function_code(CODE_ROOT, PREDICTION_FILES, python=PYTHON_313).path
    # Given seed 001's GRU and PPO policy, converted and published by the real publisher
    store = tmp_path / "store"
    gru, ppo = networks()["gru"], networks()["ppo"]
    for ticker, network in (("GRUX", gru), ("PPOX", ppo)):
        publish_bundle(LocalStore(store), network.converted.bundle, registry_key=REGISTRY_KEY,
                       routes={ticker: "stock"})  # fmt: skip
    rng = np.random.default_rng(12)
    window = rng.normal(scale=6, size=(8, 5)).astype(np.float32).astype(np.float64)
    observation = rng.normal(scale=6, size=6).astype(np.float32).astype(np.float64)
    used = gru.converted.bundle.metadata.used_features
    bodies = [
        {"ticker": "GRUX", "features": [dict(zip(used, r.tolist(), strict=True)) for r in window]},
        {"ticker": "PPOX", "features": observation.tolist()},
    ]
    paths = []
    for i, body in enumerate(bodies):
        event = json.loads((EVENTS / "rest_predict.json").read_text())
        event["body"] = json.dumps(body)
        paths.append(tmp_path / f"network{i}.json")
        paths[-1].write_text(json.dumps(event))
    # When the handler answers them from the layer alone under the runtime's Python
    outcome, _ = run_313(
        CHILD, layer, code, tmp_path, str(layer), str(code), *map(str, paths),
        TICKERSERVE_STORE_PATH=str(store), TICKERSERVE_CACHE_DIR=str(tmp_path / "cache"),
    )  # fmt: skip
    # Then they answer what torch and stable-baselines3 answer, with neither installed
    assert outcome["status"] == [200, 200], outcome["body"]
    gru_body, ppo_body = outcome["body"]
    want = gru_answers(gru, window[None])[0, 0]
    assert abs(gru_body["prediction"] - want) <= 1e-5 * max(1.0, abs(want))
    _, probabilities, values = ppo_answers(ppo, observation[None])
    got = np.array(list(ppo_body["probabilities"].values()))
    np.testing.assert_allclose(got, probabilities[0], atol=1e-5)
    assert abs(ppo_body["value"] - values[0]) <= 1e-5 * max(1.0, abs(values[0]))
    assert {"onnxruntime", "numpy"} <= set(outcome["loaded"])
    assert not {"torch", "stable_baselines3", "sklearn", "scipy"} & set(outcome["loaded"])


def run_313(
    script: str, layer: Path, code: Path, tmp_path: Path, *args: str, **env: str
) -> tuple[dict, str]:
    """Run ``script`` under Python 3.13 with -S -s -B and only the layer and ``code`` on the
    path, a fresh environment; returns its RESULT line and its stderr."""
    result = subprocess.run(
        [str(PYTHON_313), "-S", "-s", "-B", "-c", script, *args],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PYTHONPATH": f"{layer / 'python'}:{code}",
            "LD_LIBRARY_PATH": str(layer / "lib"),
            "AWS_DEFAULT_REGION": "us-east-1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")), result.stderr


ONNX_CHILD = """
import json, sys
assert not any("site-packages" in p for p in sys.path), sys.path
import numpy as np
import onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
rows = np.asarray(json.loads(sys.argv[2]), dtype=np.float32)
(probabilities,) = session.run(None, {"x": rows})
print("RESULT " + json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "onnxruntime": ort.__file__,
    "version": ort.get_version_string(),
    "providers": session.get_providers(),
    "inputs": [(i.name, i.shape) for i in session.get_inputs()],
    "output": probabilities.tolist(),
    "loaded": sorted({m.split(".")[0] for m in sys.modules}),
}))
"""


def tiny_onnx_model(path: Path, weights: np.ndarray, bias: np.ndarray) -> None:
    """sigmoid(x @ weights + bias) as an ONNX graph, built with the onnx package's helpers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n_in, n_out = weights.shape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", n_out])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime 1.2x and newer all read
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.mark.slow
def test_built_layer_runs_an_onnx_model_under_python_3_13(layer: Path, tmp_path):
    if PYTHON_313 is None:
        pytest.skip(NO_PYTHON_313)
    # Given a MatMul + Add + Sigmoid graph and the prediction function's asset
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(5, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    tiny_onnx_model(tmp_path / "tiny.onnx", weights, bias)
    rows = rng.normal(scale=2.0, size=(4, 5)).astype(np.float32)
    code = stage_function_code(CODE_ROOT, PREDICTION_FILES, python=PYTHON_313).path
    # When onnxruntime from the layer (trimmed of its tools) runs it on one thread
    outcome, stderr = run_313(
        ONNX_CHILD, layer, code, tmp_path, str(tmp_path / "tiny.onnx"), json.dumps(rows.tolist())
    )
    # Then the answer is the graph's, computed from the layer's onnxruntime under 3.13
    assert outcome["python"] == PYTHON_VERSION
    assert outcome["onnxruntime"].startswith(str(layer / "python"))
    assert outcome["version"] == distributions(layer / "python")["onnxruntime"]
    assert outcome["providers"] == ["CPUExecutionProvider"]
    assert outcome["inputs"] == [["x", ["batch", 5]]]
    want = 1.0 / (1.0 + np.exp(-(rows.astype(np.float64) @ weights + bias)))
    np.testing.assert_allclose(outcome["output"], want, rtol=1e-6, atol=1e-7)
    # ... importing none of the dependencies the layer leaves out, and logging no warning
    assert not set(NOT_SHIPPED) & set(outcome["loaded"])
    assert "google" not in outcome["loaded"] and "onnx" not in outcome["loaded"]
    assert "onnxruntime" not in stderr.lower(), stderr


MONITOR_CHILD = """
import json, sys
from pathlib import Path
assert not any("site-packages" in p for p in sys.path), sys.path
try:
    import scipy
    scipy_found = scipy.__file__
except ImportError:
    scipy_found = None
from tickerserve.monitor.handler import MonitorSettings, run_scheduled

class CloudWatch:  # what the run sends to PutMetricData, kept instead of sent
    def __init__(self):
        self.data = []

    def put_metric_data(self, Namespace, MetricData):
        self.data.extend(MetricData)

cloudwatch = CloudWatch()
event = json.loads(Path(sys.argv[1]).read_text())
summary = run_scheduled(event, MonitorSettings.from_env(), cloudwatch=cloudwatch)
import numpy
print("RESULT " + json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "summary": summary,
    "metrics": len(cloudwatch.data),
    "scipy": scipy_found,
    "numpy": numpy.__file__,
    "loaded": sorted({m.split(".")[0] for m in sys.modules}),
}, default=str))
"""


@pytest.mark.slow
def test_built_layer_runs_the_monitor_function_under_python_3_13(layer: Path, tmp_path, models):
    if PYTHON_313 is None:
        pytest.skip(NO_PYTHON_313)
    from scipy import special

    from tests.monitor_support import past_wins, set_shadow
    from tests.unit.monitor.test_evaluate import smh_store, traffic
    from tickerserve.layout import MONITORING_HISTORY_KEY
    from tickerserve.storage.history import read_records

    # Given a week of shadow traffic where the challenger is right far more often
    store = LocalStore(tmp_path / "store")
    names = smh_store(store, models, metrics={"accuracy": 0.62})
    set_shadow(store, "etfs/SMH", "challenger")
    traffic(store, names, models.smh.metadata.classes, champion_right=0.6, challenger_right=0.7)
    # and the two daily runs before today's (the function dates its run by its clock) that the
    # challenger won too: seed 003's three days in a row
    today = datetime.now(UTC).date()
    past_wins(store, before=today)
    # When the scheduled run fires in the monitor function's asset over the same layer
    code = stage_function_code(CODE_ROOT, MONITOR_FILES, python=PYTHON_313).path
    outcome, _ = run_313(
        MONITOR_CHILD,
        layer,
        code,
        tmp_path,
        str(EVENTS / "scheduler_monitor.json"),
        TICKERSERVE_STORE_PATH=str(tmp_path / "store"),
    )
    # Then it judged the week, wrote the history and sent its metrics, with no scipy at hand
    assert outcome["python"] == PYTHON_VERSION
    assert outcome["scipy"] is None
    assert outcome["numpy"].startswith(str(layer / "python"))
    summary = outcome["summary"]
    assert (summary["since"], summary["until"]) == ("2026-12-01", "2026-12-08")
    assert summary["models"][0]["action"] == "switch", summary["models"][0]
    assert outcome["metrics"] == summary["metrics_sent"] > 0
    assert not {"scipy", "sklearn", "lightgbm", "treelite"} & set(outcome["loaded"])
    # ... and McNemar's p-value is the one scipy's bdtr gives for the same counts
    *_, line = read_records(store, MONITORING_HISTORY_KEY).records
    assert line["history"]["winning_days"] == [
        (today - timedelta(days=k)).isoformat() for k in (2, 1, 0)
    ]
    test = line["test"]
    assert test["name"] == "mcnemar_exact" and test["favours"] == "challenger"
    n, c_minus_b = test["n"], round(test["statistic"])
    smaller = (n - c_minus_b) // 2
    want = min(1.0, 2.0 * float(special.bdtr(smaller, n, 0.5)))
    assert test["p_value"] == pytest.approx(want, rel=1e-12)
    assert 0.0 < test["p_value"] < 0.05
