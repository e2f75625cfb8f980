"""``tickerserve serve`` as a real process: HTTP in, the Lambda code path, HTTP out."""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import pytest

from tests.capture_support import read_capture
from tests.integration.conftest import DemoBucket
from tests.integration.serving import (
    TICKERSERVE,
    Running,
    child_env,
    http,
    is_listening,
    post_json,
    running,
)
from tests.support import REGISTRY_KEY, free_port, load_event
from tickerserve.cli.demo_set import DEMO_MODELS
from tickerserve.http.api import Api
from tickerserve.publishing.demo import FEATURES, STRATEGIES
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.store import LocalStore

FEATURE_VALUES = json.loads(load_event("rest_predict.json")["body"])["features"]
ROW = [FEATURE_VALUES[name] for name in FEATURES]


def test_predict_for_an_etf_is_exactly_what_the_lambda_handler_answers(
    local_server: Running, demo_bucket: DemoBucket, tmp_path: Path
):
    # Given the demo models served over HTTP and the same bucket behind an in-process Api
    api = Api(ModelService(Settings(cache_dir=str(tmp_path)), store=demo_bucket.store))
    body = {"ticker": "SPY", "features": FEATURE_VALUES, "request_id": "same-request"}
    event = load_event("rest_predict.json")
    event["body"] = json.dumps(body)
    expected = json.loads(api.handle(event, None)["body"])
    # When the same body is posted to the local server
    reply = post_json(f"{local_server.url}/predict", body)
    # Then the answer is identical, from the ETF's own production model
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert body == expected
    assert body["model"] == {"name": "etfs/SPY", "version": "1.0.0", "alias": "production"}
    assert math.isclose(sum(body["probabilities"].values()), 1.0, rel_tol=1e-9)
    assert body["prediction"] in STRATEGIES


def test_an_explanation_is_answered_as_the_lambda_handler_answers_it(
    local_server: Running, demo_bucket: DemoBucket, tmp_path: Path
):
    # Given the demo models served over HTTP and the same bucket behind an in-process Api
    api = Api(ModelService(Settings(cache_dir=str(tmp_path)), store=demo_bucket.store))
    body = {"ticker": "SPY", "features": FEATURE_VALUES, "request_id": "why", "explain": 4}
    event = load_event("rest_predict.json")
    event["body"] = json.dumps(body)
    expected = json.loads(api.handle(event, None)["body"])
    # When the same body is posted to the local server
    reply = post_json(f"{local_server.url}/predict", body)
    # Then the answer carries the same four largest contributions
    assert reply.status == 200
    assert reply.json() == expected
    contributions = expected["explanation"]["contributions"]
    assert len(contributions) == 4 and set(contributions) <= set(FEATURES)


def test_a_stock_is_served_by_the_universal_model(local_server: Running):
    # Given a stock routed to the shared model; When predicting with a list of features
    reply = post_json(f"{local_server.url}/predict", {"ticker": "nvda", "features": ROW})
    # Then the universal model answers with all five strategies
    assert reply.status == 200
    body = reply.json()
    assert body["ticker"] == "NVDA"
    assert body["model"]["name"] == "stocks/universal"
    assert list(body["probabilities"]) == STRATEGIES


def test_batch_answers_each_item_or_its_error(local_server: Running):
    # Given a batch with a good ETF, a good stock and an unknown ticker
    items = [
        {"ticker": "QQQ", "features": FEATURE_VALUES},
        {"ticker": "AAPL", "features": ROW},
        {"ticker": "NOPE", "features": ROW},
    ]
    # When it is posted
    reply = post_json(f"{local_server.url}/predict/batch", {"items": items})
    # Then results come back in order, the unknown ticker as a per-item error
    assert reply.status == 200
    body = reply.json()
    assert (body["succeeded"], body["failed"]) == (2, 1)
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert body["results"][0]["model"]["name"] == "etfs/QQQ"
    assert body["results"][1]["model"]["name"] == "stocks/universal"
    assert body["results"][2]["error"]["code"] == "unknown_ticker"


def test_models_lists_every_demo_model_with_its_tickers(local_server: Running):
    reply = http(f"{local_server.url}/models")
    assert reply.status == 200
    page = reply.json()
    served = {
        m["name"]: (m["aliases"], sorted(r["ticker"] for r in page["routes"] if r["model"] == name))
        for m in page["models"]
        for name in [m["name"]]
    }
    assert served == {m.name: ({"production": "1.0.0"}, sorted(m.tickers)) for m in DEMO_MODELS}
    assert page["next"] is None


def test_model_detail_for_a_lower_case_ticker(local_server: Running):
    # When asking for /models/{ticker} (path parameter) in lower case
    reply = http(f"{local_server.url}/models/aapl")
    # Then the route, inputs and outputs of the serving model are described
    assert reply.status == 200
    body = reply.json()
    assert (body["ticker"], body["model"]["name"]) == ("AAPL", "stocks/universal")
    assert body["feature_names"] == FEATURES
    assert body["classes"] == STRATEGIES


def test_health_reports_the_store_and_registry(local_server: Running, demo_bucket: DemoBucket):
    reply = http(f"{local_server.url}/health")
    assert reply.status == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert body["store"] == f"s3://{demo_bucket.store.bucket}"
    assert body["registry"]["models"] == len(DEMO_MODELS)
    assert body["registry"]["tickers"] == sum(len(m.tickers) for m in DEMO_MODELS)


def test_openapi_document_describes_routes_and_request_bodies(local_server: Running):
    # When fetching the OpenAPI document
    reply = http(f"{local_server.url}/openapi.json")
    # Then it lists the six API routes (not the docs routes) with useful schemas
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    doc = reply.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] == "tickerserve"
    assert set(doc["paths"]) == {
        "/predict",
        "/predict/batch",
        "/outcomes",
        "/models",
        "/models/{ticker}",
        "/health",
    }
    predict = doc["paths"]["/predict"]["post"]
    schema = predict["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["ticker", "features"]
    assert {"200", "400", "404", "413", "503"} <= set(predict["responses"])
    answer = predict["responses"]["200"]["content"]["application/json"]["schema"]
    # a label with probabilities, a value (or named values), or a box policy's action
    classifier, regressor, policy = answer["oneOf"]
    assert {"prediction", "confidence", "probabilities"} <= set(classifier["required"])
    assert regressor["required"] == ["ticker", "model", "prediction"]
    assert {"type": "number"} in regressor["properties"]["prediction"]["oneOf"]
    assert policy["required"] == ["ticker", "model", "action"]
    results = doc["paths"]["/predict/batch"]["post"]["responses"]["200"]["content"]
    items = results["application/json"]["schema"]["properties"]["results"]["items"]["oneOf"]
    assert [i["title"] for i in items] == [
        "BatchClassPrediction", "BatchValuePrediction", "BatchActionPrediction", "BatchError"
    ]  # fmt: skip
    batch = doc["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"]["properties"]["items"]["items"]["required"] == ["ticker", "features"]
    ticker = doc["paths"]["/models/{ticker}"]["get"]["parameters"][0]
    assert (ticker["name"], ticker["in"]) == ("ticker", "path")


def test_the_request_examples_in_the_openapi_document_work(local_server: Running):
    # Given every request example the docs page offers under "Try it out"
    doc = http(f"{local_server.url}/openapi.json").json()
    for path in ("/predict", "/predict/batch"):
        examples = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        for name, example in examples["examples"].items():
            # When it is posted; Then the demo models accept it
            reply = post_json(f"{local_server.url}{path}", example["value"])
            assert reply.status == 200, (path, name, reply.body)


def test_docs_page_is_served_without_any_cdn(local_server: Running):
    reply = http(f"{local_server.url}/docs")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    page = reply.body.decode()
    assert "SwaggerUIBundle" in page
    assert "/predict/batch" in page  # the document is inlined in the page
    assert 'src="http' not in page and 'href="http' not in page  # assets inlined too


def test_query_strings_reach_the_api(local_server: Running):
    # Powertools' docs route answers ?format=json with the document itself
    reply = http(f"{local_server.url}/docs?format=json")
    assert reply.status == 200
    assert "/predict" in reply.json()["paths"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"ticker": "SMH", "features": ', "invalid_json"),
        (b"", "invalid_body"),
        (b"\xff\xfe not utf-8", "invalid_body"),
        (b'{"ticker": "SMH"}', "missing_field"),
        (b'{"ticker": "SMH", "features": [1, 2]}', "wrong_feature_count"),
    ],
)
def test_a_bad_body_is_a_400_with_an_error_code(local_server: Running, body: bytes, code: str):
    reply = http(f"{local_server.url}/predict", "POST", body, {"Content-Type": "application/json"})
    assert reply.status == 400
    assert reply.json()["error"]["code"] == code


def test_unknown_ticker_and_unknown_route_are_json_404s(local_server: Running):
    reply = post_json(f"{local_server.url}/predict", {"ticker": "ZZZZ", "features": ROW})
    assert (reply.status, reply.json()["error"]["code"]) == (404, "unknown_ticker")
    reply = http(f"{local_server.url}/admin")
    assert (reply.status, reply.json()["error"]["code"]) == (404, "route_not_found")


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/models"), ("TRACE", "/predict")])
def test_wrong_method_on_a_known_path_is_405_with_allow(local_server: Running, method, path):
    reply = http(f"{local_server.url}{path}", method)
    assert (reply.status, reply.json()["error"]["code"]) == (405, "method_not_allowed")
    assert reply.headers["Allow"] == ("GET" if path == "/models" else "POST")


def test_a_form_post_is_415(local_server: Running):
    # What `curl -d '{...}'` sends without -H 'Content-Type: application/json'
    body = json.dumps({"ticker": "SMH", "features": ROW})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    reply = http(f"{local_server.url}/predict", "POST", body, headers)
    assert (reply.status, reply.json()["error"]["code"]) == (415, "unsupported_media_type")


def test_oversize_request_is_refused_before_it_is_read(local_server: Running):
    # Given a request announcing 11 MB, more than API Gateway accepts
    connection = HTTPConnection("127.0.0.1", local_server.port, timeout=10)
    try:
        connection.putrequest("POST", "/predict")
        connection.putheader("Content-Length", str(11 * 1024 * 1024))
        connection.endheaders()
        # When only the headers are sent; Then the answer comes at once and closes the connection
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"]["code"] == "body_too_large"
    finally:
        connection.close()


def test_keep_alive_connection_serves_several_requests(local_server: Running):
    connection = HTTPConnection("127.0.0.1", local_server.port, timeout=10)
    try:
        for ticker in ("SMH", "XLF", "MSFT"):
            body = json.dumps({"ticker": ticker, "features": ROW})
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["ticker"] == ticker
    finally:
        connection.close()


def test_concurrent_requests_each_get_their_own_answer(local_server: Running):
    # Given many clients at once (the resolver keeps the current event on itself)
    tickers = [m.tickers[0] for m in DEMO_MODELS] * 8

    def ask(ticker: str) -> str:
        reply = post_json(f"{local_server.url}/predict", {"ticker": ticker, "features": ROW})
        assert reply.status == 200
        return str(reply.json()["ticker"])

    # When they all post; Then every answer is for the ticker that was asked
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(ask, tickers)) == tickers


def test_one_log_line_per_request(local_server: Running):
    # Deterministic: the server writes the line before it sends the answer (unit-tested with
    # a slow log sink in tests/unit/cli/test_localserver.py).
    http(f"{local_server.url}/models/xlf")

    def logged() -> list[str]:
        return [
            line for line in local_server.output().splitlines() if "GET /models/xlf 200" in line
        ]

    # The server logs a request right after sending its answer, so the client can read the
    # answer first: wait for the line (the wait ends as soon as it is there).
    deadline = time.monotonic() + 10
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = logged()
    assert len(lines) == 1
    assert " ms " in lines[0]
    assert '"_aws"' not in local_server.output()  # no CloudWatch metrics (EMF) lines


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory, demo_bundles) -> Path:
    root = tmp_path_factory.mktemp("small-store")
    publish_bundle(
        LocalStore(root), demo_bundles["etfs/SMH"], registry_key=REGISTRY_KEY, routes={"SMH": "etf"}
    )
    return root


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize(
    "ignored",
    [(), (signal.SIGINT, signal.SIGTERM)],
    ids=["in-a-terminal", "started-with-both-ignored"],
)
def test_ctrl_c_and_sigterm_stop_the_server_cleanly_and_flush_capture(
    small_store: Path, tmp_path: Path, signum: int, ignored: tuple[int, ...]
):
    # Given a server over a local folder store (--store) that has answered a request, started
    # in a terminal or as a script's background job does (`serve &`: SIGINT ignored), or by a
    # supervisor that ignores both
    port = free_port()
    argv = [*TICKERSERVE, "--store", str(small_store), "serve", "--port", str(port)]
    request_id = f"stop-{signum}-{len(ignored)}"
    with running(argv, port=port, log=tmp_path / "serve.log", ignored=ignored) as server:
        reply = http(
            f"{server.url}/predict",
            "POST",
            json.dumps({"ticker": "SMH", "features": ROW}),
            {"Content-Type": "application/json", "X-Request-Id": request_id},
        )
        assert reply.status == 200
        # When the signal arrives (kill -INT / kill -TERM); Then it exits with 0, frees the
        # port, and the answered request's capture record was written before it exited
        assert server.stop(signum) == 0, server.output()
        assert not is_listening(port)
        assert "stopping" in server.output()
    captured = [r["request_id"] for r in read_capture(LocalStore(small_store))]
    assert captured.count(request_id) == 1


def test_a_busy_port_is_a_clear_error(small_store: Path, tmp_path: Path):
    # Given the port is taken
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [*TICKERSERVE, "--store", str(small_store), "serve", "--port", str(port)]
        # When serve starts on it
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    # Then it fails with one line naming the port and what to do
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: address in use" in result.stderr
    assert "--port" in result.stderr


def test_auth_iam_without_credentials_is_a_clear_error(small_store: Path):
    # Given no AWS credentials anywhere botocore looks (and no instance metadata to ask)
    env = {k: v for k, v in child_env().items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_CONFIG_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )
    argv = [*TICKERSERVE, "--store", str(small_store), "serve", "--auth", "iam", "--port", "0"]
    # When serve is asked to check signatures
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    # Then it fails before listening, saying what it needs
    assert result.returncode == 1, result.stderr
    assert "--auth iam checks signatures against AWS credentials and found none" in result.stderr
    assert "AWS_ACCESS_KEY_ID" in result.stderr
