"""Publishing library: version choice, incomplete folders, history, registry-last ordering."""

from __future__ import annotations

import threading

import pytest

from tests.cli_support import FaultyStore
from tests.support import REGISTRY_KEY, DemoModels
from tickerserve.errors import Conflict
from tickerserve.layout import TRAINING_HISTORY_KEY, artifact_key
from tickerserve.publishing.release import RouteChange, publish
from tickerserve.publishing.version_folders import scan, versions_of
from tickerserve.storage.history import append_records, read_records, versions_named
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore, S3Store


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def _publish(store, bundle, **kwargs):
    return publish(store, bundle, registry_key=REGISTRY_KEY, model="etfs/SMH", **kwargs)


def test_first_publish_is_1_0_0_then_patch_bumps(store, models: DemoModels):
    # Given an empty store
    # When the same model is published twice with an alias
    first = _publish(store, models.smh, aliases=["production"])
    second = _publish(store, models.smh_v2, aliases=["production"])
    # Then versions are 1.0.0 and 1.0.1 and production follows the latest, keeping history
    assert (first.written.version, second.written.version) == ("1.0.0", "1.0.1")
    registry = read_registry(store, REGISTRY_KEY).registry
    assert registry.models["etfs/SMH"].aliases["production"].version == "1.0.1"
    assert [t.version for t in registry.models["etfs/SMH"].history["production"]] == ["1.0.0"]
    assert second.revision == 2


@pytest.mark.parametrize(("bump", "expected"), [("minor", "1.1.0"), ("major", "2.0.0")])
def test_bump_parts(store, models: DemoModels, bump, expected):
    # Given 1.0.0 exists
    _publish(store, models.smh)
    # When publishing with a minor or major bump
    result = _publish(store, models.smh, bump=bump)
    # Then that part of the highest version is bumped
    assert result.written.version == expected


def test_incomplete_version_counts_as_taken(store, models: DemoModels):
    # Given 1.0.0 is published and 1.0.1 was interrupted before its metadata.json
    _publish(store, models.smh, aliases=["production"])
    store.put(artifact_key("etfs/SMH", "1.0.1", "model.txt"), b"partial", create_only=True)
    # When publishing without a version
    result = _publish(store, models.smh_v2, aliases=["production"])
    # Then 1.0.1 is skipped and the inventory flags it as incomplete
    assert result.written.version == "1.0.2"
    folders = {f.version: f.complete for f in versions_of(store, "etfs/SMH")}
    assert folders == {"1.0.0": True, "1.0.1": False, "1.0.2": True}


def test_explicit_existing_version_is_refused(store, models: DemoModels):
    # Given 1.0.0 exists and 1.0.1 is incomplete
    _publish(store, models.smh)
    store.put(artifact_key("etfs/SMH", "1.0.1", "model.txt"), b"partial", create_only=True)
    # When publishing exactly those versions
    # Then both are refused with a message naming the problem, and nothing moves
    with pytest.raises(
        Conflict, match=r"^etfs/SMH 1\.0\.0 already exists; versions are immutable$"
    ):
        _publish(store, models.smh_v2, version="1.0.0", aliases=["production"])
    with pytest.raises(Conflict, match=r"1\.0\.1 exists as an incomplete version folder"):
        _publish(store, models.smh_v2, version="1.0.1", aliases=["production"])
    assert (
        "production" not in read_registry(store, REGISTRY_KEY).registry.models["etfs/SMH"].aliases
    )


def test_publish_appends_training_history(store, models: DemoModels):
    # Given an empty store
    # When a model is published with routes
    result = _publish(
        store, models.smh, aliases=["staging"], routes=[RouteChange("SMH", "etf", "etfs/SMH")]
    )
    # Then one history record describes it and the registry routes the ticker
    [record] = read_records(store, TRAINING_HISTORY_KEY).records
    assert record["event"] == "published"
    assert (record["model"], record["version"]) == ("etfs/SMH", "1.0.0")
    assert record["metadata_sha256"] == result.written.metadata_sha256
    assert record["metrics"] == models.smh.metadata.metrics
    assert record["aliases"] == ["staging"]
    assert read_registry(store, REGISTRY_KEY).registry.tickers["SMH"].model == "etfs/SMH"


def test_interrupted_publish_leaves_registry_untouched(store, models: DemoModels):
    # Given production at 1.0.0
    _publish(store, models.smh, aliases=["production"])
    before = read_registry(store, REGISTRY_KEY)

    def interrupt(key: str) -> None:
        if key.endswith("/metadata.json"):
            raise KeyboardInterrupt("interrupted before metadata.json")

    # When the next publish is interrupted before its metadata.json is written
    with pytest.raises(KeyboardInterrupt, match=r"^interrupted before metadata\.json$"):
        _publish(FaultyStore(store, interrupt), models.smh_v2, aliases=["production"])
    # Then the registry is byte-for-byte the same and 1.0.1 is an incomplete folder
    after = read_registry(store, REGISTRY_KEY)
    assert after.etag == before.etag
    assert [(f.version, f.complete) for f in scan(store)] == [("1.0.0", True), ("1.0.1", False)]
    assert len(read_records(store, TRAINING_HISTORY_KEY).records) == 1


def test_concurrent_publishers_get_distinct_versions(s3_store: S3Store, models: DemoModels):
    # Given two publishers released at the same moment against one bucket
    barrier = threading.Barrier(2)
    results: list[str] = []

    def worker(bundle) -> None:
        barrier.wait()
        results.append(_publish(s3_store, bundle, aliases=["production"]).written.version)

    threads = [threading.Thread(target=worker, args=(b,)) for b in (models.smh, models.smh_v2)]
    # When both publish the same model without a version
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then both versions exist, both history lines survive and the registry saw two updates
    assert sorted(results) == ["1.0.0", "1.0.1"]
    assert len(read_records(s3_store, TRAINING_HISTORY_KEY).records) == 2
    assert read_registry(s3_store, REGISTRY_KEY).registry.revision == 2


def test_versions_named_by_history_count_as_taken(store, models: DemoModels):
    # Given history naming etfs/SMH 1.0.4 (deleted) and noise: another model, another event,
    # an unparseable version
    append_records(
        store,
        TRAINING_HISTORY_KEY,
        [
            {"event": "deleted", "model": "etfs/SMH", "version": "1.0.4"},
            {"event": "published", "model": "etfs/SPY", "version": "7.0.0"},
            {"event": "monitor", "model": "etfs/SMH", "version": "3.0.0"},
            {"event": "published", "model": "etfs/SMH", "version": "bogus"},
        ],
    )
    assert versions_named(read_records(store, TRAINING_HISTORY_KEY).records, "etfs/SMH") == {
        "1.0.4"
    }
    # When publishing with no version folder present
    result = _publish(store, models.smh)
    # Then the next number is after the highest one ever used, and the history has it after
    # the registry update
    assert result.written.version == "1.0.5"
    assert read_records(store, TRAINING_HISTORY_KEY).records[-1]["version"] == "1.0.5"
