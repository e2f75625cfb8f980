"""Every family the seeds bring, converted pickle-free and served through the handler (REST v1,
HTTP v2, direct): each answers what its original estimator answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.family_support import Family, families, rows
from tests.support import REGISTRY_KEY, load_event
from tickerserve.http.api import Api
from tickerserve.publishing.demo import FEATURES
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.model import LoadedModel
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.store import LocalStore

NAMES = sorted(families())
TICKERS = {name: f"F{i:02d}" for i, name in enumerate(NAMES)}


def model_name(family: str) -> str:
    return f"families/{family}"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("families")
    store = LocalStore(root)
    for name, family in families().items():
        publish_bundle(
            store,
            family.bundle(model_name(name)),
            registry_key=REGISTRY_KEY,
            routes={TICKERS[name]: "stock"},
        )
    return root


@pytest.fixture
def api(store_dir: Path, tmp_path: Path) -> Api:
    return Api(ModelService(Settings(store_path=str(store_dir), cache_dir=str(tmp_path / "c"))))


def expected(family: Family, x: np.ndarray) -> np.ndarray:
    return np.asarray(family.reference(x), dtype=np.float64)


@pytest.mark.parametrize("name", NAMES)
def test_loaded_model_answers_like_the_original(name: str):
    # Given a family's original estimator(s) and its converted bundle
    family = families()[name]
    bundle = family.bundle(model_name(name))
    model = LoadedModel(bundle.metadata, bundle.files)
    x = rows(40, missing=family.missing)
    # When predicting one row at a time and as a batch
    batch = model.predict(x).outputs
    singles = np.concatenate([model.predict(x[i : i + 1]).outputs for i in range(len(x))])
    # Then both match the original's own output
    want = expected(family, x)
    assert np.allclose(batch, want, rtol=1e-9, atol=1e-12), np.abs(batch - want).max()
    np.testing.assert_allclose(singles, batch, rtol=1e-12, atol=1e-15)
    assert bundle.metadata.task == family.task
    assert bundle.metadata.accepts_missing is family.missing


def body_for(name: str, row: np.ndarray) -> dict[str, Any]:
    features = {n: (None if np.isnan(v) else float(v)) for n, v in zip(FEATURES, row, strict=True)}
    return {"ticker": TICKERS[name], "features": features}


def rest(body: dict[str, Any]) -> dict[str, Any]:
    event = load_event("rest_predict.json")
    event["body"] = json.dumps(body)
    return event


def http(body: dict[str, Any]) -> dict[str, Any]:
    event = load_event("http_predict.json")
    event["body"] = json.dumps(body)
    return event


def answer(api: Api, how: str, body: dict[str, Any]) -> dict[str, Any]:
    if how == "direct":
        return dict(api.handle(body, None))
    response = api.handle(rest(body) if how == "rest" else http(body), None)
    assert response["statusCode"] == 200, response["body"]
    return dict(json.loads(response["body"]))


@pytest.mark.parametrize("how", ["rest", "http", "direct"])
@pytest.mark.parametrize("name", NAMES)
def test_handler_answers_like_the_original(api, name: str, how: str):
    family = families()[name]
    x = rows(3, missing=family.missing, seed=11)
    want = expected(family, x)
    for row, theirs in zip(x, want, strict=True):
        body = answer(api, how, body_for(name, row))
        assert body["model"]["name"] == model_name(name)
        if family.task == "regression":
            # A value, and nothing a classifier would say
            assert set(body) == {"request_id", "ticker", "signal", "model", "prediction"}
            assert np.isclose(body["prediction"], theirs, rtol=1e-9, atol=1e-12)
            continue
        labels = family.labels or []
        assert list(body["probabilities"]) == labels
        got = np.array([body["probabilities"][c] for c in labels])
        assert np.allclose(got, theirs, rtol=1e-9, atol=1e-12)
        assert body["prediction"] == labels[int(np.argmax(theirs))]
        assert ("agreement" in body) is (name == "weighted_classifier")


def test_weighted_ensemble_reports_member_agreement(api):
    # Given seed 002's weighted RandomForest + GradientBoosting ensemble
    family = families()["weighted_classifier"]
    rf, gb = family.estimators["rf"], family.estimators["gb"]
    x = rows(30, missing=False, seed=3)
    for row in x:
        body = answer(api, "rest", body_for("weighted_classifier", row))
        # Then agreement is the share of members whose own label is the ensemble's label
        label = (family.labels or []).index(body["prediction"])
        votes = [int(np.argmax(m.predict_proba(row.reshape(1, -1)))) == label for m in (rf, gb)]
        assert body["agreement"] == sum(votes) / 2


def test_batch_mixes_classifiers_and_regressors(api):
    names = ["stack_regressor", "xgboost_classifier", "random_forest_regressor"]
    x = rows(len(names), missing=True, seed=9)
    items = [body_for(n, r) for n, r in zip(names, x, strict=True)]
    status = api.handle({"items": items}, None)
    results = status["results"]
    assert status["succeeded"] == 3
    for name, row, result in zip(names, x, results, strict=True):
        want = expected(families()[name], row.reshape(1, -1))[0]
        if families()[name].task == "regression":
            assert np.isclose(result["prediction"], want, rtol=1e-9, atol=1e-12)
            assert "probabilities" not in result
        else:
            assert np.allclose(list(result["probabilities"].values()), want, rtol=1e-9)


def test_missing_values_are_refused_where_the_original_refused_them(api):
    # Given classic gradient boosting (scikit-learn raises on NaN)
    body = body_for("gradient_boosting_regressor", rows(1, missing=False)[0])
    body["features"]["iv_rank"] = None
    # When a feature is null / Then a 400 names it
    response = api.handle(rest(body), None)
    error = json.loads(response["body"])["error"]
    assert response["statusCode"] == 400
    assert error["code"] == "missing_values_not_allowed"
    assert error["features"] == ["iv_rank"]


def test_model_description_says_task_members_and_combination(api):
    event = load_event("rest_model.json")
    event["pathParameters"] = {"ticker": TICKERS["stack_regressor"]}
    event["path"] = f"/models/{TICKERS['stack_regressor']}"
    response = api.handle(event, None)
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert body["task"] == "regression"
    assert body["classes"] == []
    assert body["ensemble"] == {
        "method": "stacking",
        "members": [
            {"name": "xgb_model", "kind": "treelite", "estimator": "XGBRegressor", "weight": 1.0},
            {"name": "lgbm_model", "kind": "lightgbm", "estimator": "LGBMRegressor", "weight": 1.0},
        ],
        "meta_learner": {"estimator": "Ridge", "link": "identity"},
    }


# -- timeframes ------------------------------------------------------------------------------
@pytest.fixture
def timeframe_api(store_dir: Path, tmp_path: Path) -> Api:
    """TFX: d1 (the default route too) -> the weighted ensemble, h1 -> the XGBoost classifier,
    routed with the CLI as a user would."""
    from tests.cli_support import cli

    weighted, xgb_model = model_name("weighted_classifier"), model_name("xgboost_classifier")
    for args in (
        ["TFX", "-m", weighted, "--asset-class", "stock"],
        ["TFX", "-m", weighted, "--asset-class", "stock", "--timeframe", "d1"],
        ["TFX", "-m", xgb_model, "--asset-class", "stock", "--timeframe", "h1"],
    ):
        result = cli("--store", str(store_dir), "route", *args)
        assert result.exit_code == 0, result.stderr
    return Api(ModelService(Settings(store_path=str(store_dir), cache_dir=str(tmp_path / "c"))))


def test_requests_route_by_timeframe(timeframe_api):
    row = rows(1, missing=False)[0]
    body = {"ticker": "TFX", "features": body_for("weighted_classifier", row)["features"]}
    default = answer(timeframe_api, "rest", body)
    daily = answer(timeframe_api, "http", {**body, "timeframe": "d1"})
    hourly = answer(timeframe_api, "direct", {**body, "timeframe": "h1"})
    assert default["model"]["name"] == daily["model"]["name"] == model_name("weighted_classifier")
    assert "timeframe" not in default
    assert daily["timeframe"] == "d1"
    assert hourly["model"]["name"] == model_name("xgboost_classifier")
    want = expected(families()["xgboost_classifier"], row.reshape(1, -1))[0]
    assert np.allclose(list(hourly["probabilities"].values()), want, rtol=1e-9)


@pytest.mark.parametrize(
    ("timeframe", "status", "code"),
    [
        ("m15", 404, "unknown_timeframe"),
        ("1d", 400, "invalid_field"),
        ("d1000", 400, "invalid_field"),
    ],
)
def test_unknown_or_malformed_timeframes(timeframe_api, timeframe, status, code):
    body = body_for("weighted_classifier", rows(1, missing=False)[0])
    response = timeframe_api.handle(rest({**body, "ticker": "TFX", "timeframe": timeframe}), None)
    assert response["statusCode"] == status
    assert json.loads(response["body"])["error"]["code"] == code


def test_model_description_lists_the_tickers_timeframes(timeframe_api):
    event = load_event("rest_model.json")
    event["pathParameters"] = {"ticker": "TFX"}
    event["path"] = "/models/TFX"
    event["queryStringParameters"] = {"timeframe": "h1"}
    event["multiValueQueryStringParameters"] = {"timeframe": ["h1"]}
    body = json.loads(timeframe_api.handle(event, None)["body"])
    assert body["timeframe"] == "h1"
    assert body["model"]["name"] == model_name("xgboost_classifier")
    assert body["timeframes"] == {
        "d1": model_name("weighted_classifier"),
        "h1": model_name("xgboost_classifier"),
    }
