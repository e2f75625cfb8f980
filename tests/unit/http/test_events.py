"""Every event shape gets a JSON answer: a malformed proxy envelope is a 4xx in the shape its
caller expects, never a 500 or an exception out of the handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import (
    APIGatewayProxyEvent,
    APIGatewayProxyEventV2,
)
from aws_lambda_powertools.utilities.data_classes.common import CaseInsensitiveDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import EVENTS, DemoModels, load_event, populate
from tickerserve.http import events
from tickerserve.http.api import Api
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.store import LocalStore

FIXTURES = sorted(p.name for p in EVENTS.glob("*.json"))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, models: DemoModels) -> Api:
    root = tmp_path_factory.mktemp("events-store")
    populate(LocalStore(root), models)
    cache: Path = tmp_path_factory.mktemp("events-cache")
    return Api(ModelService(Settings(store_path=str(root), cache_dir=str(cache))))


def answer(api: Api, event: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Status, headers and JSON body of a proxy response (REST v1 or HTTP v2 shape)."""
    response = api.handle(event, None)
    headers = response.get("headers") or {
        k: v[-1] for k, v in response["multiValueHeaders"].items()
    }
    return response["statusCode"], headers, json.loads(response["body"])


def with_changes(name: str, **changes: Any) -> dict[str, Any]:
    event = load_event(name)
    for key, value in changes.items():
        if value is ...:
            event.pop(key)
        else:
            event[key] = value
    return event


@pytest.mark.parametrize(
    ("event", "shape", "problem"),
    [
        (with_changes("rest_predict.json", body={"ticker": "SMH"}), "rest", "body must be"),
        (with_changes("rest_predict.json", body=42), "rest", "body must be"),
        (with_changes("rest_predict.json", requestContext=...), "rest", "requestContext"),
        (with_changes("rest_predict.json", headers=["x"]), "rest", "headers"),
        (with_changes("rest_predict.json", httpMethod=None), "rest", "httpMethod"),
        (with_changes("rest_predict.json", isBase64Encoded="no"), "rest", "isBase64Encoded"),
        (with_changes("http_predict.json", requestContext=...), "http", "requestContext"),
        (with_changes("http_predict.json", requestContext={}), "http", "requestContext.http"),
        (with_changes("http_predict.json", body={"ticker": "SMH"}), "http", "body must be"),
        (with_changes("http_predict.json", rawPath=...), "http", "rawPath"),
        (with_changes("http_predict.json", cookies="a=b"), "http", "cookies"),
    ],
)
def test_a_malformed_envelope_is_400_invalid_event(api, event, shape, problem):
    # When a hand-made proxy event reaches the function, Then it is a JSON 400, not an error
    response = api.handle(event, None)
    assert ("multiValueHeaders" if shape == "rest" else "headers") in response
    status, headers, body = answer(api, event)
    assert (status, body["error"]["code"]) == (400, "invalid_event")
    assert problem in body["error"]["message"]
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/health\n", "/predict\r", "/models/SMH\n", "/models\x00"])
def test_a_path_with_control_characters_matches_no_route(api, path):
    # Powertools' route patterns end in $, which also matches before a trailing newline
    event = with_changes("rest_health.json", path=path)
    status, _, body = answer(api, event)
    assert (status, body["error"]["code"]) == (404, "route_not_found")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


@st.composite
def damaged_events(draw: st.DrawFn) -> dict[str, Any]:
    """A real API Gateway event with some top-level keys removed or replaced."""
    event = load_event(draw(st.sampled_from(FIXTURES)))
    for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=4, unique=True)):
        if draw(st.booleans()):
            event.pop(key)
        else:
            event[key] = draw(json_values)
    return event


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=damaged_events())
def test_no_event_shape_gets_a_5xx_or_an_exception(api, event):
    response = api.handle(event, None)
    if "statusCode" not in response:  # no longer a proxy event: a direct invocation's body
        assert set(response) == {"error"} or "ticker" in response or "results" in response
        return
    status = response["statusCode"]
    body = json.loads(response["body"])
    assert 200 <= status < 500, body
    if status >= 400:
        assert set(body) == {"error"} and body["error"]["code"]


@pytest.mark.parametrize("ticker", ["\u0084", "\u00a7", "A\u00a0B"])
def test_a_path_no_route_pattern_takes_is_404_not_405_for_a_method_the_path_serves(api, ticker):
    # GET is what /models/{ticker} serves: a 405 naming GET as the allowed method is nonsense
    event = with_changes("rest_model.json", path=f"/models/{ticker}")
    status, _, body = answer(api, event)
    assert (status, body["error"]["code"]) in ((404, "route_not_found"), (400, "invalid_ticker"))


# -- what the prediction lane reads from an event, against Powertools' own event classes -----
header_names = st.sampled_from(
    [
        *("Content-Type", "content-type", "CONTENT-TYPE", "cONTENT-tYPE"),
        *("X-Request-Id", "x-request-id", "X-REQUEST-ID"),
        *("Accept", "x-content-typ", "content-types", "X-Amzn-Trace-Id", "x-request-i"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(header_names, st.text(max_size=12), max_size=8) | st.none())
def test_headers_are_read_as_powertools_case_insensitive_view_reads_them(headers):
    # Any names in any case, twice in different cases too: the later one counts
    view = CaseInsensitiveDict(headers)
    expected = (view.get("content-type"), view.get("x-request-id"))
    assert events.content_type_and_request_id(headers) == expected


@pytest.mark.parametrize("fixture", FIXTURES)
@pytest.mark.parametrize("stage", [None, "$default", "dev", "v1-live", "prod"])
def test_the_routed_path_is_the_path_powertools_routes(fixture, stage):
    event = load_event(fixture)
    kind = events.kind_of(event)
    if kind == "direct":
        return
    if stage is not None:
        event["requestContext"]["stage"] = stage
    proxy_class = APIGatewayProxyEvent if kind == "rest" else APIGatewayProxyEventV2
    assert events.routed_path(event, kind) == proxy_class(event).path


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=damaged_events())
def test_the_quick_envelope_check_agrees_with_the_checks_one_by_one(event):
    # The warm path's one-pass check says "sound" exactly when no check finds a problem
    kind = events.kind_of(event)
    if kind == "direct":
        return
    quick = events._sound_rest if kind == "rest" else events._sound_http
    assert quick(event) == (events._problems(event, kind) is None)


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_fixture_s_envelope_passes_the_quick_check(fixture):
    event = load_event(fixture)
    kind = events.kind_of(event)
    if kind != "direct":
        assert (events._sound_rest if kind == "rest" else events._sound_http)(event)


@pytest.mark.parametrize(
    ("fixture", "key", "value"),
    [
        ("rest_predict.json", "multiValueHeaders", {"Accept": "application/json"}),
        ("rest_predict.json", "multiValueHeaders", {"Accept": ["a", 1]}),
        ("rest_predict.json", "multiValueQueryStringParameters", {"limit": [None]}),
        ("rest_predict.json", "headers", {"Accept": ["application/json"]}),
        ("rest_predict.json", "queryStringParameters", {"limit": 5}),
        ("rest_predict.json", "pathParameters", []),
        ("rest_predict.json", "stageVariables", ""),
        ("rest_predict.json", "isBase64Encoded", 0),
        ("rest_predict.json", "body", b"{}"),
        ("http_predict.json", "headers", {"accept": None}),
        ("http_predict.json", "cookies", ["a=b", 1]),
        ("http_predict.json", "cookies", "a=b"),
        ("http_predict.json", "rawQueryString", 0),
        ("http_predict.json", "requestContext", {"http": {"method": 1}}),
    ],
)
def test_the_quick_envelope_check_finds_each_damaged_field(fixture, key, value):
    event = load_event(fixture)
    event[key] = value
    kind = events.kind_of(event)
    quick = events._sound_rest if kind == "rest" else events._sound_http
    assert not quick(event)
    assert events.envelope_problem(event, kind) is not None
