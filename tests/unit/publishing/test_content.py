"""A version's content digest: equal for two versions that answer alike (whenever or however
they were published, with or without a monitoring baseline), different for anything that
changes an answer; and the versions a store holds with their digests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from tests.monitor_support import classification_baseline, reference_rows
from tests.support import REGISTRY_KEY, DemoModels
from tickerserve.baselines.persistence import attach_to_bundle
from tickerserve.layout import artifact_key, metadata_key
from tickerserve.publishing.content import StoredVersion, content_digest, stored_versions
from tickerserve.publishing.release import publish_bundle, with_identity
from tickerserve.storage.bundle import BundleMetadata, make_bundle, read_metadata
from tickerserve.storage.store import LocalStore


def changed(meta: BundleMetadata, **fields: Any) -> BundleMetadata:
    return dataclasses.replace(BundleMetadata.from_dict(meta.to_dict()), **fields)


def test_when_where_and_under_which_number_do_not_change_the_digest(models: DemoModels):
    meta = models.smh.metadata
    again = changed(
        meta, version="7.0.0", created_at="2030-01-01T00:00:00Z", metrics={"accuracy": 0.1},
        source={"from": "elsewhere"}, asset_class="stock",
    )  # fmt: skip
    assert content_digest(again) == content_digest(meta)


def test_a_baseline_does_not_change_the_digest(models: DemoModels):
    baseline = classification_baseline(
        models.smh, reference_rows(np.random.default_rng(0), 100, 6), None
    )
    with_baseline = attach_to_bundle(models.smh, baseline)
    assert "baseline.json" in with_baseline.metadata.artifacts
    assert content_digest(with_baseline.metadata) == content_digest(models.smh.metadata)


def test_what_changes_an_answer_changes_the_digest(models: DemoModels):
    meta = models.smh.metadata
    digest = content_digest(meta)
    assert content_digest(models.smh_v2.metadata) != digest  # other trees
    assert content_digest(changed(meta, selected_features=[0, 2, 4, 6, 8, 9])) != digest
    assert content_digest(changed(meta, classes=list(reversed(meta.classes)))) != digest
    assert content_digest(changed(meta, accepts_missing=False)) != digest
    renamed = [*meta.feature_names[:-1], "other"]
    assert content_digest(changed(meta, feature_names=renamed)) != digest


def test_stored_versions_lists_taken_numbers_and_readable_digests(
    tmp_path: Path, models: DemoModels
):
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    publish_bundle(store, models.smh_v2, registry_key=REGISTRY_KEY)
    # an interrupted publish (no metadata.json) and a version whose metadata does not parse
    store.put(artifact_key("etfs/SMH", "1.0.2", "model.txt"), b"x")
    broken = with_identity(models.smh, "etfs/SMH", "1.0.3")
    store.put(artifact_key("etfs/SMH", "1.0.3", "model.txt"), broken.files["model.txt"])
    store.put(metadata_key("etfs/SMH", "1.0.3"), b"{not json")
    taken, readable = stored_versions(store, "etfs/SMH")
    assert taken == ["1.0.0", "1.0.1", "1.0.2", "1.0.3"]
    first_meta, first_digest = read_metadata(store, "etfs/SMH", "1.0.0")
    assert readable[0] == StoredVersion("1.0.0", first_digest, content_digest(first_meta))
    assert [v.version for v in readable] == ["1.0.0", "1.0.1"]
    assert readable[0].content == content_digest(models.smh.metadata)
    assert stored_versions(store, "etfs/SPY") == ([], [])


def test_a_rebuilt_bundle_of_the_same_files_has_the_same_digest(models: DemoModels):
    rebuilt = make_bundle(changed(models.smh.metadata, version="1.0.5"), models.smh.files)
    assert content_digest(rebuilt.metadata) == content_digest(models.smh.metadata)
