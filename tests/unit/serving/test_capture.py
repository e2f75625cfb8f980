"""Request ids and capture records for single, batch and direct calls, with every field."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.capture_support import ListSink
from tests.support import EVENTS, DemoModels, load_event, populate
from tickerserve.http.api import Api
from tickerserve.publishing.demo import FEATURES
from tickerserve.serving.capture import Capture, LogSink, dumps
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.store import LocalStore

EVENT_FEATURES = json.loads(load_event("rest_predict.json")["body"])["features"]
GENERATED = re.compile(r"[0-9a-f]{32}")
RECORD_KEYS = {
    "kind", "v", "time", "request_id", "source", "ticker", "signal", "timeframe", "model",
    "version", "alias", "role", "task", "features", "output", "challengers", "latency_us",
}  # fmt: skip


class BrokenSink:
    def write(self, data: bytes) -> None:
        raise OSError("disk full")


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory, models: DemoModels) -> Path:
    root = tmp_path_factory.mktemp("store")
    populate(LocalStore(root), models)
    return root


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def api(store_dir: Path, tmp_path: Path, sink: ListSink) -> Api:
    settings = Settings(store_path=str(store_dir), cache_dir=str(tmp_path / "cache"))
    return Api(ModelService(settings), capture=Capture(sink))


def rest(path: str, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    event = load_event("rest_predict.json")
    event["path"] = event["resource"] = path
    event["body"] = json.dumps(body)
    event["headers"] = {**event["headers"], **(headers or {})}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    return event


def answer(api: Api, event: dict[str, Any]) -> dict[str, Any]:
    response = api.handle(event, None)
    assert response["statusCode"] == 200, response["body"]
    return dict(json.loads(response["body"]))


# -- request ids ------------------------------------------------------------------------------


def test_the_clients_header_id_is_the_answers_request_id(api: Api):
    body = answer(api, rest("/predict", {"ticker": "SPY", "features": EVENT_FEATURES},
                            {"X-Request-Id": "order-17:a"}))  # fmt: skip
    assert body["request_id"] == "order-17:a"


def test_a_lower_case_header_from_an_http_api_is_found(api: Api):
    event = load_event("http_predict.json")
    event["headers"]["x-request-id"] = "trade.42"
    assert answer(api, event)["request_id"] == "trade.42"


def test_the_body_field_is_used_without_a_header_and_the_header_wins_over_it(api: Api):
    body = {"ticker": "SPY", "features": EVENT_FEATURES, "request_id": "from-body"}
    assert answer(api, rest("/predict", body))["request_id"] == "from-body"
    both = answer(api, rest("/predict", body, {"x-REQUEST-id": "from-header"}))
    assert both["request_id"] == "from-header"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "semi;colon", "ünï"])
def test_an_unusable_client_id_is_replaced_by_a_generated_one(api: Api, bad: str):
    body = {"ticker": "SPY", "features": EVENT_FEATURES, "request_id": bad}
    rid = answer(api, rest("/predict", body, {"X-Request-Id": bad}))["request_id"]
    assert GENERATED.fullmatch(rid)


def test_without_any_id_each_answer_gets_its_own_generated_id(api: Api):
    event = rest("/predict", {"ticker": "SPY", "features": EVENT_FEATURES})
    first, second = answer(api, event), answer(api, event)
    assert GENERATED.fullmatch(first["request_id"])
    assert first["request_id"] != second["request_id"]


def test_batch_items_take_their_own_id_else_the_batch_id_and_their_index(api: Api):
    items = [
        {"ticker": "SPY", "features": EVENT_FEATURES},
        {"ticker": "SMH", "features": EVENT_FEATURES, "request_id": "mine"},
        {"ticker": "NOPE", "features": EVENT_FEATURES},
    ]
    body = answer(api, rest("/predict/batch", {"items": items}, {"X-Request-Id": "b7"}))
    assert body["request_id"] == "b7"
    assert [r["request_id"] for r in body["results"]] == ["b7-0", "mine", "b7-2"]
    assert body["results"][2]["error"]["code"] == "unknown_ticker"


# -- capture records ----------------------------------------------------------------------------


def test_a_single_prediction_is_captured_with_every_field(api: Api, sink: ListSink):
    # Given SMH's model, which uses 6 of its 12 features, and one feature sent as null
    features = dict(EVENT_FEATURES, rsi_14=None)
    before = datetime.now(UTC)
    # When a client predicts with its own request id
    body = answer(api, rest("/predict", {"ticker": "smh", "features": features},
                            {"X-Request-Id": "r-1"}))  # fmt: skip
    # Then exactly one record says what was answered, to whom, from which inputs
    (record,) = sink.records
    assert set(record) == RECORD_KEYS
    assert record["kind"] == "capture" and record["v"] == 1
    assert record["request_id"] == "r-1"
    assert record["source"] == "api"
    assert (record["ticker"], record["signal"], record["timeframe"]) == ("SMH", "strategy", None)
    assert (record["model"], record["version"], record["alias"]) == (
        "etfs/SMH", "1.0.0", "production",
    )  # fmt: skip
    assert (record["role"], record["task"]) == ("champion", "classification")
    used = [FEATURES[i] for i in (0, 2, 4, 6, 8, 10)]
    assert record["features"] == {n: features[n] for n in used}
    assert record["features"]["rsi_14"] is None
    assert record["output"] == {
        "label": body["prediction"],
        "probabilities": body["probabilities"],
    }
    assert record["challengers"] == []
    assert isinstance(record["latency_us"], int) and record["latency_us"] > 0
    time = datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
    assert record["time"].endswith("Z")
    assert before - timedelta(seconds=1) <= time <= datetime.now(UTC)


def test_list_features_are_captured_by_name(api: Api, sink: ListSink):
    row = [EVENT_FEATURES[n] for n in FEATURES]
    answer(api, rest("/predict", {"ticker": "SPY", "features": row}))
    assert sink.records[0]["features"] == dict(zip(FEATURES, row, strict=True))


def test_a_batch_captures_one_record_per_scored_item(api: Api, sink: ListSink):
    items = [
        {"ticker": "SPY", "features": EVENT_FEATURES},
        {"ticker": "NOPE", "features": EVENT_FEATURES},
        {"ticker": "AAPL", "features": EVENT_FEATURES, "alias": "production"},
        {"ticker": "SPY", "features": {"rsi_14": 1.0}},
    ]
    body = answer(api, rest("/predict/batch", {"items": items}, {"X-Request-Id": "B"}))
    assert (body["succeeded"], body["failed"]) == (2, 2)
    records = {r["request_id"]: r for r in sink.records}
    assert set(records) == {"B-0", "B-2"}  # failed items are not captured
    assert all(r["source"] == "batch" for r in records.values())
    assert records["B-2"]["model"] == "stocks/universal"
    for result in body["results"]:
        if "error" not in result:
            record = records[result["request_id"]]
            assert record["output"]["label"] == result["prediction"]
            assert record["output"]["probabilities"] == result["probabilities"]
            assert set(record) == RECORD_KEYS


def test_direct_invocations_are_captured_as_direct(api: Api, sink: ListSink):
    single = api.handle({"ticker": "SPY", "features": EVENT_FEATURES, "request_id": "d1"}, None)
    batch = api.handle(
        {"action": "predict_batch", "items": [{"ticker": "AAPL", "features": EVENT_FEATURES}],
         "request_id": "db"}, None,
    )  # fmt: skip
    assert single["request_id"] == "d1"
    assert batch["results"][0]["request_id"] == "db-0"
    assert [(r["request_id"], r["source"]) for r in sink.records] == [
        ("d1", "direct"), ("db-0", "direct"),
    ]  # fmt: skip


def test_a_failing_sink_never_fails_the_request_and_is_counted(store_dir: Path, tmp_path: Path):
    events: list[str] = []
    capture = Capture(BrokenSink(), on_event=events.append)
    api = Api(
        ModelService(Settings(store_path=str(store_dir), cache_dir=str(tmp_path))),
        capture=capture,
    )
    body = answer(api, rest("/predict", {"ticker": "SPY", "features": EVENT_FEATURES}))
    assert body["prediction"]
    assert (capture.failures, capture.records) == (1, 0)
    assert events == ["CaptureFailures"]


def test_without_capture_nothing_is_recorded(store_dir: Path, tmp_path: Path):
    api = Api(ModelService(Settings(store_path=str(store_dir), cache_dir=str(tmp_path))))
    assert not api.capture.enabled
    answer(api, rest("/predict", {"ticker": "SPY", "features": EVENT_FEATURES}))
    assert api.capture.records == 0


def test_the_log_sink_writes_whole_json_lines_to_its_file_descriptor(tmp_path: Path):
    with open(tmp_path / "stdout", "wb") as out:
        sink = LogSink(out.fileno())
        sink.write(dumps({"kind": "capture", "n": 0}))
        sink.write(b"".join(dumps({"kind": "capture", "n": i}) for i in (1, 2)))
    text = (tmp_path / "stdout").read_text()
    assert [json.loads(line)["n"] for line in text.splitlines()] == [0, 1, 2]
    assert text.endswith("\n")


def test_nan_features_serialize_as_null_and_times_end_in_z():
    line = dumps({"x": float("nan"), "t": datetime(2026, 12, 1, 22, 29, 14, 123456, UTC)})
    assert json.loads(line) == {"x": None, "t": "2026-12-01T22:29:14.123456Z"}


HANDLER = """
import json, sys
from tickerserve.handler import lambda_handler
class Context:
    function_name = "tickerserve-predict"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tickerserve-predict"
    aws_request_id = "8f4ab7f5-0000-4000-8000-000000000000"
response = lambda_handler(json.load(open(sys.argv[1])), Context())
print("STATUS", response["statusCode"])
"""


@pytest.mark.parametrize(("switch", "expected"), [("on", 1), ("off", 0)])
def test_the_lambda_handler_prints_capture_records_as_their_own_log_lines(
    store_dir: Path, tmp_path: Path, switch: str, expected: int
):
    # Given the Lambda handler in a fresh interpreter with TICKERSERVE_CAPTURE set
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "lambda_src"),
        "TICKERSERVE_STORE_PATH": str(store_dir),
        "TICKERSERVE_CACHE_DIR": str(tmp_path / "cache"),
        "TICKERSERVE_CAPTURE": switch,
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
    }
    # When it answers one API Gateway event
    result = subprocess.run(
        [sys.executable, "-c", HANDLER, str(EVENTS / "rest_predict.json")],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "STATUS 200" in result.stdout, result.stderr
    # Then stdout (what CloudWatch Logs receives) holds the record as one whole JSON line,
    # beside the other log lines, which the subscription filter's pattern does not match
    records = []
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            parsed = json.loads(line)
            if parsed.get("kind") == "capture":
                records.append(parsed)
    assert len(records) == expected
    if records:
        assert (records[0]["source"], records[0]["model"]) == ("api", "etfs/SMH")
