"""Property: whatever JSON a client sends, the API answers a well-formed 2xx or 4xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import DemoModels, load_event, populate
from tickerserve.http.api import Api
from tickerserve.publishing.demo import FEATURES
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.store import LocalStore

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
tickers = st.sampled_from(["SMH", "spy", "AAPL", "TLT", "ZZZ", "", "../x", "A" * 16]) | st.text(
    max_size=8
)
feature_maps = st.dictionaries(st.sampled_from([*FEATURES, "other"]), scalars, max_size=14)
feature_lists = st.lists(st.floats() | st.integers() | st.none(), min_size=10, max_size=14)
predict_bodies = st.fixed_dictionaries(
    {"ticker": tickers, "features": feature_maps | feature_lists | json_values},
    optional={
        "alias": st.sampled_from(["production", "staging", "BAD"]) | json_values,
        "version": st.sampled_from(["1.0.0", "2.0.0", "x"]) | json_values,
        "asset_class": st.sampled_from(["stock", "etf"]) | json_values,
        "extra": json_values,
    },
)
bodies = predict_bodies | json_values
batch_bodies = st.fixed_dictionaries({"items": st.lists(bodies, max_size=6)}) | json_values


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, models: DemoModels) -> Api:
    root = tmp_path_factory.mktemp("fuzz-store")
    populate(LocalStore(root), models)
    cache = tmp_path_factory.mktemp("fuzz-cache")
    return Api(ModelService(Settings(store_path=str(root), cache_dir=str(cache))))


def check(api: Api, path: str, body: Any) -> dict[str, Any]:
    event = load_event("rest_predict.json")
    event["path"] = event["resource"] = path
    event["body"] = json.dumps(body)
    response = api.handle(event, None)
    status = response["statusCode"]
    payload = json.loads(response["body"])
    assert 200 <= status < 500, payload
    if status >= 400:
        assert set(payload) == {"error"}
        assert isinstance(payload["error"]["code"], str) and payload["error"]["message"]
    return payload


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_predict_never_errors_on_client_input(api, body):
    payload = check(api, "/predict", body)
    if "prediction" in payload:
        assert payload["prediction"] in payload["probabilities"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=batch_bodies)
def test_batch_never_errors_on_client_input(api, body):
    payload = check(api, "/predict/batch", body)
    if "results" in payload:
        assert len(payload["results"]) == len(body["items"])
        assert payload["succeeded"] + payload["failed"] == len(body["items"])
        for result in payload["results"]:
            assert ("error" in result) != ("prediction" in result)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_direct_invoke_never_raises(api, body):
    result = api.handle(body, None)
    assert isinstance(result, dict)
    if "error" in result:
        assert result["error"]["code"] != "internal_error"
