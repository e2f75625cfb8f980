"""The Lambda entry point in a fresh interpreter: what it imports and how init fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.constructs.monitoring import NAMESPACE as MONITORED_NAMESPACE
from infra.constructs.monitoring import SERVICE as MONITORED_SERVICE
from tests.support import EVENTS, populate
from tickerserve.storage.store import LocalStore

ROOT = Path(__file__).resolve().parents[2]

# The Lambda layer has no scikit-learn; the dev venv does, and lightgbm probes for it.
# Hiding it reproduces the Lambda environment, so a hard dependency on it would fail here.
CHILD = """
import json, sys
sys.modules["sklearn"] = None
FORBIDDEN = {"sklearn", "typer", "rich", "joblib", "aws_cdk", "click"}
# LightGBM models run on LightGBM's C library: its Python package would bring scipy.sparse,
# narwhals (and pandas where installed) into every cold start.
FORBIDDEN |= {"lightgbm", "scipy", "narwhals", "pandas"}
# Nor do the other tree engines and networks load for a LightGBM model: neither their Python
# packages nor their C libraries (libxgboost, libtreelite, onnxruntime's).
FORBIDDEN |= {"xgboost", "treelite", "onnxruntime"}
ENGINE_LIBRARIES = ("xgboost", "treelite", "onnxruntime")
# Nor Powertools' event handler (its resolvers, AppSync's asyncio, pydantic): POST /predict is
# answered from the event itself, and the other routes build a resolver when first asked.
FORBIDDEN |= {"asyncio", "pydantic"}
FORBIDDEN_PACKAGES = ("aws_lambda_powertools.event_handler",)
from tickerserve.handler import lambda_handler
class Context:
    function_name = "tickerserve-predict"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tickerserve-predict"
    memory_limit_in_mb = 1024
    aws_request_id = "8f4ab7f5-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/tickerserve-predict"
    log_stream_name = "2026/11/23/[$LATEST]0123456789abcdef"

    @staticmethod
    def get_remaining_time_in_millis():
        return 29000

event = json.load(open(sys.argv[1]))
response = lambda_handler(event, Context())
forbidden = sorted(
    name for name, module in sys.modules.items()
    if module is not None
    and (
        name.split(".")[0] in FORBIDDEN
        or name.startswith("tickerserve.cli")
        or name.startswith(FORBIDDEN_PACKAGES)
    )
)
with open("/proc/self/maps") as maps:
    libraries = {line.split()[-1].rsplit("/", 1)[-1] for line in maps if ".so" in line}
forbidden += sorted(x for x in libraries if any(engine in x for engine in ENGINE_LIBRARIES))
print("RESULT " + json.dumps({"status": response["statusCode"], "forbidden": forbidden}))
"""


def run_child(
    env: dict[str, str], event: str = "rest_predict.json"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(EVENTS / event)],
        env={**os.environ, "PYTHONPATH": str(ROOT / "lambda_src"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_handler_serves_lightgbm_without_sklearn_cli_libraries_or_other_engines(tmp_path, models):
    populate(LocalStore(tmp_path / "store"), models)
    result = run_child(
        {
            "TICKERSERVE_STORE_PATH": str(tmp_path / "store"),
            "TICKERSERVE_CACHE_DIR": str(tmp_path / "c"),
        }
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    outcome = json.loads(line.removeprefix("RESULT "))
    assert outcome == {"status": 200, "forbidden": []}


def test_invalid_setting_fails_init_with_the_variable_named(tmp_path):
    result = run_child({"TICKERSERVE_STORE_PATH": str(tmp_path), "TICKERSERVE_MEMORY_MB": "lots"})
    assert result.returncode != 0
    assert "TICKERSERVE_MEMORY_MB='lots' is not an integer" in result.stderr


def test_missing_store_configuration_fails_init(tmp_path):
    env = dict.fromkeys(("TICKERSERVE_BUCKET", "TICKERSERVE_STORE_PATH"), "")
    result = run_child(env)
    assert result.returncode != 0
    assert "set TICKERSERVE_BUCKET or TICKERSERVE_STORE_PATH" in result.stderr


# What the Python 3.12+ managed runtime does with SnapStart on: import the handler (init),
# run the before-snapshot hooks (last registered first), snapshot; later, in a restored
# sandbox, run the after-restore hooks in order, then invoke.
SNAPSTART_CHILD = """
import json, sys
sys.modules["sklearn"] = None
if sys.argv[2] == "absent":
    sys.modules["snapshot_restore_py"] = None  # a runtime without SnapStart support
from tickerserve.handler import API, OUTCOMES_API, SERVICE, lambda_handler
hooks = {"before": 0, "after": 0}
if sys.argv[2] == "present":
    from snapshot_restore_py import get_after_restore, get_before_snapshot
    before = get_before_snapshot()
    hooks["before"] = len(before)
    while before:
        func, args, kwargs = before.pop()
        func(*args, **kwargs)
    loaded_at_snapshot = [m["name"] for m in SERVICE.loaded()]
    resolvers_at_snapshot = sorted(
        f"{name}:{kind}" for name, api in (("prediction", API), ("outcomes", OUTCOMES_API))
        for kind in ("rest", "http") if kind in api.__dict__
    )
    for func, args, kwargs in get_after_restore():
        hooks["after"] += 1
        func(*args, **kwargs)
else:
    loaded_at_snapshot = resolvers_at_snapshot = None

class Context:
    function_name = "tickerserve-predict"
    function_version = "3"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tickerserve-predict:3"
    memory_limit_in_mb = 1024
    aws_request_id = "8f4ab7f5-0000-4000-8000-000000000001"

response = lambda_handler(json.load(open(sys.argv[1])), Context())
print("RESULT " + json.dumps({
    "status": response["statusCode"], "hooks": hooks, "loaded_at_snapshot": loaded_at_snapshot,
    "resolvers_at_snapshot": resolvers_at_snapshot,
}))
"""


def run_snapstart_child(env: dict[str, str], runtime: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SNAPSTART_CHILD, str(EVENTS / "rest_predict.json"), runtime],
        env={**os.environ, "PYTHONPATH": str(ROOT / "lambda_src"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_snapstart_runtime_runs_the_hooks_and_the_restored_sandbox_serves(tmp_path, models):
    # Given a function with SnapStart on and SMH preloaded
    populate(LocalStore(tmp_path / "store"), models)
    env = {
        "TICKERSERVE_STORE_PATH": str(tmp_path / "store"),
        "TICKERSERVE_CACHE_DIR": str(tmp_path / "c"),
        "TICKERSERVE_PRELOAD": "etfs/SMH",
    }
    # When the runtime snapshots and restores it
    outcome = run_snapstart_child(env, "present")
    # Then one hook of each kind ran, the snapshot held SMH and both APIs' resolvers (built on
    # first need otherwise), and the restored sandbox answers
    assert outcome == {
        "status": 200,
        "hooks": {"before": 1, "after": 1},
        "loaded_at_snapshot": ["etfs/SMH"],
        "resolvers_at_snapshot": [
            "outcomes:http",
            "outcomes:rest",
            "prediction:http",
            "prediction:rest",
        ],
    }


def test_without_snapstart_support_the_handler_still_starts(tmp_path, models):
    populate(LocalStore(tmp_path / "store"), models)
    env = {
        "TICKERSERVE_STORE_PATH": str(tmp_path / "store"),
        "TICKERSERVE_CACHE_DIR": str(tmp_path / "c"),
    }
    outcome = run_snapstart_child(env, "absent")
    assert outcome["status"] == 200
    assert outcome["hooks"] == {"before": 0, "after": 0}


def test_each_invocation_samples_registry_staleness_under_the_functions_own_dimension(
    tmp_path, models
):
    # Given the handler in a fresh interpreter, as Lambda runs it (its function name set)
    populate(LocalStore(tmp_path / "store"), models)
    result = run_child(
        {
            "TICKERSERVE_STORE_PATH": str(tmp_path / "store"),
            "TICKERSERVE_CACHE_DIR": str(tmp_path / "c"),
            "AWS_LAMBDA_FUNCTION_NAME": "tickerserve-dev-predict",
        }
    )
    assert result.returncode == 0, result.stderr
    # Then the invocation's metrics (EMF on stdout) carry RegistryStaleness in seconds, under
    # the namespace, service and function dimensions the stack's alarms watch
    emf = [json.loads(x) for x in result.stdout.splitlines() if '"_aws"' in x]
    staleness = [m for m in emf if "RegistryStaleness" in m]
    assert len(staleness) == 1
    (directive,) = staleness[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == MONITORED_NAMESPACE
    assert [sorted(d) for d in directive["Dimensions"]] == [["function", "service"]]
    assert staleness[0]["function"] == "tickerserve-dev-predict"
    assert staleness[0]["service"] == MONITORED_SERVICE
    assert {"Name": "RegistryStaleness", "Unit": "Seconds"} in directive["Metrics"]
    (seconds,) = staleness[0]["RegistryStaleness"]  # one sample, seconds since the read
    assert 0 <= seconds < 10


# Both entry points in one fresh interpreter, as each function imports the module.
ENTRY_CHILD = """
import json, sys
sys.modules["sklearn"] = None
from tickerserve.handler import lambda_handler, outcomes_handler

class Context:
    function_name = "tickerserve-outcomes"
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tickerserve-outcomes"
    memory_limit_in_mb = 512
    aws_request_id = "8f4ab7f5-0000-4000-8000-000000000002"

    @staticmethod
    def get_remaining_time_in_millis():
        return 29000

def event(name, path, body):
    e = json.load(open(sys.argv[1] + "/" + name))
    if "rawPath" in e:
        e["rawPath"] = e["rawPath"].rsplit("/", 1)[0] + path
        e["requestContext"]["http"]["path"] = e["rawPath"]
    else:
        e["path"] = e["resource"] = path
    e["body"] = json.dumps(body)
    return e

def answer(response):
    if "statusCode" in response:
        body = json.loads(response["body"])
        return [response["statusCode"], body.get("error", {}).get("code")]
    return ["direct", response.get("error", {}).get("code")]  # a direct answer has no status

outcome = {"outcomes": [{"request_id": "r-1", "label": "UP"}]}
predict = json.loads(json.load(open(sys.argv[1] + "/rest_predict.json"))["body"])
P, O = lambda_handler, outcomes_handler
calls = {
    "predict entry, REST POST /outcomes": (P, event("rest_predict.json", "/outcomes", outcome)),
    "predict entry, function URL POST /outcomes": (
        P, event("url_predict.json", "/outcomes", outcome)),
    "predict entry, direct outcomes": (P, {"action": "outcomes", **outcome}),
    "outcomes entry, REST POST /outcomes": (O, event("rest_predict.json", "/outcomes", outcome)),
    "outcomes entry, function URL POST /outcomes": (
        O, event("url_predict.json", "/outcomes", outcome)),
    "outcomes entry, direct outcomes": (O, {"action": "outcomes", **outcome}),
    "outcomes entry, REST POST /predict": (O, event("rest_predict.json", "/predict", predict)),
    "outcomes entry, direct predict": (O, predict),
}
results = {name: answer(handler(e, Context())) for name, (handler, e) in calls.items()}
print("RESULT " + json.dumps(results))
"""


def test_the_prediction_function_refuses_outcomes_and_the_outcomes_function_all_else(
    tmp_path, models
):
    # Given both entry points as the two functions run them, over one store
    store = LocalStore(tmp_path / "store")
    populate(store, models)
    result = subprocess.run(
        [sys.executable, "-c", ENTRY_CHILD, str(EVENTS)],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "lambda_src"),
            "TICKERSERVE_STORE_PATH": str(tmp_path / "store"),
            "TICKERSERVE_CACHE_DIR": str(tmp_path / "c"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    # Then each does its own work only, and refuses the other's with 403 wrong_entry_point
    assert json.loads(line.removeprefix("RESULT ")) == {
        "predict entry, REST POST /outcomes": [403, "wrong_entry_point"],
        "predict entry, function URL POST /outcomes": [403, "wrong_entry_point"],
        "predict entry, direct outcomes": ["direct", "wrong_entry_point"],
        "outcomes entry, REST POST /outcomes": [200, None],
        "outcomes entry, function URL POST /outcomes": [200, None],
        "outcomes entry, direct outcomes": ["direct", None],
        "outcomes entry, REST POST /predict": [403, "wrong_entry_point"],
        "outcomes entry, direct predict": ["direct", "wrong_entry_point"],
    }
    # And only the outcomes function wrote (one object: the three sends were one batch)
    assert len(list(store.list("outcomes/"))) == 1


def test_a_bad_per_model_setting_is_counted_and_the_model_still_answers(tmp_path, models):
    # Given a registry whose SMH canary weight is a string (written by hand)
    store = LocalStore(tmp_path / "store")
    populate(store, models)
    blob = store.get("metadata/asset_registry.json")
    assert blob is not None
    raw = json.loads(blob.data)
    raw["models"]["etfs/SMH"]["canary"] = {"alias": "production", "weight": "0.5"}
    store.put("metadata/asset_registry.json", json.dumps(raw).encode(), if_match=blob.etag)
    # When the function answers a prediction for SMH
    result = run_child(
        {
            "TICKERSERVE_STORE_PATH": str(tmp_path / "store"),
            "TICKERSERVE_CACHE_DIR": str(tmp_path / "c"),
            "AWS_LAMBDA_FUNCTION_NAME": "tickerserve-dev-predict",
        }
    )
    assert result.returncode == 0, result.stderr
    # Then it answers, and the invocation's metrics count the setting it cannot read
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    assert json.loads(line.removeprefix("RESULT "))["status"] == 200
    emf = [json.loads(x) for x in result.stdout.splitlines() if '"_aws"' in x]
    (sample,) = [m for m in emf if "InvalidModelSettings" in m]
    assert sample["InvalidModelSettings"] == [1.0]
    # and the log says which setting and how to repair it
    assert "etfs/SMH: canary setting is invalid" in result.stdout + result.stderr
    assert "`tickerserve canary etfs/SMH --off`" in result.stdout + result.stderr
