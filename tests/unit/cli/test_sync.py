"""sync: local store folder -> bucket (moto in process), by content hash, safely ordered."""

from __future__ import annotations

import json

import pytest

from tests.cli_support import FaultyStore, cli, run_on_terminal
from tests.integration.serving import TICKERSERVE
from tests.support import CRASHED, REGISTRY_KEY, DemoModels, garbled_bundle, published_smh
from tickerserve.cli import sync as sync_module
from tickerserve.cli.sync import plan_sync, run_sync
from tickerserve.errors import StorageUnavailable
from tickerserve.layout import TRAINING_HISTORY_KEY, artifact_key, metadata_key
from tickerserve.publishing.release import RouteChange, publish, publish_bundle
from tickerserve.storage.history import append_records, read_records
from tickerserve.storage.registry import read_registry, update_registry
from tickerserve.storage.store import KeyNotFound, LocalStore, S3Store


@pytest.fixture
def local(tmp_path, models: DemoModels) -> LocalStore:
    """SMH 1.0.0 + SPY 1.0.0 in production, routed: 8 files (2 versions of 2 files, their
    digest indexes, the history, the registry)."""
    store = LocalStore(tmp_path / "local")
    publish(
        store,
        models.smh,
        registry_key=REGISTRY_KEY,
        model="etfs/SMH",
        aliases=["production"],
        routes=[RouteChange("SMH", "etf", "etfs/SMH")],
    )
    publish(
        store,
        models.spy,
        registry_key=REGISTRY_KEY,
        model="etfs/SPY",
        aliases=["production"],
        routes=[RouteChange("SPY", "etf", "etfs/SPY")],
    )
    return store


def sync(s3: S3Store, local: LocalStore, *args: str):
    result = cli("--bucket", s3.bucket, "sync", str(local.root), "--json", *args)
    return result, (json.loads(result.stdout) if result.stdout else None)


def test_first_sync_uploads_everything_second_skips_everything(s3_store, local):
    # Given an empty bucket
    # When syncing twice
    first, summary1 = sync(s3_store, local)
    second, summary2 = sync(s3_store, local)
    # Then the first uploads all 8 files, the second uploads nothing and skips all 8
    assert (first.exit_code, summary1["uploaded"], summary1["skipped"]) == (0, 8, 0)
    assert (second.exit_code, summary2["uploaded"], summary2["skipped"]) == (0, 0, 8)
    assert summary1["uploaded_bytes"] == sum(i.size for i in local.list(""))
    # And the bucket's registry is byte-identical to the local one
    assert s3_store.get(REGISTRY_KEY).data == local.get(REGISTRY_KEY).data


def test_only_changed_files_are_uploaded(s3_store, local, models):
    # Given a synced bucket, then a new version published locally
    sync(s3_store, local)
    publish(
        local, models.smh_v2, registry_key=REGISTRY_KEY, model="etfs/SMH", aliases=["production"]
    )
    # When syncing again
    result, summary = sync(s3_store, local)
    # Then the two new version files, SMH's index, the history and the registry are uploaded
    assert (result.exit_code, summary["uploaded"], summary["skipped"]) == (0, 5, 5)
    registry = read_registry(s3_store, REGISTRY_KEY).registry
    assert registry.models["etfs/SMH"].aliases["production"].version == "1.0.1"


def test_registry_is_written_last(s3_store, local):
    # Given the plan for an empty bucket, recorded while it runs
    recorder = FaultyStore(s3_store)
    plan = plan_sync(recorder, local.root, registry_key=REGISTRY_KEY)
    # When it runs
    run_sync(recorder, plan)
    # Then artifacts precede every metadata.json, which precede the history and the registry
    puts = [key for op, key in recorder.calls if op == "put"]
    assert puts[-1] == REGISTRY_KEY
    assert puts[-2] == TRAINING_HISTORY_KEY
    markers = [i for i, k in enumerate(puts) if k.endswith("/metadata.json")]
    models = [i for i, k in enumerate(puts) if k.endswith("/model.txt")]
    assert max(models) < min(markers)


def test_s3_checksum_counts_as_content_hash(s3_store, local):
    # Given the bucket already holds a file uploaded by another tool: SHA-256 checksum, no metadata
    key = artifact_key("etfs/SMH", "1.0.0", "model.txt")
    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key=key, Body=local.get(key).data, ChecksumAlgorithm="SHA256"
    )
    assert "sha256" not in s3_store.head(key).metadata
    # When syncing / Then that file is skipped as unchanged
    _, summary = sync(s3_store, local)
    assert (summary["uploaded"], summary["skipped"]) == (7, 1)


def test_dry_run_writes_nothing(s3_store, local):
    result = cli("--bucket", s3_store.bucket, "sync", str(local.root), "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].startswith(
        "dry run for s3://tickerserve-models: would upload 8 ("
    )
    assert list(s3_store.list("")) == []


def test_text_summary(s3_store, local):
    result = cli("--bucket", s3_store.bucket, "sync", str(local.root))
    assert result.exit_code == 0
    assert result.stdout.startswith("s3://tickerserve-models: uploaded 8 (")
    assert ", skipped 0 unchanged, deleted 0, failed 0 in " in result.stdout


def test_progress_bar_path(s3_store, local, monkeypatch):
    # Given stdout is a terminal
    monkeypatch.setattr(sync_module, "is_terminal", lambda: True)
    # When syncing / Then the rich progress path runs and still prints the summary
    result = cli("--bucket", s3_store.bucket, "sync", str(local.root))
    assert result.exit_code == 0
    assert "uploaded 8 (" in result.stdout


def test_differing_version_file_is_refused(s3_store, local):
    # Given the bucket has a different model.txt for the same version
    key = artifact_key("etfs/SMH", "1.0.0", "model.txt")
    s3_store.put(key, b"something else")
    # When syncing / Then it is refused before anything is written
    result, _ = sync(s3_store, local)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: refusing to overwrite 1 file(s) of existing versions, e.g. {key}: version "
        "folders are immutable and the target's copy differs\n",
    )
    assert [i.key for i in s3_store.list("")] == [key]


def test_newer_target_registry_is_refused_unless_forced(s3_store, local):
    # Given the bucket's registry moved on (revision 3) since a sync of revision 2
    sync(s3_store, local)
    update_registry(s3_store, REGISTRY_KEY, lambda r: r.set_fallback("etf", "etfs/SPY"))
    # When syncing / Then it is refused
    result, _ = sync(s3_store, local)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: target registry is at revision 3, local at 2: refusing to move it backwards "
        "or over a diverged change (use --force)\n",
    )
    # When forced / Then the local content is written as revision 4
    forced, summary = sync(s3_store, local, "--force")
    assert forced.exit_code == 0
    assert summary["notes"] == ["--force: local registry written as revision 4"]
    registry = read_registry(s3_store, REGISTRY_KEY).registry
    assert (registry.revision, registry.fallbacks) == (4, {})


def test_histories_are_merged_not_overwritten(s3_store, local):
    # Given the bucket's history has a line the local one lacks
    sync(s3_store, local)
    append_records(s3_store, TRAINING_HISTORY_KEY, [{"event": "monitor", "n": 1}])
    append_records(local, TRAINING_HISTORY_KEY, [{"event": "local", "n": 2}])
    # When syncing
    result, _ = sync(s3_store, local)
    # Then the bucket keeps its line and gains the local one
    assert result.exit_code == 0
    events = [r["event"] for r in read_records(s3_store, TRAINING_HISTORY_KEY).records]
    assert events == ["published", "published", "monitor", "local"]


def test_delete_removes_extra_files_but_never_registry_history_or_aliased_versions(s3_store, local):
    # Given a synced bucket plus an extra file
    sync(s3_store, local)
    s3_store.put("notes/extra.txt", b"x")
    # When syncing with --delete
    result, summary = sync(s3_store, local, "--delete")
    # Then the extra file is gone and everything else is kept
    assert (result.exit_code, summary["deleted"]) == (0, 1)
    assert s3_store.head("notes/extra.txt") is None
    # Given the local copy of SPY's aliased version disappears
    for info in list(local.list("etfs/SPY/")):
        local.delete([info.key])
    # When syncing with --delete / Then it is refused: production points at it
    refused, _ = sync(s3_store, local, "--delete")
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: --delete would remove {metadata_key('etfs/SPY', '1.0.0')}, but the registry "
        "points an alias at etfs/SPY 1.0.0\n"
    )


def test_registry_pointing_at_missing_version_is_refused(s3_store, local):
    # Given the local registry points at a version neither side has
    local.delete([metadata_key("etfs/SPY", "1.0.0")])
    # When syncing / Then refused, nothing written
    result, _ = sync(s3_store, local)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: the registry points etfs/SPY production at 1.0.0, which neither the local "
        "folder nor the target has\n",
    )
    assert list(s3_store.list("")) == []


def test_not_a_store_is_refused(s3_store, tmp_path):
    (tmp_path / "random.txt").write_text("hello")
    result = cli("--bucket", s3_store.bucket, "sync", str(tmp_path))
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {tmp_path}: not a tickerserve store (no {REGISTRY_KEY} and no "
        "*/versions/*/ folders)\n",
    )


def test_failed_upload_stops_before_the_registry(s3_store, local, tmp_path, monkeypatch):
    # Given a target where one model file cannot be written
    broken = artifact_key("etfs/SPY", "1.0.0", "model.txt")

    def fail(key: str) -> None:
        if key == broken:
            raise StorageUnavailable("storage error on it: InternalError")

    monkeypatch.setattr(
        "tickerserve.cli.store_option.open_store", lambda **kw: FaultyStore(s3_store, fail)
    )
    # When syncing
    result = cli("--bucket", s3_store.bucket, "sync", str(local.root))
    # Then it exits 1, names the failure, and no metadata.json, digest index or registry was sent
    assert result.exit_code == 1
    assert result.stderr == (
        f"failed: {broken}: storage error on it: InternalError\n"
        "error: sync incomplete: 1 failed; 6 later step(s) not attempted\n"
    )
    with pytest.raises(KeyNotFound, match=r"^no object at metadata/asset_registry\.json$"):
        s3_store.get(REGISTRY_KEY)
    assert s3_store.head(metadata_key("etfs/SMH", "1.0.0")) is None


def test_delete_never_removes_a_rollback_target(s3_store, local, models):
    # Given production on SMH moved 1.0.0 -> 1.0.1 (1.0.0 is in the alias history), synced
    publish(
        local, models.smh_v2, registry_key=REGISTRY_KEY, model="etfs/SMH", aliases=["production"]
    )
    assert sync(s3_store, local)[0].exit_code == 0
    # And the local copy of 1.0.0 disappears (the registry still lists it for rollback)
    for info in list(local.list("etfs/SMH/versions/1.0.0/")):
        local.delete([info.key])
    # When syncing with --delete
    refused, _ = sync(s3_store, local, "--delete")
    # Then it is refused and the rollback target stays in the bucket
    assert (refused.exit_code, refused.stderr) == (
        2,
        f"error: --delete would remove {metadata_key('etfs/SMH', '1.0.0')}, but "
        "etfs/SMH 1.0.0 is a rollback target in the registry's alias history\n",
    )
    assert s3_store.head(metadata_key("etfs/SMH", "1.0.0")) is not None


def test_capture_and_outcomes_are_never_uploaded_overwritten_or_deleted(s3_store, local):
    # Given a local store with its own captured rows and outcomes, and a bucket whose
    # capture/ and outcomes/ hold different objects under the same and other keys
    local.put("capture/dt=2026-12-01/a.jsonl.gz", b"local capture")
    local.put("outcomes/dt=2026-12-01/x.json", b'{"local": true}')
    s3_store.put("capture/dt=2026-12-01/a.jsonl.gz", b"bucket capture")
    s3_store.put("capture/dt=2026-11-30/b.jsonl.gz", b"older bucket capture")
    s3_store.put("outcomes/dt=2026-11-30/y.json", b'{"bucket": true}')
    # When syncing with --delete (which removes target files missing locally)
    result, summary = sync(s3_store, local, "--delete")
    # Then the models went up, and nothing under capture/ or outcomes/ was touched
    assert result.exit_code == 0, result.output
    models_files = [i for i in local.list("") if not i.key.startswith(("capture/", "outcomes/"))]
    assert summary["uploaded"] == len(models_files) == 8
    assert summary["deleted"] == 0
    assert s3_store.get("capture/dt=2026-12-01/a.jsonl.gz").data == b"bucket capture"
    assert s3_store.get("capture/dt=2026-11-30/b.jsonl.gz").data == b"older bucket capture"
    assert s3_store.get("outcomes/dt=2026-11-30/y.json").data == b'{"bucket": true}'
    with pytest.raises(KeyNotFound, match=r"^no object at outcomes/dt=2026-12-01/x\.json$"):
        s3_store.get("outcomes/dt=2026-12-01/x.json")
    assert any("capture/ and outcomes/" in note for note in summary["notes"])


# -- a model.txt LightGBM cannot parse (a real garbled file, its sha256 recorded) ----------
def test_sync_refuses_to_upload_a_version_lightgbm_cannot_parse(
    s3_store: S3Store, tmp_path, models
):
    store = published_smh(tmp_path / "store", models)
    # Given a local store holding a malformed (correctly hashed) version in production
    publish_bundle(store, garbled_bundle(models, "truncated"), registry_key=REGISTRY_KEY)
    # When it is synced to the bucket
    result = cli("--bucket", s3_store.bucket, "sync", str(store.root), "--json")
    # Then the sync is refused before anything is uploaded
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: refusing to sync etfs/SMH 1.0.1: etfs/SMH@1.0.1: {CRASHED}"
    )
    assert list(s3_store.list("")) == []
    assert json.loads(result.stdout or "null") is None


@pytest.mark.parametrize("output", ["text", "json"])
def test_sync_shows_its_progress_on_a_terminal_only(tmp_path, local, output: str):
    # Given a target folder store that has none of the local files yet
    argv = [*TICKERSERVE, "--store", str(tmp_path / "target"), "sync", str(local.root)]
    # When sync runs with its stderr on a terminal (with --json, or for a person)
    run = run_on_terminal([*argv, "--json"] if output == "json" else argv)
    assert run.code == 0, run.terminal
    if output == "json":
        # Then --json output is the JSON alone, and the terminal saw no progress
        assert json.loads(run.stdout)["uploaded"] == 8
        assert "hashing" not in run.terminal
    else:
        # Then the terminal showed each phase with its count
        assert "hashing 8 files in" in run.terminal and "8/8" in run.terminal
        assert "comparing 0 files with" in run.terminal
        assert "uploaded 8" in run.stdout
