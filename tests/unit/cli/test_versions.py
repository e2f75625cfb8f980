"""``delete`` and ``validate``: a version is deleted only when no alias needs it, an interrupted
delete is finished by running it again, and validate re-checks every digest."""

from __future__ import annotations

from tests.cli_support import FaultyStore, cli, cli_json, refused, registry_of, ts
from tests.support import CRASHED, REGISTRY_KEY, garbled_bundle, published_smh
from tickerserve.errors import StorageUnavailable
from tickerserve.layout import artifact_key, metadata_key
from tickerserve.storage.bundle import write_bundle
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore
from tickerserve.storage.version_index import record_versions


def test_delete(versions_store):
    # Given production on SMH 1.0.0
    # Then deleting it is refused, deleting 1.0.1 and the incomplete 1.0.2 works
    refused(
        ts(versions_store, "delete", "etfs/SMH", "1.0.0"),
        "refusing to delete etfs/SMH 1.0.0: alias production points at it",
    )
    assert (
        ts(versions_store, "delete", "etfs/SMH", "1.0.1").stdout
        == "deleted etfs/SMH 1.0.1: 2 files\n"
    )
    assert ts(versions_store, "delete", "etfs/SMH", "1.0.2").stdout == (
        "deleted etfs/SMH 1.0.2 (incomplete): 1 files\n"
    )
    assert [
        r["version"] for r in cli_json("--store", versions_store, "list", "--name", "etfs/")
    ] == ["1.0.0"]
    refused(ts(versions_store, "delete", "etfs/SMH", "1.0.1"), "etfs/SMH 1.0.1 does not exist")
    # And the history marks the deleted publish
    history = cli_json("--store", versions_store, "history", "training", "--model", "etfs/SMH")
    published = [r for r in history if r["event"] == "published"]
    assert [("deleted_at" in r) for r in published] == [False, True]
    assert history[-1]["event"] == "deleted"


def test_an_interrupted_delete_blocks_aliases_and_finishes_when_run_again(
    two_versions, monkeypatch
):
    # Given a delete of 1.0.1 that dies while removing files (after the registry and the
    # digest index were marked)
    def fail(key: str) -> None:
        raise StorageUnavailable("storage error on it: InternalError")

    failing = FaultyStore(LocalStore(two_versions))
    failing.inner.delete = lambda keys: fail(keys[0])  # type: ignore[method-assign]
    monkeypatch.setattr("tickerserve.cli.store_option.open_store", lambda **kw: failing)
    assert ts(two_versions, "delete", "etfs/SMH", "1.0.1").exit_code == 1
    monkeypatch.undo()
    assert "1.0.1" in registry_of(two_versions).deleting["etfs/SMH"]
    # Then no alias may move to it meanwhile, with a message that says what to do
    promoted = ts(two_versions, "promote", "etfs/SMH", "1.0.1")
    assert promoted.exit_code == 2
    assert promoted.stderr.startswith("error: refusing etfs/SMH 1.0.1: etfs/SMH 1.0.1 was deleted")
    assert "a delete was interrupted; `tickerserve delete etfs/SMH 1.0.1` finishes it" in (
        promoted.stderr
    )
    # When the delete runs again, Then it finishes and clears the mark
    again = ts(two_versions, "delete", "etfs/SMH", "1.0.1")
    assert again.exit_code == 0, again.stderr
    assert registry_of(two_versions).deleting == {}
    assert LocalStore(two_versions).head(metadata_key("etfs/SMH", "1.0.1")) is None


def test_delete_drops_version_from_rollback_history(two_versions):
    # Given production moved 1.0.0 -> 1.0.1, so 1.0.0 is in the rollback history
    ts(two_versions, "promote", "etfs/SMH", "1.0.1")
    # When 1.0.0 is deleted
    assert ts(two_versions, "delete", "etfs/SMH", "1.0.0").exit_code == 0
    # Then rollback has nowhere to go (rather than pointing at a deleted version)
    refused(
        ts(two_versions, "rollback", "etfs/SMH"),
        "etfs/SMH production has no earlier version to roll back to",
    )


def test_validate(versions_store):
    result = ts(versions_store, "validate", "etfs/SMH")
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "etfs/SMH 1.0.0 is valid: 1 artifact(s) verified, loaded, probe row -> "
    )
    pinned = cli_json("--store", versions_store, "validate", "etfs/SMH@1.0.1")
    assert (pinned["valid"], pinned["registry_digest_checked"]) == (True, False)
    path = LocalStore(versions_store).root / artifact_key("etfs/SMH", "1.0.0", "model.txt")
    path.write_bytes(b"tampered")
    broken = ts(versions_store, "validate", "etfs/SMH@production")
    assert (broken.exit_code, broken.stderr) == (
        1,
        "error: etfs/SMH 1.0.0 is not valid: etfs/SMH 1.0.0: artifact model.txt fails sha256 "
        "verification\n",
    )


# -- a model.txt LightGBM cannot parse (a real garbled file, its sha256 recorded) ----------
def test_validate_and_promote_refuse_a_stored_version_lightgbm_cannot_parse(tmp_path, models):
    store = published_smh(tmp_path / "store", models)
    # Given a complete, recorded version whose model.txt is malformed but correctly hashed
    digest = write_bundle(store, garbled_bundle(models, "num_leaves=abc"))
    record_versions(store, "etfs/SMH", {"1.0.1": digest})
    # When it is validated, Then it fails (exit 1) saying why
    validated = cli("--store", str(store.root), "validate", "etfs/SMH@1.0.1")
    assert validated.exit_code == 1
    assert validated.stderr.startswith(
        f"error: etfs/SMH 1.0.1 is not valid: etfs/SMH@1.0.1: {CRASHED}"
    )
    # And promoting it is refused; production stays where it was
    promoted = cli("--store", str(store.root), "promote", "etfs/SMH", "1.0.1")
    assert promoted.exit_code == 2
    assert promoted.stderr.startswith(f"error: refusing etfs/SMH 1.0.1: etfs/SMH@1.0.1: {CRASHED}")
    registry = read_registry(store, REGISTRY_KEY).registry
    assert registry.models["etfs/SMH"].aliases["production"].version == "1.0.0"
