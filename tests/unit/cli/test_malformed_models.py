"""publish, sync, validate and promote refuse a model.txt LightGBM cannot parse (real garbled
files whose sha256 is recorded correctly), with a clear message and without aborting."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tests.cli_support import cli
from tests.support import REGISTRY_KEY, DemoModels, garbled_model_texts
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.bundle import Bundle, make_bundle, write_bundle
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore, S3Store
from tickerserve.storage.version_index import record_versions

KINDS = ["truncated", "num_leaves=abc", "garbled leaf values", "flipped bytes"]
# LightGBM aborts (SIGABRT, after a "[LightGBM] [Fatal]" line) or, depending on what the
# memory around the parser holds, dies of SIGSEGV: either way the loader crashed.
CRASHED = "model.txt cannot be loaded: the loader crashed (SIG"


def garbled_bundle(models: DemoModels, kind: str, version: str = "1.0.1") -> Bundle:
    text = garbled_model_texts(models.smh.files["model.txt"])[kind]
    return make_bundle(
        dataclasses.replace(models.smh.metadata, version=version), {"model.txt": text}
    )


@pytest.fixture
def store(tmp_path: Path, models: DemoModels) -> LocalStore:
    """SMH 1.0.0 in production."""
    local = LocalStore(tmp_path / "store")
    publish_bundle(local, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    return local


@pytest.mark.parametrize("kind", KINDS)
def test_publish_refuses_a_native_folder_lightgbm_cannot_parse(tmp_path, store, models, kind):
    # Given a native bundle folder whose model.txt is malformed (its sha256 recorded correctly)
    bundle = garbled_bundle(models, kind)
    folder = tmp_path / "native"
    folder.mkdir()
    (folder / "model.txt").write_bytes(bundle.files["model.txt"])
    (folder / "metadata.json").write_bytes(bundle.metadata_bytes)
    before = sorted(i.key for i in store.list(""))
    # When it is published
    result = cli(
        "--store", str(store.root), "publish", str(folder), "-m", "etfs/SMH", "-a", "production"
    )
    # Then it is refused with one line naming the file and LightGBM's complaint
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {folder}: ")
    assert CRASHED in result.stderr
    assert result.stderr.count("\n") == 1
    # And nothing was written
    assert sorted(i.key for i in store.list("")) == before


def test_validate_and_promote_refuse_a_stored_version_lightgbm_cannot_parse(store, models):
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


def test_sync_refuses_to_upload_a_version_lightgbm_cannot_parse(s3_store: S3Store, store, models):
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
