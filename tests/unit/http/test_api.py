"""The HTTP API through real API Gateway events (REST v1, HTTP v2, function URL) and direct
invocation; POST /predict's lane against Powertools' resolvers, event by event."""

from __future__ import annotations

import base64
import copy
import json
import math
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from tests.support import EVENTS, REGISTRY_KEY, DemoModels, load_event, populate
from tickerserve.errors import NotFound, StorageUnavailable, TickerserveError
from tickerserve.http.api import MAX_BODY_BYTES, Api
from tickerserve.publishing.demo import FEATURES, demo_bundle
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.predict import MAX_BATCH_ITEMS
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.registry import update_registry
from tickerserve.storage.store import LocalStore

FEATURES_OF_EVENT = json.loads(load_event("rest_predict.json")["body"])["features"]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory, models: DemoModels) -> Path:
    root = tmp_path_factory.mktemp("store")
    populate(LocalStore(root), models)
    return root


@pytest.fixture
def api(store_dir: Path, tmp_path: Path) -> Api:
    settings = Settings(store_path=str(store_dir), cache_dir=str(tmp_path / "cache"))
    return Api(ModelService(settings))


def call(api: Api, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = api.handle(event, None)
    headers = response.get("headers") or {
        k: v[-1] for k, v in response["multiValueHeaders"].items()
    }  # REST v1 answers with multiValueHeaders, HTTP v2 with headers
    assert headers["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def post(api: Api, path: str, body: Any, *, raw: str | None = None) -> tuple[int, dict[str, Any]]:
    event = load_event("rest_predict.json")
    event["path"] = event["resource"] = path
    event["body"] = raw if raw is not None else json.dumps(body)
    return call(api, event)


def answer_of(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without its request id (generated per request) and batch index."""
    return {k: v for k, v in body.items() if k not in ("request_id", "index")}


def booster_proba(bundle_files: dict[str, bytes], row: list[float]) -> np.ndarray:
    booster = lgb.Booster(model_str=bundle_files["model.txt"].decode())
    return np.asarray(booster.predict(np.asarray([row])))[0]


# -- happy paths -----------------------------------------------------------------------------
def test_rest_predict_answers_with_label_probabilities_and_exact_model(api, models):
    status, body = call(api, load_event("rest_predict.json"))
    assert status == 200
    assert body["ticker"] == "SMH"
    assert body["model"] == {"name": "etfs/SMH", "version": "1.0.0", "alias": "production"}
    assert list(body["probabilities"]) == models.smh.metadata.classes
    assert math.isclose(sum(body["probabilities"].values()), 1.0, rel_tol=1e-9)
    assert body["prediction"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["confidence"] == max(body["probabilities"].values())
    # The probabilities are exactly Booster.predict on the selected features in stored order
    used = [FEATURES_OF_EVENT[FEATURES[i]] for i in (0, 2, 4, 6, 8, 10)]
    expected = booster_proba(models.smh.files, used)
    np.testing.assert_allclose(list(body["probabilities"].values()), expected, rtol=1e-12)


def test_list_and_object_features_give_the_same_answer(api):
    _, by_name = post(api, "/predict", {"ticker": "SPY", "features": FEATURES_OF_EVENT})
    ordered = [FEATURES_OF_EVENT[name] for name in FEATURES]
    _, by_list = post(api, "/predict", {"ticker": "spy", "features": ordered})
    assert answer_of(by_name) == answer_of(by_list)


def test_reordered_object_features_are_aligned_to_the_stored_order(api):
    reversed_features = dict(reversed(list(FEATURES_OF_EVENT.items())))
    _, first = post(api, "/predict", {"ticker": "SPY", "features": FEATURES_OF_EVENT})
    _, second = post(api, "/predict", {"ticker": "SPY", "features": reversed_features})
    assert answer_of(first) == answer_of(second)


def test_null_is_a_missing_value_that_lightgbm_handles(api, models):
    features = dict(FEATURES_OF_EVENT, rsi_14=None)
    status, body = post(api, "/predict", {"ticker": "SPY", "features": features})
    assert status == 200
    row = [math.nan if v is None else v for v in (features[n] for n in FEATURES)]
    expected = booster_proba(models.spy.files, row)
    np.testing.assert_allclose(list(body["probabilities"].values()), expected, rtol=1e-12)


def test_binary_model_reports_both_classes(api):
    status, body = post(api, "/predict", {"ticker": "TLT", "features": FEATURES_OF_EVENT})
    assert status == 200
    assert list(body["probabilities"]) == ["IRON_CONDOR", "BULL_PUT_SPREAD"]
    assert math.isclose(sum(body["probabilities"].values()), 1.0)


def test_base64_body_and_lowercase_ticker(api):
    status, body = call(api, load_event("rest_predict_base64.json"))
    assert status == 200
    assert body["ticker"] == "AAPL"
    assert body["model"]["name"] == "stocks/universal"


def test_http_api_v2_events_are_served(api):
    status, body = call(api, load_event("http_predict.json"))
    assert (status, body["ticker"], body["model"]["name"]) == (200, "MSFT", "stocks/universal")
    status, body = call(api, load_event("http_model.json"))
    assert (status, body["model"]["name"]) == (200, "etfs/SPY")


def test_direct_invoke_returns_the_body_itself(api):
    body = api.handle({"ticker": "SMH", "features": FEATURES_OF_EVENT}, None)
    assert body["model"]["name"] == "etfs/SMH" and "statusCode" not in body
    batch = api.handle({"items": [{"ticker": "SMH", "features": FEATURES_OF_EVENT}]}, None)
    assert batch["succeeded"] == 1
    assert api.handle({"action": "health"}, None)["status"] == "ok"
    assert api.handle({"action": "model", "ticker": "spy"}, None)["model"]["name"] == "etfs/SPY"
    error = api.handle({"ticker": "ZZZZ", "features": []}, None)
    assert error["error"]["code"] == "unknown_ticker"
    assert api.handle("not an object", None)["error"]["code"] == "invalid_body"
    assert api.handle({"action": "explode"}, None)["error"]["code"] == "unknown_action"


def test_models_lists_routes_and_aliases_without_loading(api):
    status, body = call(api, load_event("rest_models.json"))
    assert status == 200
    names = {m["name"]: m for m in body["models"]}
    universal = [r["ticker"] for r in body["routes"] if r["model"] == "stocks/universal"]
    assert universal == ["AAPL", "MSFT"]
    assert names["etfs/SMH"]["aliases"] == {"production": "1.0.0"}
    assert body["next"] is None
    assert api.service.loaded() == []


def test_model_detail_lists_features_and_classes_without_loading(api, models):
    status, body = call(api, load_event("rest_model.json"))
    assert status == 200
    assert body["feature_names"] == models.smh.metadata.feature_names
    assert body["required_features"] == [FEATURES[i] for i in (0, 2, 4, 6, 8, 10)]
    assert body["classes"] == models.smh.metadata.classes
    assert "accuracy" in body["metrics"]
    assert api.service.loaded() == []


def test_health_reports_revision_loaded_models_and_cold_then_warm(api):
    status, first = call(api, load_event("rest_health.json"))
    assert (status, first["cold"], first["registry"]["revision"]) == (200, True, 4)
    call(api, load_event("rest_predict.json"))
    _, second = call(api, load_event("http_health.json"))
    assert second["cold"] is False
    assert second["loaded_models"][0]["name"] == "etfs/SMH"
    assert second["loaded_models"][0]["fast_path"] is True  # one-row LightGBM fast path on


# -- batch -----------------------------------------------------------------------------------
def test_batch_mixes_results_and_per_item_errors(api):
    status, body = call(api, load_event("rest_batch.json"))
    assert status == 200
    assert (body["succeeded"], body["failed"]) == (3, 2)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert results[1]["model"]["name"] == results[2]["model"]["name"] == "stocks/universal"
    assert results[1]["probabilities"] == results[2]["probabilities"]  # same row, two shapes
    assert results[3]["error"]["code"] == "unknown_ticker"
    assert results[4]["error"]["code"] == "missing_features"


def test_batch_answers_equal_single_answers(api):
    items = [{"ticker": t, "features": FEATURES_OF_EVENT} for t in ("SMH", "AAPL", "SPY", "SMH")]
    _, batch = post(api, "/predict/batch", {"items": items})
    for item, result in zip(items, batch["results"], strict=True):
        _, single = post(api, "/predict", item)
        assert answer_of(result) == answer_of(single)


def test_batch_calls_each_model_once(api, monkeypatch):
    items = [{"ticker": t, "features": FEATURES_OF_EVENT} for t in ["AAPL", "MSFT", "SMH"] * 10]
    post(api, "/predict/batch", {"items": items[:3]})  # load the models first
    calls: list[int] = []
    for loaded in {id(m): m for _, m, _ in api.service.memory.items()}.values():
        original = loaded.predict

        def counting(rows, original=original):
            calls.append(len(rows))
            return original(rows)

        monkeypatch.setattr(loaded, "predict", counting)
    status, body = post(api, "/predict/batch", {"items": items})
    assert (status, body["succeeded"]) == (200, 30)
    assert sorted(calls) == [10, 20]


def test_a_batch_naming_a_request_id_twice_is_refused_whole(api):
    # One outcome would otherwise score every row that carries the id (issue 19)
    items = [
        {"ticker": "SMH", "features": FEATURES_OF_EVENT, "request_id": rid}
        for rid in ("order-1", "order-2", "order-1", "order-3", "order-2")
    ]
    status, body = post(api, "/predict/batch", {"items": items})
    assert (status, body["error"]["code"]) == (400, "duplicate_request_id")
    assert body["error"]["message"].endswith("repeated: order-1, order-2")
    direct = api.handle({"items": items}, None)
    assert direct["error"]["code"] == "duplicate_request_id"
    action = api.handle({"action": "predict_batch", "items": items}, None)
    assert action["error"]["code"] == "duplicate_request_id"
    # ids the batch gives items without their own are unique by construction
    unnamed = [{"ticker": "SMH", "features": FEATURES_OF_EVENT}] * 3
    status, body = post(api, "/predict/batch", {"items": unnamed})
    assert status == 200 and len({r["request_id"] for r in body["results"]}) == 3


def test_batch_over_the_limit_is_413(api):
    items = [{"ticker": "SMH", "features": []}] * (MAX_BATCH_ITEMS + 1)
    status, body = post(api, "/predict/batch", {"items": items})
    assert (status, body["error"]["code"]) == (413, "batch_too_large")


@pytest.mark.parametrize("name", ["rest_predict.json", "http_predict.json"])
def test_an_api_gateway_event_asking_explain_is_answered_with_the_top_k(api, name):
    # Given a real API Gateway event (REST v1, HTTP v2) whose body asks for the top 3
    event = load_event(name)
    asked = {**json.loads(event["body"]), "explain": 3}
    event["body"] = json.dumps(asked)
    # When it is handled
    status, body = call(api, event)
    # Then the answer carries the three largest contributions, largest first
    assert status == 200
    explanation = body["explanation"]
    assert explanation["space"] == "margin"  # a LightGBM classifier: before its softmax
    sizes = [abs(c) for c in explanation["contributions"].values()]
    assert len(sizes) == 3 and sizes == sorted(sizes, reverse=True)
    plain = dict(event, body=json.dumps({k: v for k, v in asked.items() if k != "explain"}))
    assert answer_of(body) == {**answer_of(call(api, plain)[1]), "explanation": explanation}


def test_a_bad_explain_is_a_400_and_too_many_explained_items_a_413(api):
    body = {"ticker": "SMH", "features": FEATURES_OF_EVENT}
    status, answer = post(api, "/predict", {**body, "explain": "top"})
    assert (status, answer["error"]["code"]) == (400, "invalid_field")
    assert answer["error"]["message"].startswith("explain must be true, false or the number")
    status, answer = post(api, "/predict/batch", {"items": [{**body, "explain": True}] * 101})
    assert (status, answer["error"]["code"]) == (413, "too_many_explanations")


@pytest.mark.parametrize(
    "body", [{"items": []}, {"items": {}}, {"items": [], "extra": 1}, [], {"ticker": "SMH"}]
)
def test_malformed_batch_body_is_400(api, body):
    status, response = post(api, "/predict/batch", body)
    assert (status, response["error"]["code"]) == (400, "invalid_body")


# -- client mistakes -------------------------------------------------------------------------
def feature_body(**changes: Any) -> dict[str, Any]:
    return {"ticker": "SPY", "features": dict(FEATURES_OF_EVENT, **changes)}


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        ({"ticker": "SPY", "features": {}}, "missing_features", FEATURES),
        (
            {
                "ticker": "SPY",
                "features": {k: v for k, v in FEATURES_OF_EVENT.items() if k != "hv_20"},
            },
            "missing_features",
            ["hv_20"],
        ),
        (feature_body(colour=1.0), "unknown_features", ["colour"]),
        (feature_body(rsi_14="61"), "invalid_feature_values", ["rsi_14"]),
        (feature_body(rsi_14=True), "invalid_feature_values", ["rsi_14"]),
        (feature_body(iv_rank=[1]), "invalid_feature_values", ["iv_rank"]),
        (feature_body(iv_rank={"a": 1}), "invalid_feature_values", ["iv_rank"]),
        ({"ticker": "SPY", "features": [1.0] * 11}, "wrong_feature_count", None),
        ({"ticker": "SPY", "features": [1.0] * 13}, "wrong_feature_count", None),
        ({"ticker": "SPY", "features": ["x"] * 12}, "invalid_feature_values", FEATURES),
        ({"ticker": "SPY", "features": "1,2,3"}, "invalid_features", None),
        ({"ticker": "SPY"}, "missing_field", None),
        ({"features": []}, "missing_field", None),
        ({"ticker": "SPY", "features": [], "alais": "x"}, "unknown_fields", None),
        ({"ticker": "../../etc/passwd", "features": []}, "invalid_ticker", None),
        ({"ticker": "", "features": []}, "invalid_ticker", None),
        ({"ticker": 42, "features": []}, "invalid_ticker", None),
        ({"ticker": "SPY", "features": [], "version": "1.0"}, "invalid_field", None),
        ({"ticker": "SPY", "features": [], "alias": "Prod!"}, "invalid_field", None),
        (
            {"ticker": "SPY", "features": [], "alias": "x", "version": "1.0.0"},
            "invalid_field",
            None,
        ),
        ([1, 2], "invalid_body", None),
    ],
)
def test_bad_predict_input_is_400_and_names_the_problem(api, body, code, named):
    status, response = post(api, "/predict", body)
    assert status == 400
    assert response["error"]["code"] == code
    if named is not None:
        assert response["error"]["features"] == named[:20]
        assert all(name in response["error"]["message"] for name in named[:20])


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_rejected(api, literal):
    raw = json.dumps(feature_body()).replace('"rsi_14": 61.2', f'"rsi_14": {literal}')
    assert literal in raw
    status, response = post(api, "/predict", None, raw=raw)
    assert (status, response["error"]["features"]) == (400, ["rsi_14"])


def test_huge_integer_is_rejected_not_crashing(api):
    raw = json.dumps(feature_body()).replace('"rsi_14": 61.2', '"rsi_14": ' + "9" * 400)
    status, response = post(api, "/predict", None, raw=raw)
    assert (status, response["error"]["code"]) == (400, "invalid_feature_values")


@pytest.mark.parametrize(
    "changes",
    [
        {"ticker": "\u017fpy"},  # upper-cases to SPY, but is not an ASCII ticker
        {"ticker": "SPY\n"},
        {"ticker": " SPY"},
        {"version": "1.0.0\n"},
        {"version": "\u0661.0.0"},  # an Arabic-Indic digit one
        {"alias": "production\n"},
        {"timeframe": "d1\n"},
    ],
)
def test_names_must_match_in_full_and_in_ascii(api, changes):
    # Given a valid request with one name changed, Then it is refused, never served as SPY
    status, body = post(api, "/predict", feature_body() | changes)
    code = "invalid_ticker" if "ticker" in changes else "invalid_field"
    assert (status, body["error"]["code"]) == (400, code)


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [("\u017fmh", 400, "invalid_ticker"), ("SMH\n", 404, "route_not_found")],
)
def test_ticker_in_the_url_must_match_in_full(api, raw, status, code):
    event = load_event("rest_model.json")
    event["path"] = f"/models/{raw}"
    event["pathParameters"] = {"ticker": raw}
    assert call(api, event)[0] == status
    assert call(api, event)[1]["error"]["code"] == code


def test_unknown_ticker_version_and_alias_are_404(api):
    assert post(api, "/predict", {"ticker": "ZZZ", "features": []})[0] == 404
    status, body = post(api, "/predict", feature_body() | {"version": "7.0.0"})
    assert (status, body["error"]["code"]) == (404, "unknown_version")
    status, body = post(api, "/predict", feature_body() | {"alias": "canary"})
    assert (status, body["error"]["code"]) == (404, "unknown_alias")


@pytest.mark.parametrize(
    ("raw", "code"), [("", "invalid_body"), ("{", "invalid_json"), ("[" * 100_000, "invalid_json")]
)
def test_unparseable_bodies_are_400(api, raw, code):
    status, body = post(api, "/predict", None, raw=raw)
    assert (status, body["error"]["code"]) == (400, code)


def test_malformed_event_fixture_is_400(api):
    status, body = call(api, load_event("rest_malformed.json"))
    assert (status, body["error"]["code"]) == (400, "invalid_json")


def test_oversize_body_is_413(api):
    status, body = post(api, "/predict", None, raw=" " * (MAX_BODY_BYTES + 1))
    assert (status, body["error"]["code"]) == (413, "body_too_large")


def test_invalid_base64_is_400(api):
    event = load_event("rest_predict_base64.json")
    event["body"] = "!!!not base64!!!"
    status, body = call(api, event)
    assert (status, body["error"]["code"]) == (400, "invalid_body")


def test_base64_of_non_utf8_is_400(api):
    event = load_event("rest_predict_base64.json")
    event["body"] = base64.b64encode(b"\xff\xfe\x00").decode()
    status, _ = call(api, event)
    assert status == 400


def test_unknown_route_is_json_404(api):
    event = load_event("rest_models.json")
    event["path"] = event["resource"] = "/admin"
    status, body = call(api, event)
    assert (status, body["error"]["code"]) == (404, "route_not_found")


def raw_call(api: Api, event: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    response = api.handle(event, None)
    headers = {k: v[-1] for k, v in response["multiValueHeaders"].items()}
    return response["statusCode"], headers, json.loads(response["body"])


@pytest.mark.parametrize(
    ("fixture", "method", "path", "allow"),
    [
        ("rest_models.json", "DELETE", "/models", "GET"),
        ("rest_model.json", "PUT", "/models/SMH", "GET"),
        ("rest_health.json", "POST", "/health", "GET"),
        ("rest_predict.json", "GET", "/predict", "POST"),
        ("rest_batch.json", "TRACE", "/predict/batch", "POST"),
        ("rest_batch.json", "GET", "/outcomes", "POST"),
    ],
)
def test_a_known_path_with_another_method_is_405_naming_the_allowed_ones(
    api, fixture, method, path, allow
):
    # Given a real event for a route, sent with a method the route does not serve
    event = load_event(fixture)
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = path
    # Then the answer is 405 with an Allow header and the usual JSON error body
    status, headers, body = raw_call(api, event)
    assert (status, headers["Allow"], body["error"]["code"]) == (405, allow, "method_not_allowed")
    assert f"use {allow}" in body["error"]["message"]


def test_http_api_events_get_405_too(api):
    event = load_event("http_health.json")
    event["requestContext"]["http"]["method"] = "DELETE"
    response = api.handle(event, None)
    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "GET"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_a_post_body_that_is_not_declared_json_is_415(api, content_type):
    # Given a valid predict body declared as something else (curl -d without -H sends a form)
    event = load_event("rest_predict.json")
    event["headers"]["Content-Type"] = content_type
    status, body = call(api, event)
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")
    assert "application/json" in body["error"]["message"]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "APPLICATION/JSON", "application/x+json"]
)
def test_json_content_types_with_parameters_or_suffixes_are_accepted(api, content_type):
    event = load_event("rest_predict.json")
    event["headers"]["Content-Type"] = content_type
    assert call(api, event)[0] == 200


def test_a_post_without_content_type_is_read_as_json(api):
    event = load_event("rest_batch.json")
    del event["headers"]["Content-Type"]
    assert call(api, event)[0] == 200


def test_the_route_table_is_what_the_api_serves(store_dir, tmp_path):
    # ROUTES drives the 405 answers; it must list exactly the routes the resolver has
    from tickerserve.http.api import ROUTES

    api = Api(ModelService(Settings(store_path=str(store_dir))), docs=True)
    event = load_event("rest_models.json")
    event["path"] = "/openapi.json"
    doc = json.loads(api.handle(event, None)["body"])
    served = {
        (path.replace("{", "<").replace("}", ">"), method.upper())
        for path, item in doc["paths"].items()
        for method in item
    }
    assert served == {(path, m) for path, methods in ROUTES.items() for m in methods}


def test_path_like_ticker_in_url_is_400(api):
    event = load_event("rest_model.json")
    event["path"] = "/models/..%2F..%2Fsecret"
    event["pathParameters"] = {"ticker": "..%2F..%2Fsecret"}
    status, body = call(api, event)
    assert (status, body["error"]["code"]) == (400, "invalid_ticker")


def test_storage_down_and_nothing_cached_is_503(tmp_path):
    settings = Settings(store_path=str(tmp_path / "missing"), cache_dir=str(tmp_path / "cache"))
    api = Api(ModelService(settings))
    status, body = call(api, load_event("rest_predict.json"))
    assert (status, body["error"]["code"]) == (503, "storage_unavailable")
    status, body = call(api, load_event("rest_health.json"))
    assert (status, body["status"]) == (503, "unavailable")


def test_batch_over_more_models_than_memory_holds_stays_within_budget(api):
    # Given a memory budget that holds one model at a time
    api.service.memory.budget_bytes = 180_000  # the demo models are 140-175 KB
    tickers = ["SMH", "SPY", "TLT", "AAPL", "MSFT"] * 4
    items = [{"ticker": t, "features": FEATURES_OF_EVENT} for t in tickers]
    # When one batch touches four models
    status, body = post(api, "/predict/batch", {"items": items})
    # Then every item is answered, each model was loaded once, and the budget held
    assert (status, body["succeeded"]) == (200, 20)
    assert api.service.counters.model_loads == 4
    assert api.service.memory.used_bytes <= api.service.memory.budget_bytes


# -- every front door: REST API (v1), HTTP API and function URL (v2) ------------------------
# The deployed stage's apiType decides which event reaches the function; the answers must not
# depend on it. url_predict.json is a function URL request (routeKey and stage "$default", a
# lambda-url domain); http_predict_stage.json an HTTP API request on the named stage "dev",
# which API Gateway keeps in rawPath ("/dev/predict").
FRONT_DOOR_EVENTS = ("rest_predict.json", "http_predict_stage.json", "url_predict.json")


def front_door_event(fixture: str, *, method: str, path: str, body: str | None) -> dict[str, Any]:
    """``fixture`` asking ``method path`` with ``body`` and the request id order-1842."""
    event = load_event(fixture)
    if "httpMethod" in event:  # REST v1
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
        event["path"] = event["resource"] = path
        event["headers"]["X-Request-Id"] = "order-1842"
        event.setdefault("multiValueHeaders", {})["X-Request-Id"] = ["order-1842"]
    else:  # v2: an HTTP API's named stage stays in the raw path
        stage = event["requestContext"]["stage"]
        raw_path = path if stage == "$default" else f"/{stage}{path}"
        event["rawPath"] = event["requestContext"]["http"]["path"] = raw_path
        event["requestContext"]["http"]["method"] = method
        event["headers"]["x-request-id"] = "order-1842"
    event["body"] = body
    return event


def v2_answer(response: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    assert "multiValueHeaders" not in response  # payload format 2.0's response shape
    return response["statusCode"], response["headers"], json.loads(response["body"])


def test_a_function_url_event_is_served_like_an_http_api_event(api):
    # Given AWS's function URL request shape for POST /predict
    event = load_event("url_predict.json")
    assert event["requestContext"]["domainName"].endswith(".lambda-url.us-east-1.on.aws")
    # When the handler answers it
    status, headers, body = v2_answer(api.handle(event, None))
    # Then with a v2 response, the client's request id and the model that answered
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert body["request_id"] == "order-1842"
    assert (body["ticker"], body["model"]["name"]) == ("SMH", "etfs/SMH")


def test_an_http_api_stage_prefix_is_not_part_of_the_route(api):
    status, _, body = v2_answer(api.handle(load_event("http_predict_stage.json"), None))
    assert (status, body["model"]["name"]) == (200, "etfs/SMH")
    event = front_door_event("http_predict_stage.json", method="GET", path="/models/SPY", body=None)
    status, _, body = v2_answer(api.handle(event, None))
    assert (status, body["model"]["name"]) == (200, "etfs/SPY")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/predict", json.dumps({"ticker": "SMH", "features": FEATURES_OF_EVENT})),
        ("POST", "/predict/batch", json.dumps({"items": [{"ticker": "QQQ", "features": []}]})),
        ("GET", "/models/SPY", None),
        ("POST", "/predict", "{not json"),
        ("POST", "/predict", json.dumps({"ticker": "ZZZZ", "features": FEATURES_OF_EVENT})),
        ("POST", "/predict", json.dumps({"ticker": "SMH", "features": {"rsi_14": 1.0}})),
        ("POST", "/predict", json.dumps({"ticker": "SMH"})),
        ("GET", "/models/%20", None),
        ("POST", "/outcomes", json.dumps({"outcomes": [{"request_id": "r"}]})),
        ("POST", "/predict/batch", json.dumps({"items": [{}] * (MAX_BATCH_ITEMS + 1)})),
    ],
)
def test_every_front_door_gets_the_same_status_and_body(api, method, path, body):
    # Given the same request as each front door delivers it
    answers = []
    for fixture in FRONT_DOOR_EVENTS:
        event = front_door_event(fixture, method=method, path=path, body=body)
        response = api.handle(event, None)
        answers.append((response["statusCode"], json.loads(response["body"])))
    # Then the function answers each one alike: status, codes and body (the request id too)
    rest, http, url = answers
    assert rest == http == url
    status, answer = rest
    assert status == 200 or "code" in answer["error"]


def test_a_function_url_reaches_the_handler_on_any_path_and_method(api):
    # No gateway routes a function URL: the handler's own 404 and 405 answer what REST and
    # HTTP APIs refuse before the function runs
    event = front_door_event("url_predict.json", method="GET", path="/admin", body=None)
    status, _, body = v2_answer(api.handle(event, None))
    assert (status, body["error"]["code"]) == (404, "route_not_found")
    event = front_door_event("url_predict.json", method="DELETE", path="/predict", body=None)
    status, headers, body = v2_answer(api.handle(event, None))
    assert (status, headers["Allow"], body["error"]["code"]) == (405, "POST", "method_not_allowed")
    # A function URL has no stage: "/dev/predict" is not a route there
    event = front_door_event("url_predict.json", method="POST", path="/dev/predict", body="{}")
    assert v2_answer(api.handle(event, None))[2]["error"]["code"] == "route_not_found"


# -- signals: several models per ticker -----------------------------------------------------
@pytest.fixture
def signalled_api(tmp_path: Path, models: DemoModels) -> Api:
    """SPY on its strategy model (etfs/SPY, the default) and a volatility model beside it."""
    store = LocalStore(tmp_path / "store")
    populate(store, models)
    volatility = demo_bundle("etfs/SPY/volatility", "1.0.0", seed=6, n_classes=2)
    publish_bundle(store, volatility, registry_key=REGISTRY_KEY)
    update_registry(
        store,
        REGISTRY_KEY,
        lambda r: r.set_route("SPY", "etfs/SPY/volatility", "etf", signal="volatility"),
    )
    settings = Settings(store_path=str(store.root), cache_dir=str(tmp_path / "cache"))
    return Api(ModelService(settings))


def get_model(api: Api, ticker: str, **query: str) -> tuple[int, dict[str, Any]]:
    event = load_event("rest_model.json")
    event["path"], event["pathParameters"] = f"/models/{ticker}", {"ticker": ticker}
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    return call(api, event)


def test_a_request_names_the_signal_it_wants_and_the_answer_says_which_answered(signalled_api):
    api = signalled_api
    # Without a signal the ticker's default (strategy) answers, and the answer says so
    status, body = post(api, "/predict", {"ticker": "SPY", "features": FEATURES_OF_EVENT})
    assert (status, body["signal"], body["model"]["name"]) == (200, "strategy", "etfs/SPY")
    # Naming the other signal reaches the other model of the same ticker
    status, body = post(
        api, "/predict", {"ticker": "spy", "signal": "volatility", "features": FEATURES_OF_EVENT}
    )
    assert (status, body["signal"], body["model"]["name"]) == (
        200,
        "volatility",
        "etfs/SPY/volatility",
    )
    assert list(body["probabilities"]) == ["IRON_CONDOR", "BULL_PUT_SPREAD"]
    # An unknown signal is a 404 that lists the ticker's signals
    status, body = post(
        api, "/predict", {"ticker": "SPY", "signal": "gamma", "features": FEATURES_OF_EVENT}
    )
    assert (status, body["error"]["code"]) == (404, "unknown_signal")
    assert body["error"]["message"] == (
        "ticker 'SPY' has no signal 'gamma'; it has strategy, volatility"
    )
    # A signal that breaks the rule is a 400
    status, body = post(
        api, "/predict", {"ticker": "SPY", "signal": "Vol-1", "features": FEATURES_OF_EVENT}
    )
    assert (status, body["error"]["code"]) == (400, "invalid_signal")


def test_batch_items_name_their_own_signals(signalled_api):
    items = [
        {"ticker": "SPY", "features": FEATURES_OF_EVENT},
        {"ticker": "SPY", "signal": "volatility", "features": FEATURES_OF_EVENT},
        {"ticker": "SMH", "signal": "volatility", "features": FEATURES_OF_EVENT},
    ]
    status, body = post(signalled_api, "/predict/batch", {"items": items})
    assert status == 200
    first, second, third = body["results"]
    assert (first["signal"], first["model"]["name"]) == ("strategy", "etfs/SPY")
    assert (second["signal"], second["model"]["name"]) == ("volatility", "etfs/SPY/volatility")
    assert third["error"]["code"] == "unknown_signal"
    assert third["error"]["message"] == "ticker 'SMH' has no signal 'volatility'; it has strategy"


def test_model_detail_lists_signals_and_describes_the_one_asked_for(signalled_api):
    status, body = get_model(signalled_api, "SPY")
    assert status == 200
    assert (body["signal"], body["default_signal"], body["model"]["name"]) == (
        "strategy",
        "strategy",
        "etfs/SPY",
    )
    assert body["signals"] == {
        "strategy": {"model": "etfs/SPY", "timeframes": {}, "via_fallback": False},
        "volatility": {"model": "etfs/SPY/volatility", "timeframes": {}, "via_fallback": False},
    }
    status, body = get_model(signalled_api, "SPY", signal="volatility")
    assert (status, body["signal"], body["model"]["name"]) == (
        200,
        "volatility",
        "etfs/SPY/volatility",
    )
    assert body["classes"] == ["IRON_CONDOR", "BULL_PUT_SPREAD"]
    status, body = get_model(signalled_api, "SPY", signal="gamma")
    assert (status, body["error"]["code"]) == (404, "unknown_signal")
    status, body = get_model(signalled_api, "SPY", signal="NOT A SIGNAL")
    assert (status, body["error"]["code"]) == (400, "invalid_signal")
    direct = signalled_api.handle(
        {"action": "model", "ticker": "spy", "signal": "volatility"}, None
    )
    assert direct["model"]["name"] == "etfs/SPY/volatility"


# -- the prediction lane: POST /predict answered from the event, without Powertools ---------
def targets_predict(event: dict[str, Any]) -> bool:
    if "httpMethod" in event:
        return event["httpMethod"] == "POST" and event["path"].endswith("/predict")
    return event["requestContext"]["http"]["method"] == "POST" and event["rawPath"].endswith(
        "/predict"
    )


PREDICT_FIXTURES = sorted(
    p.name for p in EVENTS.glob("*.json") if "requestContext" in (e := load_event(p.name))
    and targets_predict(e)
)  # fmt: skip
SMH_BODY = json.dumps({"ticker": "SMH", "features": FEATURES_OF_EVENT})
LANE_BODIES = [
    SMH_BODY,
    json.dumps({"ticker": "smh", "features": list(FEATURES_OF_EVENT.values()), "alias": "x"}),
    "{not json",
    "",
    None,
    json.dumps({"ticker": "ZZZZ", "features": FEATURES_OF_EVENT}),
    json.dumps({"ticker": "SMH", "features": {"rsi_14": 1.0}}),
    json.dumps({"ticker": "SMH", "features": {**FEATURES_OF_EVENT, "rsi_14": None}}),
    json.dumps({"ticker": "SMH", "features": {**FEATURES_OF_EVENT, "rsi_14": "high"}}),
    json.dumps({"ticker": "SMH", "features": FEATURES_OF_EVENT, "explain": 3}),
    json.dumps({"ticker": "SMH"}),
    json.dumps([1, 2]),
    "x" * (MAX_BODY_BYTES + 1),
]


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated request ids that repeat, so two answers to one event can be compared."""
    monkeypatch.setattr("tickerserve.serving.request_ids.generate", lambda: "generated-id")


def resolved(api: Api, event: dict[str, Any]) -> dict[str, Any]:
    """The answer Powertools' resolver gives ``event``, routed the whole way."""
    resolver = api.rest if "httpMethod" in event else api.http
    return resolver.resolve(event, None)  # type: ignore[arg-type]  # as Api.handle passes it


def lane_and_resolver(api: Api, event: dict[str, Any]) -> dict[str, Any]:
    """The lane's answer, checked equal to the resolver's as the runtime would send it: the
    same JSON text, keys in the same order. Asked first, with no resolver built yet."""
    assert "rest" not in api.__dict__ and "http" not in api.__dict__
    lane = api.handle(copy.deepcopy(event), None)
    assert "rest" not in api.__dict__ and "http" not in api.__dict__  # answered without one
    routed = resolved(api, copy.deepcopy(event))
    assert json.dumps(lane) == json.dumps(routed)
    for built in ("rest", "http"):  # the next event is the lane's again
        api.__dict__.pop(built, None)
    return lane


def status_and_code(response: dict[str, Any]) -> tuple[int, str | None]:
    body = json.loads(response["body"])
    return response["statusCode"], body.get("error", {}).get("code")


@pytest.mark.parametrize("fixture", PREDICT_FIXTURES)
def test_every_predict_event_of_the_fixtures_is_answered_as_the_resolver_answers(
    api, fixed_ids, fixture
):
    assert {"rest_predict.json", "http_predict_stage.json", "url_predict.json"} <= set(
        PREDICT_FIXTURES
    )
    response = lane_and_resolver(api, load_event(fixture))
    assert response["statusCode"] in (200, 400)  # rest_malformed: a body that is not JSON


@pytest.mark.parametrize("fixture", FRONT_DOOR_EVENTS)
@pytest.mark.parametrize("body", LANE_BODIES)
def test_the_prediction_lane_answers_exactly_what_the_resolver_answers(api, fixture, body):
    # Given a POST /predict as each front door delivers it (with a client request id)
    event = front_door_event(fixture, method="POST", path="/predict", body=body)
    # When the API answers it, and the resolver answers it routed the whole way
    response = lane_and_resolver(api, event)
    # Then the two responses are the same, byte for byte: status, headers and body
    status, code = status_and_code(response)
    assert status == 200 or code


def base64_of(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def with_headers(event: dict[str, Any], headers: dict[str, str] | None) -> dict[str, Any]:
    event["headers"] = headers
    if "multiValueHeaders" in event:
        event["multiValueHeaders"] = (
            None if headers is None else {k: [v] for k, v in headers.items()}
        )
    return event


# Headers as a client may send them, and what the answer is: its status and request id.
HEADER_CASES: dict[str, tuple[dict[str, str], int, str]] = {
    "lower case": ({"content-type": "application/json", "x-request-id": "lane-1"}, 200, "lane-1"),
    "upper case": ({"CONTENT-TYPE": "application/json", "X-REQUEST-ID": "lane-2"}, 200, "lane-2"),
    "mixed case, parameters": (
        {"Content-type": "Application/JSON; charset=utf-8", "x-Request-Id": "lane-3"},
        200,
        "lane-3",
    ),
    "a +json type": ({"Content-Type": "application/problem+json"}, 200, "generated-id"),
    "not json, any case": ({"cONTENT-tYPE": "text/csv"}, 415, ""),
    "two cases, the later wins": (
        {"Content-Type": "text/csv", "content-type": "application/json"},
        200,
        "generated-id",
    ),
    "two cases, the later refused": (
        {"content-type": "application/json", "Content-Type": "text/plain"},
        415,
        "",
    ),
    "two request ids": ({"X-Request-Id": "first", "x-request-id": "second"}, 200, "second"),
    "an id that is no id": ({"X-Request-Id": "has spaces / slashes"}, 200, "generated-id"),
    "an empty id": ({"X-Request-Id": ""}, 200, "generated-id"),
    "empty content type": ({"Content-Type": ""}, 200, "generated-id"),
    "no headers at all": ({}, 200, "generated-id"),
}


@pytest.mark.parametrize("fixture", FRONT_DOOR_EVENTS)
@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_the_lane_reads_headers_in_any_case_as_the_resolver_does(api, fixed_ids, fixture, case):
    headers, status, request_id = HEADER_CASES[case]
    event = front_door_event(fixture, method="POST", path="/predict", body=SMH_BODY)
    response = lane_and_resolver(api, with_headers(event, headers))
    assert response["statusCode"] == status
    assert json.loads(response["body"]).get("request_id", "") == request_id


@pytest.mark.parametrize("fixture", FRONT_DOOR_EVENTS)
def test_events_without_single_value_headers_are_read_as_the_resolver_reads_them(
    api, fixed_ids, fixture
):
    # Given events whose headers are null, absent, or only multi-valued (REST): Powertools
    # reads the single-value headers alone, so a multi-value Content-Type is not looked at
    event = front_door_event(fixture, method="POST", path="/predict", body=SMH_BODY)
    event["headers"] = None
    assert lane_and_resolver(api, event)["statusCode"] == 200
    event.pop("headers")
    assert lane_and_resolver(api, event)["statusCode"] == 200
    if "multiValueHeaders" in event:
        event["multiValueHeaders"] = {"Content-Type": ["text/csv"], "X-Request-Id": ["m-1"]}
        response = lane_and_resolver(api, event)
        assert json.loads(response["body"])["request_id"] == "generated-id"


@pytest.mark.parametrize("fixture", FRONT_DOOR_EVENTS)
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (base64_of(SMH_BODY), 200, None),
        (
            base64_of(json.dumps({"ticker": "SMH", "features": {"é": 1}}, ensure_ascii=False)),
            400,
            "missing_features",
        ),
        ("not base64!", 400, "invalid_body"),
        (base64_of(b"\xff\xfe{}"), 400, "invalid_body"),
        (base64_of("{not json"), 400, "invalid_json"),
        (base64_of(" " * (MAX_BODY_BYTES + 1)), 413, "body_too_large"),
        ("", 400, "invalid_body"),
    ],
)
def test_base64_bodies_are_decoded_and_refused_as_the_resolver_does(
    api, fixture, body, status, code
):
    event = front_door_event(fixture, method="POST", path="/predict", body=body)
    event["isBase64Encoded"] = True
    response = lane_and_resolver(api, event)
    assert status_and_code(response) == (status, code)


@pytest.mark.parametrize(
    ("stage", "raw_path", "status"),
    [
        ("dev", "/dev/predict", 200),
        ("v1-live", "/v1-live/predict", 200),
        ("dev", "/xyz/predict", 200),  # Powertools cuts the stage by its length, unchecked
        ("$default", "/predict", 200),
        ("$default", "/dev/predict", 404),
        ("dev", "/predict", 404),
    ],
)
def test_http_api_stage_prefixes_are_cut_as_the_resolver_cuts_them(
    api, fixed_ids, stage, raw_path, status
):
    event = front_door_event("http_predict.json", method="POST", path="/predict", body=SMH_BODY)
    event["requestContext"]["stage"] = stage
    event["rawPath"] = event["requestContext"]["http"]["path"] = raw_path
    lane = api.handle(copy.deepcopy(event), None)
    assert json.dumps(lane) == json.dumps(resolved(api, event))
    assert lane["statusCode"] == status


def test_an_http_event_without_a_stage_is_left_to_the_resolver(api, monkeypatch):
    # Given an HTTP API event with no stage name, which Powertools' event class cannot read
    event = front_door_event("http_predict.json", method="POST", path="/predict", body=SMH_BODY)
    del event["requestContext"]["stage"]
    asked: list[str] = []
    resolve = api.http.resolve

    def spy(event: Any, context: Any) -> Any:
        asked.append(event["rawPath"])
        return resolve(event, context)

    monkeypatch.setattr(api.http, "resolve", spy)
    # Then the resolver is asked, and its failure is the function's JSON 500
    assert status_and_code(api.handle(event, None)) == (500, "internal_error")
    assert asked == ["/predict"]


@pytest.mark.parametrize("fixture", ["http_predict.json", "url_predict.json"])
def test_http_events_with_cookies_are_answered_with_the_resolver_s_cookies(api, fixed_ids, fixture):
    event = front_door_event(fixture, method="POST", path="/predict", body=SMH_BODY)
    event["cookies"] = ["session=abc", "theme=dark"]
    response = lane_and_resolver(api, event)
    assert (response["statusCode"], response["cookies"]) == (200, [])


@pytest.mark.parametrize("fixture", FRONT_DOOR_EVENTS)
@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (StorageUnavailable("the store timed out", retry_after=2.5), 503, "storage_unavailable"),
        (StorageUnavailable("the store is down"), 503, "storage_unavailable"),
        (NotFound("no such model", code="unknown_model"), 404, "unknown_model"),
        (TickerserveError("a domain failure", code="internal_error"), 500, "internal_error"),
        (RuntimeError("a bug"), 500, "internal_error"),
        (MemoryError(), 500, "internal_error"),
    ],
)
def test_the_prediction_lane_maps_failures_as_the_resolver_s_handlers_do(
    api, monkeypatch, fixture, failure, status, code
):
    # Given a prediction that fails with a store outage, a domain error or a bug of ours
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr("tickerserve.http.api.predict", fail)
    event = front_door_event(fixture, method="POST", path="/predict", body="{}")
    # Then both answer the same error response (with Retry-After for the outage)
    response = lane_and_resolver(api, event)
    assert status_and_code(response) == (status, code)
    headers = response.get("headers") or response["multiValueHeaders"]
    assert ("Retry-After" in headers) == (status == 503)


def test_the_prediction_lane_is_taken_and_leaves_middlewares_to_the_resolver(api, monkeypatch):
    event = front_door_event("rest_predict.json", method="POST", path="/predict", body=SMH_BODY)

    # Given a resolver that would fail if it were asked: the lane answers on its own
    def not_routed(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("resolved through the router")

    monkeypatch.setattr(api.rest, "resolve", not_routed)
    assert api.handle(event, None)["statusCode"] == 200
    monkeypatch.undo()
    # Given a middleware on the resolver: the request goes the whole way, so it runs
    seen: list[str] = []

    def middleware(app: Any, next_middleware: Any) -> Any:
        seen.append(app.current_event.path)
        return next_middleware(app)

    api.rest.use([middleware])
    assert api.handle(event, None)["statusCode"] == 200
    assert seen == ["/predict"]


def test_with_powertools_dev_output_on_every_prediction_is_resolved(
    store_dir, tmp_path, monkeypatch, capsys
):
    # Given POWERTOOLS_DEV, with which Powertools' resolvers print each event they resolve
    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    settings = Settings(store_path=str(store_dir), cache_dir=str(tmp_path / "cache"))
    api = Api(ModelService(settings))
    # Then a prediction goes through the resolver, which prints it
    with pytest.warns(UserWarning, match="POWERTOOLS_DEV environment variable is enabled"):
        assert api.handle(load_event("rest_predict.json"), None)["statusCode"] == 200
    assert "rest" in api.__dict__
    assert '"httpMethod":"POST"' in capsys.readouterr().out


def test_other_routes_build_their_resolver_once_when_first_asked(api):
    assert api.handle(load_event("rest_predict.json"), None)["statusCode"] == 200
    assert "rest" not in api.__dict__ and "http" not in api.__dict__
    assert api.handle(load_event("rest_health.json"), None)["statusCode"] == 200
    built = api.__dict__["rest"]
    assert api.handle(load_event("rest_models.json"), None)["statusCode"] == 200
    assert api.rest is built and "http" not in api.__dict__


def test_the_prediction_lane_refuses_predictions_on_the_outcomes_entry_point(store_dir, tmp_path):
    settings = Settings(store_path=str(store_dir), cache_dir=str(tmp_path / "cache"))
    outcomes = Api(ModelService(settings), entry="outcomes")
    for fixture in FRONT_DOOR_EVENTS:
        event = front_door_event(fixture, method="POST", path="/predict", body=SMH_BODY)
        response = lane_and_resolver(outcomes, event)
        assert status_and_code(response) == (403, "wrong_entry_point")
        outcomes = Api(ModelService(settings), entry="outcomes")
