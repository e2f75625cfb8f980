"""The prediction pipeline: a single request and the same row in a batch are answered,
captured, shadowed and fall back from a canary alike; a batch calls each model once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.capture_support import ListSink
from tests.support import REGISTRY_KEY, DemoModels, load_event
from tickerserve.http.api import Api
from tickerserve.layout import artifact_key
from tickerserve.publishing.demo import FEATURES, demo_bundle
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving import service as service_module
from tickerserve.serving.capture import Capture
from tickerserve.serving.model import LoadedModel, Prediction
from tickerserve.serving.service import ModelService
from tickerserve.serving.traffic import CANARY_SALT, share
from tickerserve.settings import Settings
from tickerserve.storage.registry import CanarySettings, ShadowSettings, update_registry
from tickerserve.storage.store import LocalStore

EVENT_FEATURES = json.loads(load_event("rest_predict.json")["body"])["features"]
SMH = "etfs/SMH"
SMH_USED = [FEATURES[i] for i in (0, 2, 4, 6, 8, 10)]  # the six features SMH's models use


@pytest.fixture
def store(tmp_path: Path, models: DemoModels) -> LocalStore:
    """SMH 1.0.0 in production, 1.0.1 as challenger and canary; SPY; AAPL on universal."""
    store = LocalStore(tmp_path / "store")
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    publish_bundle(
        store, models.smh_v2, registry_key=REGISTRY_KEY, aliases=("challenger", "canary")
    )
    publish_bundle(store, models.spy, registry_key=REGISTRY_KEY, routes={"SPY": "etf"})
    publish_bundle(store, models.universal, registry_key=REGISTRY_KEY, routes={"AAPL": "stock"})
    return store


def make_api(store: LocalStore, tmp_path: Path, sink: ListSink | None = None) -> Api:
    # TTL 0: every request sees the registry as the test just wrote it.
    settings = Settings(registry_ttl=0, cache_dir=str(tmp_path / "cache"))
    return Api(ModelService(settings, store=store), capture=Capture(sink))


def single(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    return dict(api.handle(body, None))


def in_batch(api: Api, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item's result without its index: what a single request would have answered."""
    results = api.handle({"items": bodies}, None)["results"]
    return [{k: v for k, v in r.items() if k != "index"} for r in results]


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A capture record without what differs between two requests (time, latency)."""
    challengers = [{k: v for k, v in c.items() if k != "latency_us"} for c in record["challengers"]]
    kept = {k: v for k, v in record.items() if k not in ("time", "latency_us")}
    return {**kept, "challengers": challengers}


def test_a_row_is_answered_and_captured_alike_alone_and_in_a_batch(store: LocalStore, tmp_path):
    # Given a canary on half the requests and a shadow challenger scored on every one
    update_registry(store, REGISTRY_KEY, lambda r: r.set_canary(SMH, CanarySettings("canary", 0.5)))
    update_registry(store, REGISTRY_KEY, lambda r: r.set_shadow(SMH, ShadowSettings("challenger")))
    sink = ListSink()
    api = make_api(store, tmp_path, sink)
    single(api, {"ticker": "SMH", "features": EVENT_FEATURES})  # starts loading the challenger
    assert api.challengers.wait_idle()
    sink.lines.clear()
    # And rows with every feature, exactly the used ones, a null and a list, other models
    shapes: list[Any] = [
        EVENT_FEATURES,
        {n: EVENT_FEATURES[n] for n in SMH_USED},
        dict(EVENT_FEATURES, rsi_14=None),
        [EVENT_FEATURES[n] for n in FEATURES],
    ]
    bodies = [
        {"ticker": "SMH", "features": shapes[i % 4], "request_id": f"r{i}"} for i in range(24)
    ]
    bodies += [
        {"ticker": t, "features": EVENT_FEATURES, "request_id": f"{t}{i}"}
        for t in ("SPY", "AAPL")
        for i in range(3)
    ]
    # When each is asked alone, then all of them in one batch
    alone = [single(api, body) for body in bodies]
    alone_records = [comparable(r) for r in sink.records]
    sink.lines.clear()
    together = in_batch(api, bodies)
    # Then the answers are the same, canary or champion, and so are the capture records
    assert together == alone
    assert {a["model"]["alias"] for a in alone} == {"production", "canary"}
    by_id = {r["request_id"]: comparable(r) for r in sink.records}
    assert [by_id[r["request_id"]] for r in alone_records] == alone_records
    assert len(alone_records) == len(bodies)
    shadowed = [r for r in alone_records if r["model"] == SMH]
    assert all("output" in r["challengers"][0] for r in shadowed)


@pytest.mark.parametrize(
    "body",
    [
        {"ticker": "NOPE", "features": EVENT_FEATURES},
        {"ticker": "SMH", "features": {"rsi_14": 1.0}},
        {"ticker": "SMH", "features": [1.0, 2.0]},
        {"ticker": "SMH", "features": dict(EVENT_FEATURES, rsi_14="high")},
        {"ticker": "SMH", "features": EVENT_FEATURES, "version": "9.9.9"},
        {"ticker": "SMH", "features": EVENT_FEATURES, "alias": "nobody"},
        {"ticker": "SMH", "features": EVENT_FEATURES, "timeframe": "h1"},
    ],
)
def test_a_row_that_cannot_be_answered_fails_alike_alone_and_in_a_batch(
    store: LocalStore, tmp_path: Path, body: dict[str, Any]
):
    api = make_api(store, tmp_path)
    error = single(api, {**body, "request_id": "bad"})["error"]
    good = {"ticker": "SPY", "features": EVENT_FEATURES, "request_id": "good"}
    failed, answered = in_batch(api, [{**body, "request_id": "bad"}, good])
    # The same error for the item, and the other item answered regardless
    assert failed == {"request_id": "bad", "error": error}
    assert answered == single(api, good)


def test_items_without_their_own_fields_answer_and_fail_as_single_requests_do(
    store: LocalStore, tmp_path: Path
):
    # Given a canary on half the rows, and items holding a ticker and features only (their
    # ids are the batch's), each shape twice: the model's rows are aligned as one matrix
    update_registry(store, REGISTRY_KEY, lambda r: r.set_canary(SMH, CanarySettings("canary", 0.5)))
    sink = ListSink()
    api = make_api(store, tmp_path, sink)
    shapes: list[Any] = [
        {"ticker": "smh", "features": EVENT_FEATURES},
        {"ticker": "SMH", "features": {n: EVENT_FEATURES[n] for n in SMH_USED}},
        {"ticker": "SMH", "features": dict(EVENT_FEATURES, rsi_14=None)},
        {"ticker": "SMH", "features": [EVENT_FEATURES[n] for n in FEATURES]},
        {"ticker": "SMH", "features": dict(EVENT_FEATURES, rsi_14=2)},
        {"ticker": "SMH", "features": {"rsi_14": 1.0}},
        {"ticker": "SMH", "features": dict(EVENT_FEATURES, rsi_14="high")},
        {"ticker": "SMH", "features": dict(EVENT_FEATURES, rsi_14=True)},
        {"ticker": "SMH", "features": dict(EVENT_FEATURES, rsi_14=10**400)},
        {"ticker": "SMH", "features": dict(EVENT_FEATURES, colour=1.0)},
        {"ticker": "SMH", "features": [1.0, 2.0]},
        {"ticker": "NOPE", "features": EVENT_FEATURES},
        {"ticker": "S M H", "features": EVENT_FEATURES},
        {"ticker": 7, "features": EVENT_FEATURES},
        {"ticker": "SPY", "features": "high"},
        {"ticker": "aapl", "features": EVENT_FEATURES},
    ]
    bodies = shapes * 2
    # When each is asked alone under the id the batch gives it, then all in one batch
    alone = [single(api, {**b, "request_id": f"b-{i}"}) for i, b in enumerate(bodies)]
    alone_records = [comparable(r) for r in sink.records]
    sink.lines.clear()
    together = in_batch_with_id(api, bodies, "b")
    # Then every item is answered or refused as it was alone, canary or champion
    assert together == [
        {"request_id": f"b-{i}", **a} if "error" in a else a for i, a in enumerate(alone)
    ]
    assert sum("error" in a for a in alone) == 2 * 10
    assert {a["model"]["alias"] for a in alone if "model" in a} == {"production", "canary"}
    # And so are the capture records
    assert sorted(map(comparable, sink.records), key=lambda r: r["request_id"]) == sorted(
        alone_records, key=lambda r: r["request_id"]
    )


def in_batch_with_id(api: Api, bodies: list[dict[str, Any]], rid: str) -> list[dict[str, Any]]:
    results = api.handle({"items": bodies, "request_id": rid}, None)["results"]
    return [{k: v for k, v in r.items() if k != "index"} for r in results]


def canaried(count: int, weight: float = 0.5) -> list[str]:
    """Request ids a canary at ``weight`` answers (the decision is a hash of the id)."""
    ids = (f"c{i}" for i in range(1000))
    return [rid for rid in ids if share(rid, CANARY_SALT) < weight][:count]


def spy_on_predict(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, ...]]]:
    """Record (model, rows' shape) of every LoadedModel.predict call."""
    calls: list[tuple[str, tuple[int, ...]]] = []
    original = LoadedModel.predict

    def spy(self: LoadedModel, rows: np.ndarray) -> Prediction:
        calls.append((str(self.key), rows.shape))
        return original(self, rows)

    monkeypatch.setattr(LoadedModel, "predict", spy)
    return calls


def test_a_batch_calls_each_model_version_once_and_a_single_row_stays_one_row(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    api = make_api(store, tmp_path)
    tickers = ["SMH", "SPY", "AAPL", "SMH", "NOPE", "AAPL", "SMH", "SPY"]
    in_batch(api, [{"ticker": t, "features": EVENT_FEATURES} for t in tickers])  # loads them
    calls = spy_on_predict(monkeypatch)
    # A batch: one call per model version, with all of its rows
    results = in_batch(api, [{"ticker": t, "features": EVENT_FEATURES} for t in tickers])
    assert sum("error" in r for r in results) == 1
    assert sorted(calls) == [
        ("etfs/SMH@1.0.0", (3, 6)),
        ("etfs/SPY@1.0.0", (2, 12)),
        ("stocks/universal@1.0.0", (2, 12)),
    ]
    # A single request: one row of one (LightGBM's single-row fast path takes exactly that)
    calls.clear()
    single(api, {"ticker": "SMH", "features": EVENT_FEATURES})
    assert calls == [("etfs/SMH@1.0.0", (1, 6))]


def test_a_canary_that_fails_to_predict_leaves_every_row_to_its_champion(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Given requests a canary answers, and the canary's model raises when it predicts
    bodies = [{"ticker": "SMH", "features": EVENT_FEATURES, "request_id": r} for r in canaried(5)]
    expected = [single(make_api(store, tmp_path / "plain"), body) for body in bodies]
    update_registry(store, REGISTRY_KEY, lambda r: r.set_canary(SMH, CanarySettings("canary", 0.5)))
    api = make_api(store, tmp_path)
    canary, _ = api.service.load(api.service.registry().resolve(SMH, alias="canary"))

    def broken(rows: np.ndarray) -> Prediction:
        raise RuntimeError("the canary's library failed")

    monkeypatch.setattr(canary, "predict", broken)
    # When the rows are asked alone and in a batch
    alone = [single(api, body) for body in bodies]
    together = in_batch(api, bodies)
    # Then the champion answers each of them, exactly as without a canary, each one counted
    assert alone == together == expected
    assert api.service.counters.canary_fallbacks == 2 * len(bodies)


def test_a_canary_that_needs_other_features_hands_the_row_to_its_champion(
    store: LocalStore, tmp_path: Path
):
    # Given a canary that uses the six features SMH's champion does not use
    other = demo_bundle(SMH, "1.0.2", seed=6, selected_features=[1, 3, 5, 7, 9, 11])
    publish_bundle(store, other, registry_key=REGISTRY_KEY, aliases=("canary",))
    update_registry(store, REGISTRY_KEY, lambda r: r.set_canary(SMH, CanarySettings("canary", 0.5)))
    sink = ListSink()
    api = make_api(store, tmp_path, sink)
    only_used = {n: EVENT_FEATURES[n] for n in SMH_USED}
    first, second = canaried(2)
    bodies = [
        {"ticker": "SMH", "features": only_used, "request_id": first},
        {"ticker": "SMH", "features": EVENT_FEATURES, "request_id": second},
    ]
    # When a row holds only the champion's features, and another holds all twelve
    for answers in ([single(api, body) for body in bodies], in_batch(api, bodies)):
        # Then the champion answers the first, the canary the second
        assert [(a["model"]["alias"], a["model"]["version"]) for a in answers] == [
            ("production", "1.0.0"), ("canary", "1.0.2"),
        ]  # fmt: skip
    roles = sorted((r["request_id"], r["source"], r["role"]) for r in sink.records)
    assert roles == sorted([(first, "direct", "champion"), (second, "direct", "canary")] * 2)
    assert api.service.counters.canary_fallbacks == 2


def test_a_pinned_version_is_never_answered_by_an_alias_s_last_good_version(
    store: LocalStore, tmp_path: Path
):
    # Given production served 1.0.0, then moved to 1.0.1, whose model file is corrupt
    api = make_api(store, tmp_path)
    single(api, {"ticker": "SMH", "features": EVENT_FEATURES})
    update_registry(
        store,
        REGISTRY_KEY,
        lambda r: r.set_alias(
            SMH, "production", "1.0.1", r.models[SMH].aliases["challenger"].metadata_sha256
        ),
    )
    store.put(artifact_key(SMH, "1.0.1", "model.txt"), b"garbage")
    bodies = [
        {"ticker": "SMH", "features": EVENT_FEATURES, "request_id": "alias"},
        {"ticker": "SMH", "features": EVENT_FEATURES, "request_id": "pinned", "version": "1.0.1"},
    ]
    # When the alias and the pinned version are asked, alone and in one batch
    for by_alias, pinned in ([single(api, body) for body in bodies], in_batch(api, bodies)):
        # Then the alias keeps its last good version; the pinned version is refused
        assert by_alias["model"] == {"name": SMH, "version": "1.0.0", "alias": "production"}
        assert pinned["error"]["code"] == "integrity_error"


def test_a_batch_explains_each_model_s_asking_rows_in_one_call(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    api = make_api(store, tmp_path)
    asks = [False, 2, False, True, False]
    bodies = [{"ticker": "SMH", "features": EVENT_FEATURES, "request_id": f"x{i}", "explain": a}
              for i, a in enumerate(asks)]  # fmt: skip
    bodies.append({"ticker": "SPY", "features": EVENT_FEATURES, "request_id": "spy"})
    alone = [single(api, body) for body in bodies]  # loads them
    calls: list[tuple[str, tuple[int, ...]]] = []
    original = LoadedModel.explain

    def spy(self: LoadedModel, rows: np.ndarray) -> Any:
        calls.append((str(self.key), rows.shape))
        return original(self, rows)

    monkeypatch.setattr(LoadedModel, "explain", spy)
    # When the rows are asked in one batch
    together = in_batch(api, bodies)
    # Then SMH's two asking rows are explained in one call, and nothing else is
    assert calls == [("etfs/SMH@1.0.0", (2, 6))]
    assert together == alone
    assert [len(a.get("explanation", {}).get("contributions", ())) for a in together] == [
        0, 2, 0, 6, 0, 0,
    ]  # fmt: skip
    # A single request that does not ask is never explained
    calls.clear()
    single(api, {"ticker": "SMH", "features": EVENT_FEATURES})
    assert calls == []


# -- what a warm sandbox keeps per registry ---------------------------------------------------


def test_a_warm_sandbox_follows_each_registry_change_at_the_next_request(
    store: LocalStore, tmp_path: Path
):
    # Given a warm sandbox whose requests resolve from what it kept of the registry
    sink = ListSink()
    api = make_api(store, tmp_path, sink)
    body = {"ticker": "SMH", "features": EVENT_FEATURES, "request_id": "r1"}
    assert single(api, body)["model"]["version"] == "1.0.0"
    assert len(sink.records) == 1
    # When capture is turned off for SMH, Then the next request is not captured
    update_registry(store, REGISTRY_KEY, lambda r: r.set_capture(SMH, 0.0))
    assert single(api, body)["model"]["version"] == "1.0.0"
    assert len(sink.records) == 1
    # When production moves to 1.0.1, Then the next request is answered by 1.0.1
    update_registry(
        store,
        REGISTRY_KEY,
        lambda r: r.set_alias(
            SMH, "production", "1.0.1", r.models[SMH].aliases["challenger"].metadata_sha256
        ),
    )
    assert single(api, body)["model"]["version"] == "1.0.1"
    # When SMH is shadowed by its challenger, Then the next request is captured with it
    update_registry(store, REGISTRY_KEY, lambda r: r.set_capture(SMH, None))
    update_registry(store, REGISTRY_KEY, lambda r: r.set_shadow(SMH, ShadowSettings("canary")))
    single(api, body)
    assert [c["alias"] for c in sink.records[-1]["challengers"]] == ["canary"]


def test_what_a_sandbox_keeps_per_registry_stays_bounded(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Given a memo of at most 8 requests' routes
    monkeypatch.setattr(service_module, "MEMO_ENTRIES", 8)
    api = make_api(store, tmp_path)
    # When 30 requests pin 30 versions (each resolves; none exists)
    for i in range(30):
        answer = single(api, {"ticker": "SMH", "features": EVENT_FEATURES, "version": f"9.{i}.0"})
        assert answer["error"]["code"] == "unknown_version"
    # Then the memo never held more than 8, and a known route still answers
    assert len(api.service.registry_memo()[1]) <= 8
    assert single(api, {"ticker": "SPY", "features": EVENT_FEATURES})["model"]["name"] == "etfs/SPY"


def test_without_a_registry_each_batch_item_fails_as_a_single_request_does(tmp_path: Path):
    # Given a store that holds no registry
    api = make_api(LocalStore(tmp_path / "empty"), tmp_path)
    bodies = [{"ticker": "SMH", "features": EVENT_FEATURES, "request_id": f"r{i}"} for i in (1, 2)]
    # Then a single request and each batch item get the same 503 error
    error = single(api, bodies[0])["error"]
    assert error["code"] == "storage_unavailable"
    assert in_batch(api, bodies) == [
        {"request_id": b["request_id"], "error": error} for b in bodies
    ]
