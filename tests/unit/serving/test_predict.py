"""The prediction pipeline (``predict`` for one body, ``predict_batch`` for many): the body's
contract, the answer's shape, request ids, and one behaviour for a single request and a batch
item alike: the same answer, the same canary fallback, the same capture record and the same
shadow scoring."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.capture_support import ListSink
from tests.family_support import SPACES, families, original_output, rows
from tests.monitor_support import classification_baseline, reference_rows
from tests.support import REGISTRY_KEY, DemoModels, load_event
from tickerserve.baselines.persistence import attach_to_bundle
from tickerserve.errors import BadRequest, NotFound, PayloadTooLarge
from tickerserve.layout import artifact_key
from tickerserve.publishing.demo import FEATURES as FEATURE_NAMES
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving import predict as predict_module
from tickerserve.serving.capture import Capture
from tickerserve.serving.explanations import DEFAULT_TOP
from tickerserve.serving.model import LoadedModel
from tickerserve.serving.predict import (
    MAX_BATCH_ITEMS,
    MAX_EXPLAINED_ITEMS,
    PredictRequest,
    parse_request,
    predict,
    predict_batch,
)
from tickerserve.serving.service import ModelService
from tickerserve.serving.traffic import CANARY_SALT, Challengers, share
from tickerserve.settings import Settings
from tickerserve.storage.bundle import Bundle
from tickerserve.storage.registry import CanarySettings, ShadowSettings, update_registry
from tickerserve.storage.store import LocalStore

FEATURES: dict[str, float] = json.loads(load_event("rest_predict.json")["body"])["features"]
SMH = "etfs/SMH"
GENERATED = re.compile(r"[0-9a-f]{32}")
# What differs between two captures of the same row: when, how long, and through which door.
VOLATILE = ("time", "latency_us", "source")


@pytest.fixture
def store(tmp_path: Path, models: DemoModels) -> LocalStore:
    """SMH 1.0.0 in production with 1.0.1 as challenger and canary, SPY, and a regressor (VIX)."""
    store = LocalStore(tmp_path / "store")
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    publish_bundle(
        store, models.smh_v2, registry_key=REGISTRY_KEY, aliases=("challenger", "canary")
    )
    publish_bundle(store, models.spy, registry_key=REGISTRY_KEY, routes={"SPY": "etf"})
    regressor = families()["xgboost_regressor"].bundle("etfs/VIX")
    publish_bundle(store, regressor, registry_key=REGISTRY_KEY, routes={"VIX": "etf"})
    return store


def service_for(store: LocalStore, tmp_path: Path) -> ModelService:
    # TTL 0: every call sees the registry as the test just wrote it.
    settings = Settings(registry_ttl=0, cache_dir=str(tmp_path / "cache"))
    return ModelService(settings, store=store)


def body(rid: str | None = None, ticker: str = "SMH", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ticker": ticker, "features": FEATURES, **extra}
    if rid is not None:
        out["request_id"] = rid
    return out


def canary_ids(n: int, weight: float) -> list[str]:
    """Request ids the canary at ``weight`` takes (the split is a hash of the id)."""
    ids = (f"canary-{i}" for i in range(10_000))
    return [rid for rid in ids if share(rid, CANARY_SALT) < weight][:n]


def without(record: dict[str, Any], keys: tuple[str, ...] = VOLATILE) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in keys}


# -- the body's contract ---------------------------------------------------------------------


def test_a_valid_body_becomes_a_request_with_an_upper_case_ticker():
    request = parse_request(
        {"ticker": "smh", "features": [1.0], "alias": "staging", "timeframe": "h1",
         "request_id": "order-1", "version": None}
    )  # fmt: skip
    assert request == PredictRequest("SMH", [1.0], "staging", None, None, "h1", "order-1")
    assert parse_request({"ticker": "SPY", "features": {}, "request_id": "a b"}).request_id is None


@pytest.mark.parametrize(
    ("explain", "top"), [(True, DEFAULT_TOP), (3, 3), (500, 500), (False, None), (None, None)]
)
def test_explain_asks_for_the_top_ten_or_the_top_k_contributions(explain: Any, top: int | None):
    assert parse_request({"ticker": "SMH", "features": {}, "explain": explain}).explain == top
    assert parse_request({"ticker": "SMH", "features": {}}).explain is None


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        ([], "invalid_body", "body must be a JSON object"),
        ({"ticker": "SMH", "features": {}, "colour": 1}, "unknown_fields",
         "unknown field(s): colour; expected alias, asset_class, explain, features, request_id, "
         "signal, ticker, timeframe, version"),
        ({"features": {}}, "missing_field", "missing field: ticker"),
        ({"ticker": "SMH"}, "missing_field", "missing field: features"),
        ({"ticker": "S M H", "features": {}}, "invalid_ticker", "invalid ticker 'S M H': "),
        ({"ticker": None, "features": {}}, "invalid_ticker", "invalid ticker None: "),
        ({"ticker": "SMH", "features": {}, "alias": "Prod"}, "invalid_field", "invalid alias"),
        ({"ticker": "SMH", "features": {}, "alias": 3}, "invalid_field",
         "alias must be a string"),
        ({"ticker": "SMH", "features": {}, "alias": "a", "version": "1.0.0"}, "invalid_field",
         "give either alias or version, not both"),
        ({"ticker": "SMH", "features": "1,2"}, "invalid_features",
         "features must be an object of name -> number or a list of numbers"),
        ({"ticker": "SMH", "features": {}, "request_id": 7}, "invalid_field",
         "request_id must be a string"),
        ({"ticker": "SMH", "features": {}, "explain": 0}, "invalid_field",
         "explain must be true, false or the number of contributions to return (1 or more), "
         "not 0"),
        ({"ticker": "SMH", "features": {}, "explain": 2.5}, "invalid_field",
         "explain must be true, false or the number of contributions to return (1 or more), "
         "not 2.5"),
        ({"ticker": "SMH", "features": {}, "explain": "yes"}, "invalid_field",
         "explain must be true, false or the number of contributions to return (1 or more), "
         "not 'yes'"),
    ],
)  # fmt: skip
def test_a_body_that_breaks_the_contract_is_a_400_naming_the_problem(
    raw: Any, code: str, message: str
):
    # Alone, and as a batch item (whose tickers are checked once per batch)
    for tickers in (None, {}, {"SMH": "SMH"}):
        with pytest.raises(BadRequest) as caught:
            parse_request(raw, tickers)
        assert caught.value.code == code
        assert caught.value.message.startswith(message)


def test_a_batch_checks_each_ticker_once_and_makes_the_requests_a_single_body_makes():
    tickers: dict[str, str] = {}
    bodies = [
        {"ticker": "smh", "features": {"rsi_14": 1.0}},
        {"ticker": "smh", "features": [1.0, 2.0]},
        {"ticker": "SPY", "features": {}},
        {"ticker": "spy", "features": {}, "request_id": "order-1"},
        {"ticker": "BRK.B", "features": {}, "timeframe": "d1"},
    ]
    assert [parse_request(b, tickers) for b in bodies] == [parse_request(b) for b in bodies]
    # Bodies of a ticker and features only are checked once per distinct ticker
    assert tickers == {"smh": "SMH", "SPY": "SPY"}


# -- one request -----------------------------------------------------------------------------


def test_the_answer_is_the_models_prediction_with_its_exact_version(store, tmp_path, models):
    answer = predict(service_for(store, tmp_path), body("r-1"))
    meta = models.smh.metadata
    expected = LoadedModel(meta, models.smh.files).predict_proba(
        np.array([[FEATURES[n] for n in meta.used_features]])
    )[0]
    assert answer["request_id"] == "r-1"
    assert answer["ticker"] == "SMH"
    assert answer["model"] == {"name": SMH, "version": "1.0.0", "alias": "production"}
    assert answer["probabilities"] == dict(zip(meta.classes, expected.tolist(), strict=True))
    assert answer["prediction"] == meta.classes[int(expected.argmax())]
    assert answer["confidence"] == float(expected.max())
    assert "timeframe" not in answer and "agreement" not in answer


def test_a_regressor_answers_a_value_and_nothing_about_classes(store, tmp_path):
    family = families()["xgboost_regressor"]
    x = rows(1, missing=False, seed=9)
    features = dict(zip(FEATURES, x[0].tolist(), strict=True))
    answer = predict(service_for(store, tmp_path), {"ticker": "VIX", "features": features})
    assert answer["prediction"] == float(family.reference(x)[0])
    assert "probabilities" not in answer and "confidence" not in answer


def test_the_header_id_wins_over_the_bodys_and_without_either_one_is_generated(store, tmp_path):
    service = service_for(store, tmp_path)
    assert predict(service, body("from-body"), request_id="from-header")["request_id"] == (
        "from-header"
    )
    assert predict(service, body("from-body"))["request_id"] == "from-body"
    generated = {predict(service, body())["request_id"] for _ in range(3)}
    assert len(generated) == 3 and all(GENERATED.fullmatch(g) for g in generated)


def test_pinned_versions_and_aliases_answer_and_unknown_ones_are_404(store, tmp_path):
    service = service_for(store, tmp_path)
    assert predict(service, body(version="1.0.1"))["model"] == {
        "name": SMH, "version": "1.0.1", "alias": None,
    }  # fmt: skip
    assert predict(service, body(alias="challenger"))["model"]["version"] == "1.0.1"
    with pytest.raises(NotFound) as caught:
        predict(service, body(alias="staging"))
    assert caught.value.code == "unknown_alias"
    with pytest.raises(NotFound) as caught:
        predict(service, body(ticker="GME"))
    assert caught.value.code == "unknown_ticker"


def test_features_the_model_cannot_take_are_a_400(store, tmp_path):
    service = service_for(store, tmp_path)
    with pytest.raises(BadRequest) as caught:
        predict(service, body(features={"rsi_14": 1.0}))
    assert caught.value.code == "missing_features"


# -- a batch ---------------------------------------------------------------------------------


def test_batch_items_answer_as_single_requests_do_with_per_item_errors(store, tmp_path):
    service = service_for(store, tmp_path)
    items = [body("a"), body(ticker="GME"), body("c", ticker="SPY"), {"ticker": "SMH"}]
    answer = predict_batch(service, {"items": items, "request_id": "batch-7"})
    assert (answer["request_id"], answer["succeeded"], answer["failed"]) == ("batch-7", 2, 2)
    first, unknown, spy, malformed = answer["results"]
    assert first == {"index": 0, **predict(service, body("a"))}
    assert spy == {"index": 2, **predict(service, body("c", ticker="SPY"))}
    assert unknown["request_id"] == "batch-7-1" and unknown["index"] == 1
    assert unknown["error"]["code"] == "unknown_ticker"
    assert malformed["error"] == {"code": "missing_field", "message": "missing field: features"}


def test_a_batch_loads_and_calls_each_model_version_once(store, tmp_path, monkeypatch):
    service = service_for(store, tmp_path)
    calls: list[tuple[str, int]] = []
    real = LoadedModel.predict

    def counted(self: LoadedModel, matrix: np.ndarray):
        calls.append((self.metadata.model, matrix.shape[0]))
        return real(self, matrix)

    monkeypatch.setattr(LoadedModel, "predict", counted)
    items = [body(ticker=t) for t in ("SMH", "SPY", "SMH", "SPY", "SMH")]
    assert predict_batch(service, {"items": items})["succeeded"] == 5
    assert sorted(calls) == [(SMH, 3), ("etfs/SPY", 2)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], 'body must be {"items": [<predict bodies>]}'),
        ({"items": {}}, 'body must be {"items": [<predict bodies>]}'),
        ({"items": [], "extra": 1}, 'body must be {"items": [<predict bodies>]}'),
        ({"items": []}, "items must not be empty"),
    ],
)
def test_a_malformed_batch_is_a_400(store, tmp_path, raw: Any, message: str):
    with pytest.raises(BadRequest) as caught:
        predict_batch(service_for(store, tmp_path), raw)
    assert (caught.value.code, caught.value.message) == ("invalid_body", message)


def test_a_batch_over_the_limit_is_a_413_before_anything_is_read(tmp_path):
    # No store at all: the size is refused before the registry is needed.
    service = ModelService(Settings(store_path=str(tmp_path / "none")))
    with pytest.raises(PayloadTooLarge) as caught:
        predict_batch(service, {"items": [body()] * (MAX_BATCH_ITEMS + 1)})
    assert caught.value.code == "batch_too_large"
    assert caught.value.message == f"{MAX_BATCH_ITEMS + 1} items; a batch holds at most 1000"


def test_a_batch_naming_a_request_id_twice_is_refused_before_anything_is_read(tmp_path):
    # No store at all: every entry point (REST, HTTP, direct invoke) shares this check.
    service = ModelService(Settings(store_path=str(tmp_path / "none")))
    items = [body(request_id="a"), body(request_id="b"), body(request_id="a")]
    with pytest.raises(BadRequest) as caught:
        predict_batch(service, {"items": items})
    assert caught.value.code == "duplicate_request_id"
    assert caught.value.message == "request_id must be unique within a batch; repeated: a"


# -- one behaviour for a request and a batch item ---------------------------------------------


def test_a_request_and_a_batch_item_are_captured_alike(store, tmp_path):
    service = service_for(store, tmp_path)
    single, batched = ListSink(), ListSink()
    rids = [f"cap-{i}" for i in range(4)]
    for rid in rids:
        predict(service, body(rid), capture=Capture(single), source="api")
    predict_batch(service, {"items": [body(r) for r in rids]}, capture=Capture(batched),
                  source="batch")  # fmt: skip
    assert [r["source"] for r in single.records] == ["api"] * 4
    assert [r["source"] for r in batched.records] == ["batch"] * 4
    assert [without(r) for r in single.records] == [without(r) for r in batched.records]
    record = single.records[0]
    assert (record["model"], record["version"], record["role"]) == (SMH, "1.0.0", "champion")
    assert record["features"] == {n: FEATURES[n] for n in record["features"]}


def test_a_canary_that_cannot_answer_falls_back_to_the_champion_in_both(store, tmp_path):
    # Given a canary whose model file is garbage, and three requests it takes
    canary = CanarySettings("canary", 0.5)
    update_registry(store, REGISTRY_KEY, lambda r: r.set_canary(SMH, canary))
    store.put(artifact_key(SMH, "1.0.1", "model.txt"), b"garbage")
    service = service_for(store, tmp_path)
    sink = ListSink()
    one, two, three = canary_ids(3, 0.5)
    # When one is answered alone and two as a batch
    single = predict(service, body(one), capture=Capture(sink))
    batch = predict_batch(service, {"items": [body(two), body(three)]}, capture=Capture(sink))
    # Then the champion answered all three, each fallback counted and captured as the champion's
    assert single["model"]["alias"] == "production"
    assert [r["model"]["alias"] for r in batch["results"]] == ["production"] * 2
    assert service.counters.canary_fallbacks == 3
    assert [(r["request_id"], r["role"], r["version"]) for r in sink.records] == [
        (one, "champion", "1.0.0"), (two, "champion", "1.0.0"), (three, "champion", "1.0.0"),
    ]  # fmt: skip


def test_a_canary_that_answers_is_named_in_both(store, tmp_path):
    canary = CanarySettings("canary", 0.5)
    update_registry(store, REGISTRY_KEY, lambda r: r.set_canary(SMH, canary))
    service = service_for(store, tmp_path)
    sink = ListSink()
    one, two = canary_ids(2, 0.5)
    single = predict(service, body(one), capture=Capture(sink))
    (item,) = predict_batch(service, {"items": [body(two)]}, capture=Capture(sink))["results"]
    expected = {"name": SMH, "version": "1.0.1", "alias": "canary"}
    assert single["model"] == expected and item["model"] == expected
    assert [r["role"] for r in sink.records] == ["canary", "canary"]
    assert service.counters.canary_fallbacks == 0


def test_a_shadow_is_scored_alike_for_a_request_and_a_batch_item(store, tmp_path):
    # Given a shadow challenger, loaded
    update_registry(
        store, REGISTRY_KEY, lambda r: r.set_shadow(SMH, ShadowSettings("challenger", 1.0))
    )
    service = service_for(store, tmp_path)
    challengers = Challengers(service)
    predict(service, body("warm"), capture=Capture(ListSink()), challengers=challengers)
    assert challengers.wait_idle()
    single, batched = ListSink(), ListSink()
    # When the same rows are answered one by one and as a batch
    answers = [
        predict(service, body(f"s{i}"), capture=Capture(single), challengers=challengers)
        for i in range(3)
    ]
    predict_batch(service, {"items": [body(f"s{i}") for i in range(3)]},
                  capture=Capture(batched), challengers=challengers)  # fmt: skip
    # Then the answers are the champion's and both captures hold the challenger's output
    assert {a["model"]["version"] for a in answers} == {"1.0.0"}
    pinned = predict(service, body(alias="challenger"))
    strip = ("latency_us",)
    for one, many in zip(single.records, batched.records, strict=True):
        (a,) = one["challengers"]
        (b,) = many["challengers"]
        assert without(a, strip) == without(b, strip)
        assert (a["alias"], a["version"]) == ("challenger", "1.0.1")
        assert a["output"]["probabilities"] == pinned["probabilities"]
    assert service.counters.shadow_failures == 0


# -- warnings: a row unlike the version's reference ---------------------------------------------


def guarded_smh(tmp_path: Path, models: DemoModels) -> LocalStore:
    """SMH 1.0.0 published with a baseline (its reference never missed rsi_14 nor
    iv_percentile; the other used features 2 % of the time), SPY without one."""
    store = LocalStore(tmp_path / "guarded")
    x = reference_rows(np.random.default_rng(8), 2000, 6)
    used = models.smh.metadata.used_features  # rsi_14, iv_percentile, atr_pct, ...
    x[:, used.index("rsi_14")] = np.random.default_rng(9).uniform(20, 80, 2000)
    x[:, used.index("iv_percentile")] = np.random.default_rng(10).uniform(0, 1, 2000)
    baseline = classification_baseline(models.smh, x, None)
    bundle = attach_to_bundle(models.smh, baseline)
    publish_bundle(store, bundle, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    publish_bundle(store, models.spy, registry_key=REGISTRY_KEY, routes={"SPY": "etf"})
    return store


def calm(models: DemoModels, **changes: float | None) -> dict[str, float | None]:
    """Features like the reference (every used one near its centre), with ``changes``."""
    values: dict[str, float | None] = dict.fromkeys(models.smh.metadata.feature_names, 0.1)
    values.update(rsi_14=50.0, iv_percentile=0.5)
    values.update(changes)
    return values


def test_an_answer_warns_about_each_feature_unlike_the_reference(tmp_path, models):
    store = guarded_smh(tmp_path, models)
    events: list[tuple[str, str, float]] = []
    service = ModelService(
        Settings(registry_ttl=0, cache_dir=str(tmp_path / "cache")),
        store=store,
        on_model_event=lambda *event: events.append(event),
    )
    ranges = service.serving_for_ticker("SMH").model.metadata.ranges
    assert ranges is not None
    rsi = ranges["features"]["rsi_14"]
    # A row like the reference: checked, nothing to say
    assert predict(service, {"ticker": "SMH", "features": calm(models)})["warnings"] == []
    # A value beyond the 99.9 % quantile, and a missing one the reference never had
    features = calm(models, rsi_14=140.2, iv_percentile=None, atr_pct=None)
    answer = predict(service, {"ticker": "SMH", "features": features})
    assert answer["warnings"] == [
        {"feature": "rsi_14", "code": "out_of_range", "value": 140.2, "range": rsi[:2]},
        {"feature": "iv_percentile", "code": "unexpected_missing", "value": None,
         "range": ranges["features"]["iv_percentile"][:2]},
    ]  # fmt: skip
    # atr_pct was missing in 2 % of the reference: its null is no warning; the prediction is
    # the model's own whatever the warnings say
    meta = models.smh.metadata
    row = np.array([[np.nan if features[n] is None else features[n] for n in meta.used_features]])
    expected = LoadedModel(meta, models.smh.files).predict_proba(row)[0]
    assert answer["probabilities"] == dict(zip(meta.classes, expected.tolist(), strict=True))
    # A version without a baseline checks nothing: no key at all
    spy = predict(service, {"ticker": "SPY", "features": {**calm(models), "rsi_14": 1e6}})
    assert "warnings" not in spy
    # Counted per model: the metric's dimension is the model
    assert events == [("RequestWarnings", SMH, 2)]
    assert service.counters.request_warnings == 2


def test_batch_items_carry_their_own_warnings_as_single_requests_do(tmp_path, models):
    store = guarded_smh(tmp_path, models)
    service = ModelService(Settings(registry_ttl=0, cache_dir=str(tmp_path / "cache")), store=store)
    items = [
        {"ticker": "SMH", "features": calm(models)},
        {"ticker": "SMH", "features": calm(models, rsi_14=-5.0)},
        {"ticker": "SPY", "features": calm(models, rsi_14=-5.0)},
        {"ticker": "SMH", "features": calm(models, iv_percentile=None, rsi_14=95.0)},
    ]
    results = predict_batch(service, {"items": items})["results"]
    singles = [predict(service, item) for item in items]
    assert [r.get("warnings") for r in results] == [s.get("warnings") for s in singles]
    assert [len(r.get("warnings", ["absent"])) for r in results] == [0, 1, 1, 2]
    assert "warnings" not in results[2]
    assert service.counters.request_warnings == 3 * 2


def test_captured_rows_carry_the_answer_s_warnings(tmp_path, models):
    store = guarded_smh(tmp_path, models)
    service = ModelService(Settings(registry_ttl=0, cache_dir=str(tmp_path / "cache")), store=store)
    sink = ListSink()
    capture = Capture(sink)
    out = predict(service, {"ticker": "SMH", "features": calm(models, rsi_14=140.2)},
                  capture=capture)  # fmt: skip
    predict(service, {"ticker": "SMH", "features": calm(models)}, capture=capture)
    predict(service, {"ticker": "SPY", "features": calm(models)}, capture=capture)
    predict_batch(service, {"items": [{"ticker": "SMH", "features": calm(models, rsi_14=0.0)}]},
                  capture=capture)  # fmt: skip
    warned, clean, unguarded, batched = sink.records
    assert warned["warnings"] == out["warnings"] and len(out["warnings"]) == 1
    assert clean["warnings"] == []
    assert "warnings" not in unguarded
    assert [w["code"] for w in batched["warnings"]] == ["out_of_range"]


# -- explanations: the contributions behind an answer, on request ------------------------------

EXPLAINED = {**SPACES, "stack_regressor": "value"}  # every family with an exact explanation
REFUSED = ("weighted_classifier", "hist_gradient_boosting_classifier")
FAMILY_TICKERS = {name: f"X{i:02d}" for i, name in enumerate(sorted([*EXPLAINED, *REFUSED]))}


@pytest.fixture(scope="module")
def family_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every family that explains, and two that cannot, each routed from its own ticker."""
    root = tmp_path_factory.mktemp("explained")
    store = LocalStore(root)
    for name, ticker in FAMILY_TICKERS.items():
        bundle = families()[name].bundle(f"families/{name}")
        publish_bundle(store, bundle, registry_key=REGISTRY_KEY, routes={ticker: "stock"})
    return root


def family_service(root: Path, tmp_path: Path) -> ModelService:
    return ModelService(Settings(store_path=str(root), cache_dir=str(tmp_path / "cache")))


def row_body(name: str, row: np.ndarray, **extra: Any) -> dict[str, Any]:
    features = {n: None if math.isnan(v) else v for n, v in zip(FEATURE_NAMES, row.tolist(),
                                                                strict=True)}  # fmt: skip
    return {"ticker": FAMILY_TICKERS[name], "features": features, **extra}


def item(result: dict[str, Any]) -> dict[str, Any]:
    """A batch result as a single request answers it (no index)."""
    return {k: v for k, v in result.items() if k != "index"}


@pytest.mark.parametrize("name", sorted(EXPLAINED))
def test_every_family_s_explanation_adds_up_to_its_own_output_alone_and_in_a_batch(
    family_store: Path, tmp_path: Path, name: str
):
    # Given rows for a family's model, each asking for every contribution (k >= its features)
    family = families()[name]
    service = family_service(family_store, tmp_path)
    x = rows(6, missing=family.missing, seed=11)
    bodies = [row_body(name, r, explain=len(FEATURE_NAMES), request_id=f"r{i}")
              for i, r in enumerate(x)]  # fmt: skip
    # When each is asked alone, then all of them in one batch
    alone = [predict(service, b) for b in bodies]
    batch = predict_batch(service, {"items": bodies})
    # Then the batch items are the single answers, explanations included
    assert [item(r) for r in batch["results"]] == alone
    space = EXPLAINED[name]
    original = original_output(name, x, space)
    for r, answer in enumerate(alone):
        explanation = answer["explanation"]
        contributions = explanation["contributions"]
        assert explanation["space"] == space
        assert set(contributions) == set(FEATURE_NAMES)  # all of them, as asked
        # base + all contributions is the answer's output in that space ...
        total = explanation["base"] + math.fsum(contributions.values())
        assert abs(total - explanation["output"]) <= 1e-9 * max(1.0, abs(total))
        # ... which is the original library's own output there, for the predicted class
        if family.task == "regression":
            expected = original[r, 0]
            assert abs(explanation["output"] - answer["prediction"]) <= 1e-6
        else:
            best = family.labels.index(answer["prediction"]) if family.labels else 0
            if space == "margin" and original.shape[1] == 1:  # binary: the positive log-odds
                expected = original[r, 0] if best == 1 else -original[r, 0]
                probability = 1.0 / (1.0 + math.exp(-explanation["output"]))
                assert abs(probability - answer["confidence"]) <= 1e-6
            else:
                expected = original[r, best]
            if space == "probability":
                assert abs(explanation["output"] - answer["confidence"]) <= 1e-6
        # (XGBoost adds its margins up in float32: 1e-6 of their size)
        assert abs(explanation["output"] - expected) <= 1e-6 * max(1.0, abs(expected))


def test_explain_true_shows_the_ten_largest_and_k_the_k_largest_first(store, tmp_path):
    service = service_for(store, tmp_path)
    # SPY's model uses all twelve features: asking for twelve or more shows every one
    everything = predict(service, body(ticker="SPY", explain=50))["explanation"]
    sizes = [abs(c) for c in everything["contributions"].values()]
    assert len(sizes) == 12 and sizes == sorted(sizes, reverse=True)
    top = predict(service, body(ticker="SPY", explain=True))["explanation"]
    three = predict(service, body(ticker="SPY", explain=3))["explanation"]
    ranked = list(everything["contributions"].items())
    assert list(top["contributions"].items()) == ranked[:DEFAULT_TOP]
    assert list(three["contributions"].items()) == ranked[:3]
    for shown in (top, three):  # the same explanation, fewer of its contributions shown
        assert {k: shown[k] for k in ("space", "base", "output")} == {
            k: everything[k] for k in ("space", "base", "output")
        }
    # SMH's uses six: true shows those six; without explain (or false) there is none
    assert len(predict(service, body(explain=True))["explanation"]["contributions"]) == 6
    assert "explanation" not in predict(service, body())
    assert "explanation" not in predict(service, body(explain=False))


def test_a_model_without_an_exact_explanation_refuses_only_the_items_that_ask(
    family_store: Path, tmp_path: Path
):
    service = family_service(family_store, tmp_path)
    (x,) = rows(1, missing=False, seed=3)
    weighted = row_body("weighted_classifier", x, explain=True)
    hist = row_body("hist_gradient_boosting_classifier", x, explain=4)
    # Alone: a 400 explain_unsupported that says why
    with pytest.raises(BadRequest) as caught:
        predict(service, weighted)
    assert caught.value.code == "explain_unsupported"
    assert caught.value.message.startswith(
        "families/weighted_classifier@0.0.0 cannot be explained exactly: a weighted average "
        "combines the probabilities of GradientBoostingClassifier"
    )
    assert "margin space" in caught.value.message
    with pytest.raises(BadRequest) as hist_caught:
        predict(service, hist)
    assert hist_caught.value.code == "explain_unsupported"
    assert "HistGradientBoosting" in hist_caught.value.message
    # In a batch: those items' errors only; the same model answers the items that do not ask
    items = [
        row_body("lightgbm_classifier", x, explain=2),
        weighted,
        {**weighted, "explain": False},
        hist,
        {**weighted, "explain": "all"},
        {**weighted, "explain": None},
    ]
    results = predict_batch(service, {"items": items, "request_id": "b"})["results"]
    assert len(results[0]["explanation"]["contributions"]) == 2
    assert results[1]["error"] == caught.value.to_body()["error"]
    assert item(results[2]) == {**predict(service, {**weighted, "explain": False}),
                                "request_id": "b-2"}  # fmt: skip
    assert results[3]["error"] == hist_caught.value.to_body()["error"]
    assert results[4]["error"]["code"] == "invalid_field"
    assert "explanation" not in results[5] and "probabilities" in results[5]


def test_more_explained_items_than_the_limit_is_a_413_before_anything_is_read(tmp_path):
    # No store at all: the count is refused before the registry is needed.
    service = ModelService(Settings(store_path=str(tmp_path / "none")))
    items = [body(explain=True)] * (MAX_EXPLAINED_ITEMS + 1) + [body()]
    with pytest.raises(PayloadTooLarge) as caught:
        predict_batch(service, {"items": items})
    assert caught.value.code == "too_many_explanations"
    assert caught.value.message.startswith(
        f"{MAX_EXPLAINED_ITEMS + 1} items ask for an explanation; a batch may ask for at most "
        f"{MAX_EXPLAINED_ITEMS}"
    )


def test_a_batch_may_explain_up_to_the_limit(store, tmp_path):
    items = [body(explain=1)] * MAX_EXPLAINED_ITEMS + [body(), body(explain=False)]
    results = predict_batch(service_for(store, tmp_path), {"items": items})["results"]
    assert sum("explanation" in r for r in results) == MAX_EXPLAINED_ITEMS
    assert all("error" not in r for r in results)


def test_a_canary_explains_its_own_answer(store, tmp_path):
    update_registry(store, REGISTRY_KEY, lambda r: r.set_canary(SMH, CanarySettings("canary", 0.5)))
    service = service_for(store, tmp_path)
    one, two = canary_ids(2, 0.5)
    single = predict(service, body(one, explain=True))
    (batched,) = predict_batch(service, {"items": [body(two, explain=True)]})["results"]
    canary_own = predict(service, body(version="1.0.1", explain=True))["explanation"]
    champion_own = predict(service, body(version="1.0.0", explain=True))["explanation"]
    assert canary_own != champion_own
    for answer in (single, batched):
        assert answer["model"]["alias"] == "canary"
        assert answer["explanation"] == canary_own


def test_a_canary_that_cannot_explain_leaves_the_rows_that_ask_to_its_champion(store, tmp_path):
    # Given a canary (seed 002's weighted forest + boosting) that has no exact explanation
    weighted = families()["weighted_classifier"].bundle(SMH)
    weighted = Bundle(dataclasses.replace(weighted.metadata, version="1.0.2"), weighted.files)
    publish_bundle(store, weighted, registry_key=REGISTRY_KEY, aliases=("canary",))
    update_registry(store, REGISTRY_KEY, lambda r: r.set_canary(SMH, CanarySettings("canary", 0.5)))
    service = service_for(store, tmp_path)
    sink = ListSink()
    asks, plain, in_batch = canary_ids(3, 0.5)
    # When requests it takes ask for an explanation, alone and in a batch, and one does not
    single = predict(service, body(asks, explain=3), capture=Capture(sink))
    other = predict(service, body(plain), capture=Capture(sink))
    (batched,) = predict_batch(service, {"items": [body(in_batch, explain=3)]},
                               capture=Capture(sink))["results"]  # fmt: skip
    # Then the champion answers and explains those that ask; the canary the other
    champion = predict(service, body(version="1.0.0", explain=3))
    for answer in (single, batched):
        assert answer["model"] == {"name": SMH, "version": "1.0.0", "alias": "production"}
        assert answer["explanation"] == champion["explanation"]
    assert other["model"]["alias"] == "canary" and "explanation" not in other
    assert [(r["request_id"], r["role"]) for r in sink.records] == [
        (asks, "champion"), (plain, "canary"), (in_batch, "champion"),
    ]  # fmt: skip
    assert service.counters.canary_fallbacks == 2


def test_captured_rows_carry_the_explanation_their_answer_showed(store, tmp_path):
    service = service_for(store, tmp_path)
    sink = ListSink()
    alone = predict(service, body("e1", explain=2), capture=Capture(sink))
    items = [body("e2", ticker="SPY", explain=True), body("e3")]
    results = predict_batch(service, {"items": items}, capture=Capture(sink))["results"]
    by_id = {r["request_id"]: r for r in sink.records}
    first, second, third = by_id["e1"], by_id["e2"], by_id["e3"]
    assert first["explanation"] == alone["explanation"]
    assert second["explanation"] == results[0]["explanation"]
    # the fields of the capture table's explanation column, the top k as answered
    assert set(first["explanation"]) == {"space", "base", "output", "contributions"}
    assert len(first["explanation"]["contributions"]) == 2
    assert len(second["explanation"]["contributions"]) == DEFAULT_TOP
    assert "explanation" not in third


def test_tickers_checked_once_per_process_stay_bounded(monkeypatch: pytest.MonkeyPatch):
    # Given a process that keeps at most 4 checked tickers
    monkeypatch.setattr(predict_module, "_CHECKED", {})
    monkeypatch.setattr(predict_module, "_CHECKED_ENTRIES", 4)
    # When ten distinct tickers are asked, twice each
    names = [f"t{i}" for i in range(10)]
    parsed = [parse_request({"ticker": n, "features": {}}).ticker for n in names * 2]
    # Then each is checked as ever, and no more than 4 are kept
    assert parsed == [n.upper() for n in names * 2]
    assert len(predict_module._CHECKED) <= 4
