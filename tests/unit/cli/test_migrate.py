"""``tickerserve migrate``: a store written by an earlier tickerserve gets every version's
metadata digest recorded and its registry rewritten at the current schema; a version changed
since it was published is reported and left unrecorded, deleted numbers stay taken, and a
second run changes nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli_support import cli, cli_json
from tests.monitor_support import classification_baseline, reference_rows
from tests.support import REGISTRY_KEY, DemoModels
from tests.unit.storage.test_version_index import (
    api_for,
    data_of,
    predict,
    stored_digest,
    tamper_consistently,
)
from tickerserve.baselines.persistence import attach_to_bundle, load_ranges, write_sidecar
from tickerserve.layout import TRAINING_HISTORY_KEY, artifact_key, index_key, ranges_sidecar_key
from tickerserve.publishing.release import RouteChange, publish
from tickerserve.storage.bundle import make_bundle, read_metadata
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore
from tickerserve.storage.version_index import read_index, update_index


@pytest.fixture
def store(tmp_path: Path, models: DemoModels) -> LocalStore:
    """SMH 1.0.0 in production (routed) and 1.0.1 without an alias."""
    local = LocalStore(tmp_path / "store")
    route = [RouteChange("SMH", "etf", "etfs/SMH")]
    publish(local, models.smh, registry_key=REGISTRY_KEY, model="etfs/SMH",
            aliases=["production"], routes=route)  # fmt: skip
    publish(local, models.smh_v2, registry_key=REGISTRY_KEY, model="etfs/SMH")
    return local


def ts(store: LocalStore, *args: str):
    return cli("--store", str(store.root), *args)


def legacy(store: LocalStore) -> None:
    """What an older tickerserve left: no digest indexes, a schema 1 registry."""
    store.delete([index_key("etfs/SMH")])
    raw = json.loads(data_of(store, REGISTRY_KEY))
    raw["schema"] = 1
    raw["tickers"] = {  # routes as schema 1 held them: no signals
        ticker: {
            "asset_class": route["asset_class"],
            "model": route["signals"]["strategy"]["model"],
        }
        for ticker, route in raw["tickers"].items()
    }
    store.put(REGISTRY_KEY, json.dumps(raw).encode())


def test_migrate_records_every_version_and_rewrites_the_registry(store, tmp_path):
    legacy(store)
    assert predict(api_for(store, tmp_path / "a"), version="1.0.1")[0] == 404
    # When migrating (a dry run first)
    dry = cli_json("--store", str(store.root), "migrate", "--dry-run")
    assert (dry["recorded"], dry["registry"]["rewritten"]) == (2, True)
    assert read_index(store, "etfs/SMH").etag is None
    report = cli_json("--store", str(store.root), "migrate")
    # Then both versions are recorded with their stored digests, the registry is schema 3
    assert report["recorded"] == 2 and report["mismatched"] == 0
    index = read_index(store, "etfs/SMH").index
    assert index.digest("1.0.1") == stored_digest(store, "etfs/SMH", "1.0.1")
    assert json.loads(data_of(store, REGISTRY_KEY))["schema"] == 3
    # And the pinned version answers again; a second run changes nothing
    assert predict(api_for(store, tmp_path / "b"), version="1.0.1")[0] == 200
    revision = read_registry(store, REGISTRY_KEY).registry.revision
    again = cli_json("--store", str(store.root), "migrate")
    assert (again["recorded"], again["registry"]["rewritten"]) == (0, False)
    assert read_registry(store, REGISTRY_KEY).registry.revision == revision


def test_migrate_refuses_to_record_a_version_changed_since_it_was_published(store):
    # Given an old store whose unaliased 1.0.1 was replaced, metadata and all
    legacy(store)
    tamper_consistently(store)
    # When migrating, Then 1.0.1 is reported and not recorded (exit 1); 1.0.0 is recorded
    result = ts(store, "migrate")
    assert result.exit_code == 1
    assert "MISMATCH" in result.stdout
    assert result.stderr.startswith("error: 1 version(s) differ from the metadata digest")
    index = read_index(store, "etfs/SMH").index
    assert set(index.versions) == {"1.0.0"}


def test_migrate_keeps_deleted_version_numbers_taken(store, tmp_path):
    assert ts(store, "delete", "etfs/SMH", "1.0.1").exit_code == 0
    legacy(store)
    cli_json("--store", str(store.root), "migrate")
    index = read_index(store, "etfs/SMH").index
    assert index.is_deleted("1.0.1")
    history = read_records(store, TRAINING_HISTORY_KEY).records
    assert history[-1]["event"] == "deleted"


def test_incomplete_folders_are_listed_and_not_recorded(store):
    legacy(store)
    store.put(artifact_key("etfs/SMH", "1.0.2", "model.txt"), b"partial")
    report = cli_json("--store", str(store.root), "migrate")
    rows = {r["version"]: (r["status"], r["detail"]) for r in report["models"]["etfs/SMH"]}
    assert rows["1.0.2"] == ("incomplete", "no metadata.json; not recorded")
    assert rows["1.0.0"][0] == rows["1.0.1"][0] == "recorded"
    assert "1.0.2" not in read_index(store, "etfs/SMH").index.versions


def test_a_store_without_a_registry_has_nothing_to_rewrite(tmp_path, models):
    store = LocalStore(tmp_path)
    result = cli("--store", str(store.root), "migrate")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == f"{store.root}: recorded 0 version digest(s)"
    assert result.stderr == "note: no registry yet; nothing to rewrite\n"


def test_the_text_report_says_what_a_dry_run_would_do(store):
    legacy(store)
    lines = ts(store, "migrate", "--dry-run").stdout.splitlines()
    assert lines[0].split() == ["MODEL", "VERSION", "STATUS", "DETAIL"]
    assert lines[-2:] == [
        f"{store.root}: would record 2 version digest(s)",
        "would rewrite the registry from schema 1 to 3",
    ]
    assert store.head(index_key("etfs/SMH")) is None


def test_versions_with_a_baseline_from_before_ranges_get_them_beside_them(tmp_path, models):
    # Given what an older tickerserve wrote: SMH 1.0.0 published with a baseline in its folder
    # and 1.0.1 with one attached beside it, neither with feature ranges, and SPY with none
    local = LocalStore(tmp_path / "store")
    rows = reference_rows(np.random.default_rng(1), 2000, 6)
    old = dataclasses.replace(classification_baseline(models.smh, rows, None), ranges=None)
    bundle = attach_to_bundle(models.smh, old)
    bundle = make_bundle(dataclasses.replace(bundle.metadata, ranges=None), bundle.files)
    publish(local, bundle, registry_key=REGISTRY_KEY, model="etfs/SMH", aliases=["production"],
            routes=[RouteChange("SMH", "etf", "etfs/SMH")])  # fmt: skip
    publish(local, models.smh_v2, registry_key=REGISTRY_KEY, model="etfs/SMH")
    sidecar = dataclasses.replace(classification_baseline(models.smh_v2, rows, None), ranges=None)
    meta_v2, _ = read_metadata(local, "etfs/SMH", "1.0.1")
    write_sidecar(local, meta_v2, sidecar)
    local.delete([ranges_sidecar_key("etfs/SMH", "1.0.1")])  # as the older CLI left it
    update_index(local, "etfs/SMH", lambda index: index.versions.update({"1.0.1": dataclasses
                 .replace(index.versions["1.0.1"], sidecars={"baseline.json": index.versions[
                     "1.0.1"].sidecars["baseline.json"]})}))  # fmt: skip
    publish(local, models.spy, registry_key=REGISTRY_KEY, model="etfs/SPY")
    assert api_for(local, tmp_path / "a").service.serving_for_ticker("SMH").model.guard is None
    # When migrating (a dry run first)
    dry = ts(local, "migrate", "--dry-run")
    assert "would give 2 version(s) feature ranges from their baseline" in dry.stdout
    assert not local.head(ranges_sidecar_key("etfs/SMH", "1.0.0"))
    report = cli_json("--store", str(local.root), "migrate")
    # Then both SMH versions have ranges estimated from their baselines, recorded and verified
    rows_of = {(m, r["version"]): r for m, rs in report["models"].items() for r in rs
               if r["status"] == "ranges"}  # fmt: skip
    assert set(rows_of) == {("etfs/SMH", "1.0.0"), ("etfs/SMH", "1.0.1")}
    assert rows_of[("etfs/SMH", "1.0.0")]["detail"] == (
        "6 features, estimated from its baseline's CDFs"
    )
    for version in ("1.0.0", "1.0.1"):
        meta, _ = read_metadata(local, "etfs/SMH", version)
        stored = load_ranges(local, meta)
        assert stored is not None and stored.where == "sidecar" and stored.ranges.estimated
    assert local.head(ranges_sidecar_key("etfs/SPY", "1.0.0")) is None  # no baseline, no ranges
    # and a new sandbox warns on SMH's answers; a second run changes nothing
    service = api_for(local, tmp_path / "b").service
    assert service.serving_for_ticker("SMH").model.guard is not None
    again = cli_json("--store", str(local.root), "migrate")
    assert again["ranges"] == 0
