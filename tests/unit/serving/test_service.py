"""The serving runtime against moto S3: cold load, warm path, hot reload, integrity, limits."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from tests.cli_support import FaultyStore
from tests.monitor_support import classification_baseline, reference_rows
from tests.support import (
    REGISTRY_KEY,
    DemoModels,
    FakeClock,
    RequestCounter,
    garbled_model_texts,
    load_event,
    populate,
)
from tickerserve.baselines.persistence import attach_to_bundle, write_sidecar
from tickerserve.errors import IntegrityError, InvalidModel, NotFound, StorageUnavailable
from tickerserve.http.api import Api
from tickerserve.layout import artifact_key, index_key, ranges_sidecar_key
from tickerserve.publishing.demo import demo_bundle
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.model import LoadedModel
from tickerserve.serving.observability import Gauge, metrics
from tickerserve.serving.predict import predict as service_predict
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.bundle import make_bundle
from tickerserve.storage.registry import Registry, update_registry
from tickerserve.storage.store import S3Store


def make_service(store, tmp_path: Path, clock: FakeClock | None = None, **settings) -> ModelService:
    settings.setdefault("registry_ttl", 60.0)
    return ModelService(
        Settings(bucket="unused", cache_dir=str(tmp_path / "cache"), **settings),
        store,
        clock=clock or FakeClock(),
        # Wait for every registry re-check to finish, so tests see its outcome at once (the
        # wait ends as soon as it does); test_storage_faults covers the short production wait.
        registry_wait=30.0,
    )


@pytest.fixture
def populated(s3_store: S3Store, models: DemoModels) -> S3Store:
    populate(s3_store, models)
    return s3_store


def move_alias(store: S3Store, model: str, version: str, digest: str) -> None:
    update_registry(
        store, REGISTRY_KEY, lambda r: r.set_alias(model, "production", version, digest)
    )


def test_cold_start_fetches_only_registry_and_the_requested_model(populated, tmp_path):
    # Given a bucket with four models and a fresh service
    counter = RequestCounter(populated.client)
    service = make_service(populated, tmp_path)
    # When the first SMH request arrives
    serving = service.serving_for_ticker("SMH")
    # Then only the registry, SMH's metadata, SMH's single artifact and, beside it, SMH's
    # digest index (a version without ranges in its metadata may have them kept beside it)
    assert counter.calls == ["GetObject"] * 4
    assert serving.resolved.model == "etfs/SMH"
    assert [m["name"] for m in service.loaded()] == ["etfs/SMH"]


def test_warm_request_makes_no_s3_calls(populated, tmp_path):
    service = make_service(populated, tmp_path)
    service.serving_for_ticker("SMH")
    counter = RequestCounter(populated.client)
    for _ in range(20):
        service.serving_for_ticker("SMH")
    assert counter.calls == []


def test_stocks_share_one_loaded_universal_model(populated, tmp_path):
    service = make_service(populated, tmp_path)
    aapl = service.serving_for_ticker("AAPL")
    msft = service.serving_for_ticker("MSFT")
    assert aapl.model is msft.model
    assert aapl.resolved.model == "stocks/universal"
    assert service.counters.model_loads == 1


def test_etfs_get_their_own_models(populated, tmp_path):
    service = make_service(populated, tmp_path)
    smh = service.serving_for_ticker("SMH")
    spy = service.serving_for_ticker("SPY")
    assert (smh.resolved.model, spy.resolved.model) == ("etfs/SMH", "etfs/SPY")
    assert smh.model is not spy.model


def test_unknown_ticker_is_404_without_a_fallback(populated, tmp_path):
    service = make_service(populated, tmp_path)
    with pytest.raises(NotFound) as caught:
        service.serving_for_ticker("GME", asset_class="stock")
    assert caught.value.code == "unknown_ticker"


def test_fallback_is_used_only_once_opted_in(populated, tmp_path):
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    update_registry(populated, REGISTRY_KEY, lambda r: r.set_fallback("stock", "stocks/universal"))
    clock.advance(61)
    serving = service.serving_for_ticker("GME", asset_class="stock")
    assert serving.resolved.model == "stocks/universal"
    assert serving.route is not None and serving.route.via_fallback
    # An ETF claim does not borrow the stock fallback.
    with pytest.raises(NotFound, match=r"^unknown ticker 'GME': no route in the registry$"):
        service.serving_for_ticker("GME", asset_class="etf")


def test_pinned_version_and_alias_resolve_independently(populated, models, tmp_path):
    # Given SMH 1.0.1 published under "staging" while production stays on 1.0.0
    publish_bundle(populated, models.smh_v2, registry_key=REGISTRY_KEY, aliases=("staging",))
    service = make_service(populated, tmp_path)
    assert service.serving_for_ticker("SMH").resolved.version == "1.0.0"
    staging = service.serving_for_ticker("SMH", alias="staging")
    assert (staging.resolved.version, staging.resolved.alias) == ("1.0.1", "staging")
    pinned = service.serving_for_ticker("SMH", version="1.0.1")
    assert (pinned.resolved.version, pinned.resolved.alias) == ("1.0.1", None)
    assert pinned.model is staging.model


def test_unknown_version_or_alias_is_404(populated, tmp_path):
    service = make_service(populated, tmp_path)
    with pytest.raises(NotFound) as version_error:
        service.serving_for_ticker("SMH", version="9.9.9")
    assert version_error.value.code == "unknown_version"
    with pytest.raises(NotFound) as alias_error:
        service.serving_for_ticker("SMH", alias="canary")
    assert alias_error.value.code == "unknown_alias"


def test_alias_move_is_picked_up_after_the_ttl_with_one_conditional_get(
    populated, models, tmp_path
):
    # Given a warm service on SMH 1.0.0
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    assert service.serving_for_ticker("SMH").resolved.version == "1.0.0"
    # When 1.0.1 is published and production moves to it
    publish_bundle(populated, models.smh_v2, registry_key=REGISTRY_KEY)
    counter = RequestCounter(populated.client)
    # Then within the TTL the old version keeps answering with no S3 call
    clock.advance(30)
    assert service.serving_for_ticker("SMH").resolved.version == "1.0.0"
    assert counter.calls == []
    # And after the TTL one registry read finds the move and the new version is swapped in
    clock.advance(31)
    assert service.serving_for_ticker("SMH").resolved.version == "1.0.1"
    # registry, metadata, model.txt, and the digest index (older than the TTL: re-read)
    assert counter.calls.count("GetObject") == 4


def test_unchanged_registry_costs_one_304_per_ttl(populated, tmp_path):
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    service.serving_for_ticker("SMH")
    counter = RequestCounter(populated.client)
    clock.advance(61)
    for _ in range(5):
        service.serving_for_ticker("SMH")
    assert counter.calls == ["GetObject"]
    assert service.counters.registry_refreshes == 1  # the 304 did not re-parse


def test_tampered_artifact_is_refused_and_last_good_keeps_serving(populated, models, tmp_path):
    # Given a warm service on SMH 1.0.0
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    service.serving_for_ticker("SMH")
    # When 1.0.1 is published, its model.txt is altered in the bucket, and production moves
    publish_bundle(populated, models.smh_v2, registry_key=REGISTRY_KEY)
    key = artifact_key("etfs/SMH", "1.0.1", "model.txt")
    original = populated.get(key)
    assert original is not None
    populated.client.put_object(
        Bucket=populated.bucket, Key=key, Body=original.data.replace(b"num_leaves", b"num_leavez")
    )
    clock.advance(61)
    # Then the request is answered by 1.0.0, and the failure is counted
    serving = service.serving_for_ticker("SMH")
    assert (serving.resolved.version, serving.resolved.alias) == ("1.0.0", "production")
    assert service.counters.load_failures == 1
    assert [m["version"] for m in service.loaded()] == ["1.0.0"]
    # And a fresh process with no good version refuses to serve the tampered one
    fresh = make_service(populated, tmp_path / "fresh")
    with pytest.raises(IntegrityError) as caught:
        fresh.serving_for_ticker("SMH")
    assert caught.value.message == "etfs/SMH 1.0.1: artifact model.txt fails sha256 verification"


def test_failed_version_is_not_retried_on_every_request(populated, models, tmp_path):
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    service.serving_for_ticker("SMH")
    publish_bundle(populated, models.smh_v2, registry_key=REGISTRY_KEY)
    populated.delete([artifact_key("etfs/SMH", "1.0.1", "model.txt")])
    clock.advance(61)
    counter = RequestCounter(populated.client)
    for _ in range(10):
        assert service.serving_for_ticker("SMH").resolved.version == "1.0.0"
    assert service.counters.load_failures == 1
    assert counter.calls.count("GetObject") <= 4  # registry, metadata, model.txt, index


def test_tampered_metadata_does_not_match_the_registry_digest(populated, tmp_path):
    key = "etfs/SPY/versions/1.0.0/metadata.json"
    blob = populated.get(key)
    assert blob is not None
    populated.client.put_object(Bucket=populated.bucket, Key=key, Body=blob.data + b" ")
    service = make_service(populated, tmp_path)
    with pytest.raises(IntegrityError, match=r"metadata\.json sha256"):
        service.serving_for_ticker("SPY")


def test_corrupted_disk_cache_is_detected_and_redownloaded(populated, tmp_path):
    service = make_service(populated, tmp_path)
    service.serving_for_ticker("SPY")
    [cached] = list((tmp_path / "cache" / "objects").iterdir())
    cached.write_bytes(b"garbage")
    # A new process in the same sandbox adopts /tmp but must not trust it blindly
    second = make_service(populated, tmp_path)
    serving = second.serving_for_ticker("SPY")
    assert serving.resolved.version == "1.0.0"
    assert cached.read_bytes() != b"garbage"


def test_warm_sandbox_reuses_tmp_without_downloading_artifacts(populated, tmp_path):
    make_service(populated, tmp_path).serving_for_ticker("SPY")
    counter = RequestCounter(populated.client)
    make_service(populated, tmp_path).serving_for_ticker("SPY")
    # registry, metadata and the digest index (ranges beside the version?), no model.txt
    assert counter.calls == ["GetObject"] * 3


def unreachable_store() -> S3Store:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
    )
    return S3Store("tickerserve-models", client=client)


def test_unreachable_storage_with_nothing_cached_is_503(tmp_path):
    service = make_service(unreachable_store(), tmp_path)
    with pytest.raises(StorageUnavailable) as caught:
        service.serving_for_ticker("SMH")
    assert caught.value.status == 503
    assert caught.value.message.startswith("registry unavailable: storage unreachable: ")


def test_storage_outage_after_warm_up_keeps_serving_from_memory(populated, tmp_path):
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    service.serving_for_ticker("SMH")
    service.store = unreachable_store()
    clock.advance(120)
    assert service.serving_for_ticker("SMH").resolved.version == "1.0.0"
    assert service.counters.registry_failures == 1


def test_memory_budget_evicts_least_recently_used(populated, tmp_path):
    service = make_service(populated, tmp_path)
    smh_size = service.serving_for_ticker("SMH").model.size_bytes
    service.memory.budget_bytes = smh_size + 200_000  # room for SMH plus one ~140-175 KB model
    service.serving_for_ticker("SPY")
    service.serving_for_ticker("SMH")  # SMH is now the most recent
    service.serving_for_ticker("AAPL")  # the universal model pushes out SPY, not SMH
    assert {m["name"] for m in service.loaded()} == {"etfs/SMH", "stocks/universal"}
    assert service.memory.used_bytes <= service.memory.budget_bytes
    # An evicted model comes back from /tmp without touching S3 artifacts
    counter = RequestCounter(populated.client)
    assert service.serving_for_ticker("SPY").resolved.model == "etfs/SPY"
    assert "GetObject" not in counter.calls


def test_disk_budget_bounds_tmp(populated, tmp_path):
    service = make_service(populated, tmp_path)
    service.disk._lru.budget_bytes = 330_000  # two of the ~140-175 KB artifacts
    for ticker in ("SMH", "SPY", "TLT", "AAPL"):
        service.serving_for_ticker(ticker)
    files = list((tmp_path / "cache" / "objects").iterdir())
    assert sum(f.stat().st_size for f in files) <= 330_000
    assert 1 <= len(files) <= 2


def test_preload_loads_named_models_at_init(populated, tmp_path):
    service = make_service(populated, tmp_path)
    service.preload(("etfs/SPY", "stocks/universal", "etfs/NOPE"))
    assert {m["name"] for m in service.loaded()} == {"etfs/SPY", "stocks/universal"}


def test_predictions_match_booster_predict_on_the_same_row(populated, models, tmp_path):
    service = make_service(populated, tmp_path)
    serving = service.serving_for_ticker("SMH")
    names = models.smh.metadata.feature_names
    rng = np.random.default_rng(7)
    values = rng.normal(size=len(names))
    row = serving.model.schema.row(dict(zip(names, values.tolist(), strict=True)))
    import lightgbm as lgb

    booster = lgb.Booster(model_str=models.smh.files["model.txt"].decode())
    expected = booster.predict(values[[0, 2, 4, 6, 8, 10]].reshape(1, -1))
    np.testing.assert_allclose(serving.model.predict_proba(row.reshape(1, -1)), expected)


def test_invalid_registry_keeps_last_good_registry(populated, tmp_path):
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    revision = service.registry().revision
    populated.put(REGISTRY_KEY, b"{not json")
    clock.advance(61)
    assert service.registry().revision == revision
    assert service.counters.registry_failures == 1
    assert isinstance(service.registry(), Registry)


def test_republished_version_number_never_answers_with_the_old_model(populated, models, tmp_path):
    # Given a warm service on SMH 1.0.1 (staging)
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    publish_bundle(populated, models.smh_v2, registry_key=REGISTRY_KEY, aliases=("staging",))
    old = service.serving_for_ticker("SMH", alias="staging").model
    # When 1.0.1 is deleted by hand, digest index and all (the CLI never reuses a number), and
    # a different model is published under the same number
    by_hand = [o.key for o in populated.list("etfs/SMH/versions/1.0.1/")]
    populated.delete([*by_hand, index_key("etfs/SMH")])
    other = demo_bundle("etfs/SMH", "1.0.1", seed=9, selected_features=[0, 2, 4, 6, 8, 10])
    publish_bundle(populated, other, registry_key=REGISTRY_KEY, aliases=("staging",))
    clock.advance(61)
    # Then the alias answers with the new bytes, not the model loaded before
    serving = service.serving_for_ticker("SMH", alias="staging")
    assert serving.model is not old
    assert serving.model.metadata_sha256 == other.metadata_sha256


def test_pinned_unknown_versions_are_not_load_failures_and_leave_no_state(populated, tmp_path):
    service = make_service(populated, tmp_path)
    for patch in range(50):
        with pytest.raises(NotFound) as caught:
            service.serving_for_ticker("SMH", version=f"9.9.{patch}")
        assert caught.value.code == "unknown_version"
    assert service.counters.load_failures == 0
    assert len(service._failed) == 0


def test_broken_version_without_a_fallback_is_not_downloaded_again_and_again(
    populated, models, tmp_path
):
    # Given a fresh service and a production version whose model.txt was altered
    key = artifact_key("etfs/SPY", "1.0.0", "model.txt")
    blob = populated.get(key)
    assert blob is not None
    # (same size, one byte changed: the size it claims is the recorded one, its sha256 is not)
    altered = blob.data[:-1] + bytes([blob.data[-1] ^ 1])
    populated.client.put_object(Bucket=populated.bucket, Key=key, Body=altered)
    service = make_service(populated, tmp_path)
    counter = RequestCounter(populated.client)
    # When ten requests arrive within the back-off
    for _ in range(10):
        with pytest.raises(
            IntegrityError, match=r"^etfs/SPY 1\.0\.0: artifact model\.txt fails sha256"
        ):
            service.serving_for_ticker("SPY")
    # Then the artifact was fetched once and one failure counted
    assert service.counters.load_failures == 1
    assert counter.calls.count("GetObject") == 4  # registry, metadata, model.txt, index


def test_a_version_rolled_back_from_never_serves_as_the_fallback(populated, models, tmp_path):
    # Given production moved 1.0.0 -> 1.0.1 and a warm service on 1.0.1
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    publish_bundle(populated, models.smh_v2, registry_key=REGISTRY_KEY)
    assert service.serving_for_ticker("SMH").resolved.version == "1.0.1"
    # When the operator rolls back to 1.0.0, and 1.0.0 cannot be loaded right now
    update_registry(populated, REGISTRY_KEY, lambda r: r.rollback_alias("etfs/SMH", "production"))
    populated.delete([artifact_key("etfs/SMH", "1.0.0", "model.txt")])
    clock.advance(61)
    # Then the request fails rather than answering with the version rolled back from
    with pytest.raises(IntegrityError, match=r"^etfs/SMH 1\.0\.0: artifact model\.txt is missing$"):
        service.serving_for_ticker("SMH")


# -- crash-proof loading: a model.txt LightGBM cannot parse, whose sha256 matches ---------------
def publish_garbled_smh(store: S3Store, models: DemoModels, kind: str) -> None:
    """SMH 1.0.1: a real malformed model.txt, correctly hashed in its metadata, in production."""
    garbled = garbled_model_texts(models.smh.files["model.txt"])[kind]
    metadata = dataclasses.replace(models.smh.metadata, version="1.0.1")
    bundle = make_bundle(metadata, {"model.txt": garbled})
    publish_bundle(store, bundle, registry_key=REGISTRY_KEY, aliases=("production",))


@pytest.mark.parametrize("kind", ["truncated", "num_leaves=abc", "garbled leaf values"])
def test_a_model_lightgbm_aborts_on_is_invalid_and_everything_else_keeps_serving(
    populated, models, tmp_path, kind
):
    # Given a warm service on SMH 1.0.0 and SPY, then production moves to an unparsable 1.0.1
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    service.serving_for_ticker("SMH")
    publish_garbled_smh(populated, models, kind)
    clock.advance(61)
    # When SMH is requested, Then this process survives and answers with the last good version
    serving = service.serving_for_ticker("SMH")
    assert serving.resolved.version == "1.0.0"
    assert service.counters.load_failures == 1
    # And a fresh process holding nothing good answers 503 invalid_model naming the file
    fresh = make_service(populated, tmp_path / "fresh")
    with pytest.raises(InvalidModel) as caught:
        fresh.serving_for_ticker("SMH")
    assert caught.value.status == 503
    assert "model.txt cannot be loaded: the loader crashed (SIG" in caught.value.message
    # And every other model still loads and answers in that process
    assert fresh.serving_for_ticker("SPY").resolved.model == "etfs/SPY"


# -- an alias naming a version the store does not hold ------------------------------------------
def edit_registry_by_hand(store: S3Store, change) -> None:
    """Rewrite the registry JSON directly, as an operator with an editor would."""
    blob = store.get(REGISTRY_KEY)
    assert blob is not None
    raw = json.loads(blob.data)
    change(raw)
    store.put(REGISTRY_KEY, json.dumps(raw).encode())


def point_production_at_a_missing_version(raw: dict) -> None:
    entry = raw["models"]["etfs/SMH"]
    entry["aliases"]["production"] = {**entry["aliases"]["production"], "version": "1.0.7"}
    entry["history"] = {}


def test_an_alias_on_a_missing_version_keeps_serving_the_last_good_one(populated, tmp_path):
    # Given a warm service answering SMH from 1.0.0
    clock = FakeClock()
    events: list[str] = []
    service = make_service(populated, tmp_path, clock)
    service._on_event = events.append
    assert service.serving_for_ticker("SMH").resolved.version == "1.0.0"
    # When the registry is edited by hand to point production at a version nobody published,
    # with no history to roll back to
    edit_registry_by_hand(populated, point_production_at_a_missing_version)
    clock.advance(61)
    # Then the warm service keeps answering from 1.0.0 and says so in the last-good metric
    for _ in range(3):
        assert service.serving_for_ticker("SMH").resolved.version == "1.0.0"
    assert service.counters.served_last_good == 3
    assert events.count("ServedLastGood") == 3
    assert events.count("ModelLoadFailures") == 1  # tried once, then backs off


def test_an_alias_on_a_missing_version_is_503_where_nothing_good_is_held(populated, tmp_path):
    edit_registry_by_hand(populated, point_production_at_a_missing_version)
    api = Api(make_service(populated, tmp_path))
    # A prediction, and the model's description, are a server-side fault: 503, never a 404
    for event in (load_event("rest_predict.json"), load_event("rest_model.json")):
        response = api.handle(event, None)
        body = json.loads(response["body"])
        assert (response["statusCode"], body["error"]["code"]) == (503, "integrity_error")
        assert (
            "points etfs/SMH production at 1.0.7, which the store does not hold"
            in (body["error"]["message"])
        )


def test_a_version_rolled_back_from_never_answers_even_when_the_target_is_missing(
    populated, models, tmp_path
):
    # Given production moved 1.0.0 -> 1.0.1 and a warm service on 1.0.1
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    publish_bundle(populated, models.smh_v2, registry_key=REGISTRY_KEY)
    assert service.serving_for_ticker("SMH").resolved.version == "1.0.1"
    # When the operator rolls back to 1.0.0, whose files were meanwhile removed by hand
    update_registry(populated, REGISTRY_KEY, lambda r: r.rollback_alias("etfs/SMH", "production"))
    populated.delete([o.key for o in populated.list("etfs/SMH/versions/1.0.0/")])
    clock.advance(61)
    # Then the service refuses rather than answering with the version rolled back from
    with pytest.raises(IntegrityError, match="does not hold"):
        service.serving_for_ticker("SMH")


# -- what the function tells about itself -------------------------------------------------------
def test_registry_age_grows_while_re_checks_fail_and_resets_on_a_read(populated, tmp_path):
    clock = FakeClock()
    service = make_service(populated, tmp_path, clock)
    assert service.registry_age() is None  # never read
    service.serving_for_ticker("SMH")
    assert service.registry_age() == 0
    # When re-checks fail for longer than the TTL, the age keeps growing
    healthy = service.store
    service.store = FaultyStore(healthy, calls=[])
    service.store.get = _unavailable  # type: ignore[method-assign]
    for _ in range(4):
        clock.advance(61)
        service.serving_for_ticker("SMH")
    assert service.registry_age() == 4 * 61
    assert service.counters.registry_failures >= 1
    # And the next successful check (a 304 is one) resets it
    service.store = healthy
    clock.advance(200)
    service.serving_for_ticker("SMH")
    assert service.registry_age() == 0


def _unavailable(key: str, **kwargs: object) -> None:
    raise StorageUnavailable(f"storage did not answer GET {key}")


def test_the_staleness_gauge_samples_at_most_once_a_minute():
    clock = FakeClock()
    gauge = Gauge("RegistryStalenessTest", MetricUnit.Seconds, every=60.0, clock=clock)
    try:
        assert gauge.sample(None) is False  # nothing read yet: nothing to say
        assert gauge.sample(12.5) is True
        assert gauge.sample(13.0) is False
        clock.advance(60)
        assert gauge.sample(80.0) is True
        assert metrics.metric_set["RegistryStalenessTest"]["Value"] == [12.5, 80.0]
    finally:
        metrics.clear_metrics()


# -- feature ranges: read with the version, never failing it -------------------------------------


def fetched_keys(store: S3Store) -> list[str]:
    keys: list[str] = []
    store.client.meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: keys.append(params["Key"])
    )
    return keys


def smh_baseline(models: DemoModels):
    rows = reference_rows(np.random.default_rng(12), 500, 6)
    return classification_baseline(models.smh, rows, None)


def test_ranges_published_with_the_version_cost_no_read_of_their_own(s3_store, models, tmp_path):
    # Given SMH published with its baseline (its ranges are in metadata.json)
    baseline = smh_baseline(models)
    publish_bundle(s3_store, attach_to_bundle(models.smh, baseline), registry_key=REGISTRY_KEY,
                   routes={"SMH": "etf"})  # fmt: skip
    keys = fetched_keys(s3_store)
    # When a cold sandbox serves it
    model = make_service(s3_store, tmp_path).serving_for_ticker("SMH").model
    # Then it guards its rows with them, and read nothing but registry, metadata and model
    assert model.guard is not None and baseline.ranges is not None
    assert model.guard.quantiles == baseline.ranges.quantiles
    assert sorted(k.rsplit("/", 1)[-1] for k in keys) == [
        "asset_registry.json", "metadata.json", "model.txt",
    ]  # fmt: skip


def test_ranges_kept_beside_a_version_are_read_and_verified(s3_store, models, tmp_path):
    # Given SMH published without a baseline, served once (no ranges yet)
    publish_bundle(s3_store, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    first = make_service(s3_store, tmp_path)
    assert first.serving_for_ticker("SMH").model.guard is None
    assert first.loaded()[0]["warnings"] is False
    # When a baseline is attached beside it
    meta = first.serving_for_ticker("SMH").model.metadata
    write_sidecar(s3_store, meta, smh_baseline(models))
    # Then a new sandbox reads its ranges (verified against the digest index) and warns
    keys = fetched_keys(s3_store)
    service = make_service(s3_store, tmp_path)
    assert service.serving_for_ticker("SMH").model.guard is not None
    assert service.loaded()[0]["warnings"] is True
    assert ranges_sidecar_key("etfs/SMH", "1.0.0") in keys
    assert index_key("etfs/SMH") in keys
    answer = service_predict(service, {"ticker": "SMH", "features": {"rsi_14": 1e6, **{
        n: 0.0 for n in meta.used_features if n != "rsi_14"}}})  # fmt: skip
    assert [w["code"] for w in answer["warnings"]] == ["out_of_range"]


def test_ranges_that_do_not_verify_only_turn_warnings_off(s3_store, models, tmp_path, caplog):
    # Given a ranges sidecar whose bytes no longer match the digest the index records
    publish_bundle(s3_store, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    service = make_service(s3_store, tmp_path)
    meta = service.serving_for_ticker("SMH").model.metadata
    write_sidecar(s3_store, meta, smh_baseline(models))
    key = ranges_sidecar_key("etfs/SMH", "1.0.0")
    blob = s3_store.get(key)
    assert blob is not None
    s3_store.put(key, blob.data.replace(b'"estimated":false', b'"estimated":true'))
    # When a sandbox loads the version
    service = make_service(s3_store, tmp_path)
    model = service.serving_for_ticker("SMH").model
    # Then it serves, without warnings, and says why
    assert model.guard is None
    assert "warnings" not in service_predict(service, {"ticker": "SMH", "features": dict.fromkeys(
        meta.used_features, 0.0)})  # fmt: skip
    assert (
        "etfs/SMH 1.0.0: feature ranges not read (no warnings): etfs/SMH 1.0.0: ranges "
        "sha256" in caplog.text
    )


def test_ranges_of_a_newer_schema_in_metadata_are_not_used(models, caplog):
    bundle = attach_to_bundle(models.smh, smh_baseline(models))
    meta = dataclasses.replace(bundle.metadata, ranges={**(bundle.metadata.ranges or {}),
                                                       "schema": 2})  # fmt: skip
    model = LoadedModel(meta, bundle.files)
    assert model.guard is None
    assert "feature ranges not used (no warnings): unsupported ranges schema 2" in caplog.text
    # the model answers as it would with ranges
    row = np.zeros((1, len(meta.used_features)))
    assert np.array_equal(
        model.predict(row).outputs, LoadedModel(bundle.metadata, bundle.files).predict(row).outputs
    )
