"""Version folders found by listing keys: sorted by model and semantic version, incomplete
ones (no ``metadata.json``) told apart, one model's folders never mixed with a longer name's,
and a delete that removes ``metadata.json`` first."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_support import FaultyStore
from tests.support import DemoModels
from tickerserve.layout import artifact_key, metadata_key
from tickerserve.publishing.release import with_identity
from tickerserve.publishing.version_folders import delete_folder, find_version, scan, versions_of
from tickerserve.storage.bundle import write_bundle
from tickerserve.storage.store import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def folder_of(store: LocalStore, model: str, version: str, *, complete: bool = True) -> None:
    store.put(artifact_key(model, version, "model.txt"), b"x" * 10)
    if complete:
        store.put(metadata_key(model, version), b"{}")


def test_folders_sort_by_model_then_semantic_version(store: LocalStore):
    for version in ("1.0.10", "1.0.2", "2.0.0", "1.0.9"):
        folder_of(store, "etfs/SMH", version)
    folder_of(store, "etfs/SPY", "1.0.0")
    found = [(f.model, f.version) for f in scan(store)]
    assert found == [
        ("etfs/SMH", "1.0.2"), ("etfs/SMH", "1.0.9"), ("etfs/SMH", "1.0.10"),
        ("etfs/SMH", "2.0.0"), ("etfs/SPY", "1.0.0"),
    ]  # fmt: skip


def test_keys_that_are_not_in_a_version_folder_are_ignored(store: LocalStore):
    folder_of(store, "etfs/SMH", "1.0.0")
    store.put("metadata/asset_registry.json", b"{}")
    store.put("etfs/SMH/versions/index.json", b"{}")
    store.put("etfs/SMH/versions/not-a-version/model.txt", b"x")
    store.put("etfs/SMH/baselines/1.0.0.json", b"{}")
    assert [(f.model, f.version) for f in scan(store)] == [("etfs/SMH", "1.0.0")]


def test_a_folder_without_metadata_is_incomplete_and_sizes_add_up(store: LocalStore):
    folder_of(store, "etfs/SMH", "1.0.0")
    folder_of(store, "etfs/SMH", "1.0.1", complete=False)
    complete, partial = scan(store)
    assert (complete.complete, complete.size, len(complete.keys)) == (True, 12, 2)
    assert (partial.complete, partial.size, partial.keys) == (
        False,
        10,
        [artifact_key("etfs/SMH", "1.0.1", "model.txt")],
    )


def test_one_models_versions_never_include_a_longer_names(store: LocalStore):
    folder_of(store, "etfs/SMH", "1.0.0")
    folder_of(store, "etfs/SMH2", "3.0.0")
    folder_of(store, "etfs/SMH/daily", "5.0.0")
    assert [f.version for f in versions_of(store, "etfs/SMH")] == ["1.0.0"]
    assert [f.model for f in scan(store, "etfs/SMH")] == [
        "etfs/SMH", "etfs/SMH/daily", "etfs/SMH2",
    ]  # fmt: skip


def test_find_version_reads_one_folder_only(store: LocalStore):
    folder_of(store, "etfs/SMH", "1.0.1")
    folder_of(store, "etfs/SMH", "1.0.10")
    found = find_version(store, "etfs/SMH", "1.0.1")
    assert found is not None and (found.size, found.complete) == (12, True)
    assert sorted(found.keys) == [
        metadata_key("etfs/SMH", "1.0.1"), artifact_key("etfs/SMH", "1.0.1", "model.txt"),
    ]  # fmt: skip
    assert find_version(store, "etfs/SMH", "1.0.2") is None


def test_delete_folder_removes_metadata_first(store: LocalStore, models: DemoModels):
    # Given a complete two-file version folder
    write_bundle(store, with_identity(models.smh, "etfs/SMH", "1.0.0"))
    [folder] = scan(store)
    recorder = FaultyStore(store)
    # When it is deleted
    delete_folder(recorder, folder)
    # Then metadata.json went first (an interruption leaves an incomplete folder) and all is gone
    deletes = [key for op, key in recorder.calls if op == "delete"]
    assert deletes[0] == metadata_key("etfs/SMH", "1.0.0")
    assert len(deletes) == 2
    assert scan(store) == []


def test_an_interrupted_delete_leaves_an_incomplete_folder(store: LocalStore):
    folder_of(store, "etfs/SMH", "1.0.0")
    [folder] = scan(store)

    def interrupt(keys: list[str]) -> None:
        if metadata_key("etfs/SMH", "1.0.0") not in keys:
            raise KeyboardInterrupt("interrupted after the marker")
        LocalStore.delete(store, keys)

    class Interrupted(LocalStore):
        def delete(self, keys: list[str]) -> None:
            interrupt(keys)

    with pytest.raises(KeyboardInterrupt, match=r"^interrupted after the marker$"):
        delete_folder(Interrupted(store.root), folder)
    [left] = scan(store)
    assert left.complete is False
