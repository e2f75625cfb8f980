"""Promotion: an alias moves only to a version that downloads, verifies and loads; the move is
one compare-and-swap that keeps the previous target for rollback, and a judged move is refused
when the alias moved since it was judged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support import REGISTRY_KEY, DemoModels
from tickerserve.errors import Conflict, IntegrityError, NotFound
from tickerserve.layout import artifact_key
from tickerserve.publishing.promotion import AliasMove, load_verified, promote, record_digest
from tickerserve.publishing.release import publish_bundle, with_identity
from tickerserve.storage.bundle import write_bundle
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore
from tickerserve.storage.version_index import read_index, update_index

SMH = "etfs/SMH"


@pytest.fixture
def store(tmp_path: Path, models: DemoModels) -> LocalStore:
    """SMH 1.0.0 in production and 1.0.1 published without an alias."""
    store = LocalStore(tmp_path / "store")
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    publish_bundle(store, models.smh_v2, registry_key=REGISTRY_KEY, aliases=())
    return store


def production(store: LocalStore) -> str:
    return read_registry(store, REGISTRY_KEY).registry.models[SMH].aliases["production"].version


def test_promote_moves_the_alias_and_keeps_the_previous_target(store: LocalStore):
    before = read_registry(store, REGISTRY_KEY).registry.revision
    move = promote(store, REGISTRY_KEY, SMH, "1.0.1", "production")
    assert move == AliasMove(SMH, "production", "1.0.0", "1.0.1", before + 1)
    assert move.to_dict() == {
        "model": SMH, "alias": "production", "from": "1.0.0", "to": "1.0.1",
        "revision": before + 1,
    }  # fmt: skip
    registry = read_registry(store, REGISTRY_KEY).registry
    target = registry.models[SMH].aliases["production"]
    assert target.version == "1.0.1"
    assert target.metadata_sha256 == read_index(store, SMH).index.digest("1.0.1")
    assert [t.version for t in registry.models[SMH].history["production"]] == ["1.0.0"]


def test_a_new_alias_has_no_previous_target(store: LocalStore):
    move = promote(store, REGISTRY_KEY, SMH, "1.0.1", "staging")
    assert (move.previous, move.version) == (None, "1.0.1")
    assert production(store) == "1.0.0"


def test_a_version_that_does_not_exist_is_not_found(store: LocalStore):
    with pytest.raises(NotFound, match=r"^etfs/SMH 1\.0\.9 does not exist$"):
        promote(store, REGISTRY_KEY, SMH, "1.0.9", "production")
    assert production(store) == "1.0.0"


def test_an_incomplete_version_is_refused(store: LocalStore, models: DemoModels):
    # Given a version folder whose publish stopped before metadata.json
    bundle = with_identity(models.smh, SMH, "1.0.2")
    store.put(artifact_key(SMH, "1.0.2", "model.txt"), bundle.files["model.txt"])
    with pytest.raises(IntegrityError, match=r"^etfs/SMH 1\.0\.2 is incomplete \(no metadata"):
        promote(store, REGISTRY_KEY, SMH, "1.0.2", "production")
    assert production(store) == "1.0.0"


def test_a_version_with_a_missing_artifact_is_refused(store: LocalStore):
    store.delete([artifact_key(SMH, "1.0.1", "model.txt")])
    with pytest.raises(IntegrityError, match=r"^etfs/SMH 1\.0\.1: an artifact is missing$"):
        promote(store, REGISTRY_KEY, SMH, "1.0.1", "production")
    assert production(store) == "1.0.0"


def test_a_tampered_version_is_refused(store: LocalStore):
    key = artifact_key(SMH, "1.0.1", "model.txt")
    blob = store.get(key)
    assert blob is not None
    store.put(key, blob.data.replace(b"Tree=0", b"Tree=0 "))
    with pytest.raises(IntegrityError) as caught:
        promote(store, REGISTRY_KEY, SMH, "1.0.1", "production")
    assert caught.value.message == "etfs/SMH 1.0.1: artifact model.txt fails sha256 verification"
    assert production(store) == "1.0.0"


def test_a_judged_move_is_refused_when_the_alias_moved_since(store: LocalStore):
    promote(store, REGISTRY_KEY, SMH, "1.0.1", "production")
    with pytest.raises(Conflict) as caught:
        promote(store, REGISTRY_KEY, SMH, "1.0.0", "production", only_if_at="1.0.0")
    assert caught.value.message == (
        "etfs/SMH production moved to 1.0.1 since it was judged at 1.0.0; not promoting"
    )
    assert production(store) == "1.0.1"
    with pytest.raises(Conflict, match=r"moved to \(none\) since it was judged at 1\.0\.0"):
        promote(store, REGISTRY_KEY, SMH, "1.0.1", "staging", only_if_at="1.0.0")
    # and the move the judgement was about goes through
    assert promote(store, REGISTRY_KEY, SMH, "1.0.0", "production", only_if_at="1.0.1").previous


def test_a_version_from_before_the_digest_index_is_recorded_when_promoted(
    tmp_path: Path, models: DemoModels
):
    # Given a version folder written directly, never recorded in the digest index
    store = LocalStore(tmp_path)
    write_bundle(store, with_identity(models.smh, SMH, "1.0.0"))
    assert read_index(store, SMH).index.digest("1.0.0") is None
    # When it is promoted
    promote(store, REGISTRY_KEY, SMH, "1.0.0", "production")
    # Then its digest is recorded, the same the registry holds
    recorded = read_index(store, SMH).index.digest("1.0.0")
    assert recorded == production_digest(store)


def production_digest(store: LocalStore) -> str:
    registry = read_registry(store, REGISTRY_KEY).registry
    return registry.models[SMH].aliases["production"].metadata_sha256


def test_a_version_marked_deleted_is_refused_with_how_to_finish_the_delete(store: LocalStore):
    # Given 1.0.1 marked deleted in the index while its files remain (an interrupted delete)
    update_index(store, SMH, lambda index: index.mark_deleted("1.0.1", None))
    with pytest.raises(Conflict) as caught:
        promote(store, REGISTRY_KEY, SMH, "1.0.1", "production")
    assert caught.value.code == "version_deleted"
    assert caught.value.message.startswith("refusing etfs/SMH 1.0.1: etfs/SMH 1.0.1 was deleted")
    assert caught.value.message.endswith(
        "(its files remain: a delete was interrupted; `tickerserve delete etfs/SMH 1.0.1` "
        "finishes it)"
    )
    assert production(store) == "1.0.0"


def test_recording_a_digest_that_differs_from_the_index_is_a_conflict(store: LocalStore):
    record_digest(store, SMH, "1.0.1", read_index(store, SMH).index.digest("1.0.1") or "")
    with pytest.raises(Conflict) as caught:
        record_digest(store, SMH, "1.0.1", "f" * 64)
    assert caught.value.message.startswith("refusing etfs/SMH 1.0.1: ")
    assert "tickerserve delete" not in caught.value.message


def test_load_verified_gives_the_bundle_a_loaded_model_and_the_metadata_digest(
    store: LocalStore, models: DemoModels
):
    bundle, loaded, digest = load_verified(store, SMH, "1.0.1")
    assert bundle.metadata.version == "1.0.1"
    assert digest == read_index(store, SMH).index.digest("1.0.1")
    x = np.zeros((1, len(loaded.used_features)))
    assert loaded.predict_proba(x).shape == (1, len(models.smh_v2.metadata.classes))
    with pytest.raises(IntegrityError, match="does not match"):
        load_verified(store, SMH, "1.0.1", expected_sha256="0" * 64)
