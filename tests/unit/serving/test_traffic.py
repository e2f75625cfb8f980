"""Shadow, canary and capture sampling through the API: split by a hash of the request id,
answers never changed or failed by a challenger, capture holding both outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.capture_support import ListSink
from tests.support import REGISTRY_KEY, DemoModels, load_event
from tickerserve.http.api import Api
from tickerserve.layout import artifact_key, version_prefix
from tickerserve.publishing.demo import demo_bundle
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.capture import Capture
from tickerserve.serving.features import FeatureSchema
from tickerserve.serving.service import ModelService
from tickerserve.serving.traffic import (
    CANARY_SALT,
    LOADING,
    SHADOW_SALT,
    decide,
    fixed_decision,
    share,
)
from tickerserve.settings import Settings
from tickerserve.storage.registry import (
    CanarySettings,
    Registry,
    Resolved,
    ShadowSettings,
    update_registry,
)
from tickerserve.storage.store import LocalStore

FEATURES = json.loads(load_event("rest_predict.json")["body"])["features"]
SMH = "etfs/SMH"


@pytest.fixture
def store(tmp_path: Path, models: DemoModels) -> LocalStore:
    """SMH 1.0.0 in production and 1.0.1 as challenger and canary; SPY 1.0.0 in production."""
    store = LocalStore(tmp_path / "store")
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    publish_bundle(
        store, models.smh_v2, registry_key=REGISTRY_KEY, aliases=("challenger", "canary")
    )
    publish_bundle(store, models.spy, registry_key=REGISTRY_KEY, routes={"SPY": "etf"})
    return store


def configure(store: LocalStore, change: Any) -> None:
    update_registry(store, REGISTRY_KEY, change)


def make_api(store: LocalStore, tmp_path: Path, sink: ListSink | None = None) -> Api:
    # TTL 0: every request sees the registry as the test just wrote it.
    settings = Settings(registry_ttl=0, cache_dir=str(tmp_path / "cache"))
    return Api(
        ModelService(settings, store=store), capture=Capture(sink) if sink else Capture(None)
    )


def ask(api: Api, rid: str, **extra: Any) -> dict[str, Any]:
    body = {"ticker": "SMH", "features": FEATURES, "request_id": rid, **extra}
    answer = api.handle(body, None)
    assert "error" not in answer, answer
    return dict(answer)


def batch(api: Api, rids: list[str], ticker: str = "SMH") -> list[dict[str, Any]]:
    items = [{"ticker": ticker, "features": FEATURES, "request_id": r} for r in rids]
    answer = api.handle({"items": items}, None)
    assert answer["failed"] == 0, answer
    return list(answer["results"])


def within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """``count`` successes of ``n`` trials is within ``sigmas`` standard deviations of n*p."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def without_id(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("request_id", "index")}


# -- canary --------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [0.1, 0.5])
def test_a_canary_answers_its_weight_of_requests_within_statistical_bounds(
    store: LocalStore, tmp_path: Path, weight: float
):
    # Given a canary at weight W
    configure(store, lambda r: r.set_canary(SMH, CanarySettings("canary", weight)))
    api = make_api(store, tmp_path)
    # When 4,000 requests with distinct ids are answered (in batches of 1,000)
    n = 4000
    results = [r for k in range(4) for r in batch(api, [f"trade-{k}-{i}" for i in range(1000)])]
    # Then about W of them come from the canary version, and the answer says so
    canary = [r for r in results if r["model"]["alias"] == "canary"]
    assert within(len(canary), n, weight), len(canary)
    assert {r["model"]["version"] for r in canary} == {"1.0.1"}
    rest = [r for r in results if r["model"]["alias"] != "canary"]
    assert {(r["model"]["alias"], r["model"]["version"]) for r in rest} == {("production", "1.0.0")}


def test_the_same_request_id_always_gets_the_same_version(store: LocalStore, tmp_path: Path):
    configure(store, lambda r: r.set_canary(SMH, CanarySettings("canary", 0.5)))
    first = {rid: ask(make_api(store, tmp_path), rid)["model"] for rid in map(str, range(60))}
    # A new process (another Lambda sandbox), the single and the batch path agree
    api = make_api(store, tmp_path)
    again = {rid: ask(api, rid)["model"] for rid in first}
    in_batch = {r["request_id"]: r["model"] for r in batch(api, list(first))}
    assert first == again == in_batch
    assert {m["alias"] for m in first.values()} == {"production", "canary"}


def test_a_request_that_pins_alias_or_version_is_never_diverted(store: LocalStore, tmp_path: Path):
    configure(store, lambda r: r.set_canary(SMH, CanarySettings("canary", 0.9)))
    api = make_api(store, tmp_path)
    for i in range(50):
        assert ask(api, f"p{i}", alias="production")["model"]["version"] == "1.0.0"
        assert ask(api, f"v{i}", version="1.0.0")["model"] == {
            "name": SMH, "version": "1.0.0", "alias": None,
        }  # fmt: skip


def test_a_missing_or_broken_canary_never_fails_a_request(store: LocalStore, tmp_path: Path):
    # Given a canary that answers (almost) everything, whose alias then disappears
    configure(store, lambda r: r.set_canary(SMH, CanarySettings("canary", 0.99)))
    configure(store, lambda r: r.remove_alias(SMH, "canary"))
    api = make_api(store, tmp_path)
    # Then the champion answers and the fallback is counted
    assert ask(api, "a")["model"]["alias"] == "production"
    assert api.service.counters.canary_fallbacks == 1
    # Given a canary alias on a version whose model file is corrupt
    configure(store, lambda r: r.set_alias(SMH, "canary", "1.0.1", _digest(r, "challenger")))
    store.put(artifact_key(SMH, "1.0.1", "model.txt"), b"garbage")
    for rid in ("b", "c"):
        assert ask(api, rid)["model"]["alias"] == "production"
    assert [r["model"]["alias"] for r in batch(api, ["d", "e"])] == ["production"] * 2
    assert api.service.counters.canary_fallbacks == 5


def _digest(registry: Registry, alias: str) -> str:
    return registry.models[SMH].aliases[alias].metadata_sha256


# -- shadow --------------------------------------------------------------------------------------


def shadowed(store: LocalStore, tmp_path: Path, sink: ListSink, sample: float = 1.0) -> Api:
    configure(store, lambda r: r.set_shadow(SMH, ShadowSettings("challenger", sample)))
    api = make_api(store, tmp_path, sink)
    ask(api, "warm-up")  # the first request starts loading the challenger in the background
    assert api.challengers.wait_idle()
    sink.lines.clear()
    return api


def test_shadow_answers_are_the_champions_and_capture_holds_both(store: LocalStore, tmp_path):
    # Given the same requests answered without and then with a shadow challenger
    rids = [f"s{i}" for i in range(20)]
    plain = [ask(make_api(store, tmp_path / "plain"), rid) for rid in rids]
    sink = ListSink()
    api = shadowed(store, tmp_path, sink)
    answers = [ask(api, rid) for rid in rids]
    # Then every answer is exactly the champion's
    assert answers == plain
    # And each capture record holds the champion's output and the challenger's
    pinned = {rid: ask(make_api(store, tmp_path / "c"), rid, alias="challenger") for rid in rids}
    for record, answer in zip(sink.records, answers, strict=True):
        assert record["request_id"] == answer["request_id"]
        assert (record["role"], record["version"]) == ("champion", "1.0.0")
        assert record["output"]["probabilities"] == answer["probabilities"]
        (challenger,) = record["challengers"]
        expected = pinned[record["request_id"]]
        assert (challenger["alias"], challenger["version"]) == ("challenger", "1.0.1")
        assert challenger["output"] == {
            "label": expected["prediction"], "probabilities": expected["probabilities"],
        }  # fmt: skip
        assert isinstance(challenger["latency_us"], int)
    assert api.service.counters.shadow_failures == 0


def test_shadow_scores_batch_items_too(store: LocalStore, tmp_path: Path):
    sink = ListSink()
    api = shadowed(store, tmp_path, sink)
    results = batch(api, ["b0", "b1", "b2"])
    records = {r["request_id"]: r for r in sink.records}
    for result in results:
        (challenger,) = records[result["request_id"]]["challengers"]
        assert challenger["version"] == "1.0.1" and "output" in challenger
    # Another model without a shadow captures no challengers
    batch(api, ["spy0"], ticker="SPY")
    assert records_of(sink, "spy0")["challengers"] == []


def test_a_challenger_with_other_inputs_aligns_the_request_itself(
    store: LocalStore, tmp_path: Path
):
    # Given a challenger that uses the other six features (the champion's row is not its row)
    other = demo_bundle(SMH, "1.0.2", seed=6, selected_features=[1, 3, 5, 7, 9, 11])
    publish_bundle(store, other, registry_key=REGISTRY_KEY, aliases=("challenger",))
    sink = ListSink()
    api = shadowed(store, tmp_path, sink)
    # When requests are answered one by one and in a batch
    single = [ask(api, f"o{i}") for i in range(3)]
    batch(api, ["ob0", "ob1"])
    # Then each record holds what the challenger answers for those features when asked itself
    pinned = ask(make_api(store, tmp_path / "pinned"), "x", alias="challenger")
    expected = {"label": pinned["prediction"], "probabilities": pinned["probabilities"]}
    for rid in ["o0", "o1", "o2", "ob0", "ob1"]:
        (challenger,) = records_of(sink, rid)["challengers"]
        assert (challenger["version"], challenger["output"]) == ("1.0.2", expected)
    assert expected["probabilities"] != single[0]["probabilities"]
    assert api.service.counters.shadow_failures == 0


def test_schemas_have_the_same_input_only_with_the_same_names_selection_and_missing_rule():
    names = ["a", "b", "c"]
    base = FeatureSchema(names, [0, 2])
    assert base.same_input(FeatureSchema(["a", "b", "c"], [0, 2]))
    assert not base.same_input(FeatureSchema(["a", "c", "b"], [0, 2]))
    assert not base.same_input(FeatureSchema(names, [0, 1]))
    assert not base.same_input(FeatureSchema(names, None))
    assert not base.same_input(FeatureSchema(names, [0, 2], missing=False))
    assert not base.same_input(FeatureSchema(["a", "b", "c", "d"], [0, 2]))


def records_of(sink: ListSink, rid: str) -> dict[str, Any]:
    return next(r for r in sink.records if r["request_id"] == rid)


def test_a_challenger_not_loaded_yet_never_delays_the_answer(store: LocalStore, tmp_path: Path):
    configure(store, lambda r: r.set_shadow(SMH, ShadowSettings("challenger", 1.0)))
    sink = ListSink()
    api = make_api(store, tmp_path, sink)
    # The first request answers without waiting for the challenger's download
    ask(api, "first")
    assert records_of(sink, "first")["challengers"] == [
        {"alias": "challenger", "version": "1.0.1", "error": LOADING}
    ]
    assert api.challengers.wait_idle()
    ask(api, "second")
    assert "output" in records_of(sink, "second")["challengers"][0]


@pytest.mark.parametrize("fault", ["deleted", "corrupt", "alias removed"])
def test_a_deleted_or_corrupt_challenger_changes_nothing_and_is_counted(
    store: LocalStore, tmp_path: Path, fault: str
):
    # Given the answers without a shadow
    rids = [f"f{i}" for i in range(5)]
    plain = [ask(make_api(store, tmp_path / "plain"), rid) for rid in rids]
    # And a shadow whose challenger version is then deleted, corrupted or unaliased
    configure(store, lambda r: r.set_shadow(SMH, ShadowSettings("challenger", 1.0)))
    if fault == "deleted":
        store.delete([i.key for i in store.list(version_prefix(SMH, "1.0.1"))])
    elif fault == "corrupt":
        store.put(artifact_key(SMH, "1.0.1", "model.txt"), b"not a model")
    else:
        configure(store, lambda r: r.remove_alias(SMH, "challenger"))
    sink = ListSink()
    api = make_api(store, tmp_path, sink)
    ask(api, "warm-up")
    assert api.challengers.wait_idle()
    sink.lines.clear()
    # When the same requests are answered (singly and in a batch)
    answers = [ask(api, rid) for rid in rids]
    in_batch = batch(api, [f"g{i}" for i in range(3)])
    # Then the answers are the champion's, exactly
    assert answers == plain
    assert {r["model"]["version"] for r in in_batch} == {"1.0.0"}
    # And the capture records say why the challenger has no output; the failures are counted
    errors = {r["challengers"][0]["error"] for r in sink.records}
    expected = {"deleted": {"unknown_version"}, "corrupt": {"integrity_error"},
                "alias removed": {"unknown_alias"}}[fault]  # fmt: skip
    assert errors == expected
    assert all("output" not in r["challengers"][0] for r in sink.records)
    assert api.service.counters.shadow_failures >= len(sink.records) == 8


def test_the_shadow_sample_is_honoured_and_shadowed_rows_are_always_captured(
    store: LocalStore, tmp_path: Path
):
    configure(store, lambda r: r.set_capture(SMH, 0.0))
    sink = ListSink()
    api = shadowed(store, tmp_path, sink, sample=0.3)
    n = 3000
    for k in range(3):
        batch(api, [f"x{k}-{i}" for i in range(1000)])
    # Capture is off for the model, yet every shadowed row is captured with its challenger
    assert within(len(sink.records), n, 0.3)
    assert all(len(r["challengers"]) == 1 for r in sink.records)


def test_canary_and_shadow_together_the_shadow_scores_the_other(store: LocalStore, tmp_path):
    # Given the challenger as both canary (half the requests) and shadow
    configure(store, lambda r: r.set_canary(SMH, CanarySettings("challenger", 0.5)))
    sink = ListSink()
    api = shadowed(store, tmp_path, sink)
    answers = {a["request_id"]: a for a in batch(api, [f"t{i}" for i in range(200)])}
    for record in sink.records:
        answer = answers[record["request_id"]]
        (other,) = record["challengers"]
        # The canary answers its share and the champion is scored beside it, and vice versa
        if answer["model"]["alias"] == "challenger":
            assert (record["role"], record["version"]) == ("canary", "1.0.1")
            assert (other["alias"], other["version"]) == ("production", "1.0.0")
        else:
            assert (record["role"], record["version"]) == ("champion", "1.0.0")
            assert (other["alias"], other["version"]) == ("challenger", "1.0.1")
    assert {r["role"] for r in sink.records} == {"canary", "champion"}


# -- capture sampling ------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", [0.0, 0.25, 1.0])
def test_the_capture_sample_rate_is_honoured(store: LocalStore, tmp_path: Path, sample: float):
    configure(store, lambda r: r.set_capture(SMH, sample))
    sink = ListSink()
    api = make_api(store, tmp_path, sink)
    n = 2000
    batch(api, [f"c{i}" for i in range(1000)])
    batch(api, [f"d{i}" for i in range(1000)])
    assert (
        within(len(sink.records), n, sample) if 0 < sample < 1 else len(sink.records) == n * sample
    )
    # Other models keep the default (everything)
    batch(api, ["spy"], ticker="SPY")
    assert sink.records[-1]["model"] == "etfs/SPY"


def test_each_decision_is_its_own_uniform_hash_of_the_request_id():
    ids = [f"id-{i}" for i in range(4000)]
    canary = [share(i, CANARY_SALT) < 0.5 for i in ids]
    shadow = [share(i, SHADOW_SALT) < 0.5 for i in ids]
    assert all(0.0 <= share(i, CANARY_SALT) < 1.0 for i in ids)
    assert within(sum(canary), len(ids), 0.5)
    # Independent draws: being canaried says nothing about being shadowed
    both = sum(c and s for c, s in zip(canary, shadow, strict=True))
    assert within(both, len(ids), 0.25)


def test_a_model_without_settings_is_answered_and_captured_as_before():
    champion = Resolved(SMH, "1.0.0", "production", None)
    decision = decide(Registry(), champion, "x", pinned=False, capture=True)
    assert (decision.answer, decision.role, decision.shadow, decision.capture) == (
        champion, "champion", None, True,
    )  # fmt: skip


# -- a bad setting stays local (issue 19) --------------------------------------------------------


def write_raw_setting(store: LocalStore, model: str, name: str, raw: Any) -> None:
    """A per-model setting written by hand (or by a tool that knows no better), bypassing the
    checks every command makes."""
    blob = store.get(REGISTRY_KEY)
    assert blob is not None
    registry = json.loads(blob.data)
    registry["models"][model][name] = raw
    store.put(REGISTRY_KEY, json.dumps(registry).encode(), if_match=blob.etag)


BAD_WEIGHTS = [1.5, -1, float("nan"), "0.5", None]


@pytest.mark.parametrize("weight", BAD_WEIGHTS, ids=repr)
def test_a_bad_canary_weight_leaves_the_model_on_production_and_the_others_serving(
    store: LocalStore, tmp_path: Path, weight: Any
):
    # Given SMH's canary written with an invalid weight, and a cold sandbox
    write_raw_setting(store, SMH, "canary", {"alias": "canary", "weight": weight})
    api = make_api(store, tmp_path)
    # When requests arrive for SMH and for another model
    smh = batch(api, [f"trade-{i}" for i in range(200)])
    spy = batch(api, [f"spy-{i}" for i in range(5)], ticker="SPY")
    # Then SMH answers from production as if the canary were off, and SPY is untouched
    assert {(r["model"]["alias"], r["model"]["version"]) for r in smh} == {("production", "1.0.0")}
    assert {r["model"]["name"] for r in spy} == {"etfs/SPY"}
    # And the model's description says what is wrong
    described = api.handle({"action": "model", "ticker": "SMH"}, None)
    assert described["canary"] is None
    assert described["invalid"]["canary"].startswith("canary setting is invalid: canary weight")


@pytest.mark.parametrize(
    ("name", "raw"),
    [("shadow", {"alias": "challenger", "sample": 2}), ("shadow", "challenger"),
     ("capture", {"sample": "0.25"}), ("capture", {"sample": None})],
)  # fmt: skip
def test_a_bad_shadow_or_capture_setting_acts_as_off_for_that_model_alone(
    store: LocalStore, tmp_path: Path, name: str, raw: Any
):
    # Given SMH (shadowed by its challenger, where the shadow is what goes bad), then one of
    # its settings made unreadable (a shadowed row would be captured whatever the sample)
    if name == "shadow":
        configure(store, lambda r: r.set_shadow(SMH, ShadowSettings("challenger")))
    write_raw_setting(store, SMH, name, raw)
    sink = ListSink()
    api = make_api(store, tmp_path, sink)
    # When both models answer
    ask(api, "smh-1")
    api.handle({"ticker": "SPY", "features": FEATURES, "request_id": "spy-1"}, None)
    # Then SMH's production answered with no shadow scored (a bad shadow is off) or nothing
    # captured (a bad capture sample captures none), while SPY's rows are captured
    smh_records = [r for r in sink.records if r["model"] == SMH]
    spy_records = [r for r in sink.records if r["model"] == "etfs/SPY"]
    assert len(spy_records) == 1
    if name == "capture":
        assert smh_records == []
    else:
        assert [r["challengers"] for r in smh_records] == [[]]


# -- a decision no rate leaves to chance --------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "ids_decide"),
    [
        ({}, set()),
        ({"capture": {"sample": 0.0}}, set()),
        ({"capture": {"sample": 1.0}}, set()),
        ({"capture": {"sample": 0.25}}, {"capture"}),
        ({"capture": {"sample": "0.25"}}, set()),  # invalid: off
        ({"shadow": {"alias": "challenger", "sample": 1.0}}, set()),
        ({"shadow": {"alias": "challenger", "sample": 0.5}}, {"shadow"}),
        ({"canary": {"alias": "canary", "weight": 0.3}}, {"canary"}),
        ({"canary": {"alias": "canary", "weight": 1.5}}, set()),  # invalid: off
        ({"canary": {"alias": "production", "weight": 0.3}}, set()),  # the champion's own alias
    ],
)
def test_a_request_id_decides_only_where_a_rate_leaves_something_to_chance(
    store: LocalStore, tmp_path: Path, settings: dict[str, Any], ids_decide: set[str]
):
    for name, raw in settings.items():
        write_raw_setting(store, SMH, name, raw)
    service = ModelService(Settings(cache_dir=str(tmp_path / "cache")), store=store)
    registry = service.registry()
    for pinned in (False, True):
        for capture in (False, True):
            champion = registry.resolve(SMH, version="1.0.0" if pinned else None)
            # Which rates apply: capture and shadow need capture on; a pin skips canary, shadow
            applies = {"capture"} if capture else set()
            applies |= set() if pinned else {"canary"} | ({"shadow"} if capture else set())
            decisions = {
                decide(registry, champion, f"id-{i}", pinned=pinned, capture=capture)
                for i in range(400)
            }
            fixed = fixed_decision(registry, champion, pinned=pinned, capture=capture)
            if ids_decide & applies:
                # Then ids split the requests, and no decision is kept for all of them
                assert len(decisions) > 1
                assert fixed is None
            else:
                # Then every id gets the one decision kept for them all
                assert decisions == {fixed}
