"""The per-model digest index: every published version's metadata sha256 is recorded where the
runtime, validate and sync find it, a pinned version without one is never served, and
``tickerserve migrate`` records what older stores already hold."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_support import FaultyStore, cli, cli_json
from tests.support import REGISTRY_KEY, DemoModels, FakeClock, load_event
from tickerserve.errors import Conflict, InvalidModel, NotFound
from tickerserve.http.api import Api
from tickerserve.layout import (
    artifact_key,
    index_key,
    metadata_key,
    parse_index_key,
    parse_version_key,
)
from tickerserve.publishing.demo import demo_bundle
from tickerserve.publishing.release import RouteChange, publish, publish_bundle
from tickerserve.publishing.version_folders import scan
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.bundle import make_bundle, read_bundle, write_bundle
from tickerserve.storage.store import LocalStore, S3Store, Store, sha256_hex
from tickerserve.storage.version_index import (
    VersionIndex,
    read_index,
    record_sidecar,
    record_versions,
    update_index,
)

SHA_A, SHA_B = "a" * 64, "b" * 64


@pytest.fixture
def store(tmp_path: Path, models: DemoModels) -> LocalStore:
    """SMH 1.0.0 in production (routed) and 1.0.1 published without an alias, as the CLI
    publishes (training history included)."""
    local = LocalStore(tmp_path / "store")
    route = [RouteChange("SMH", "etf", "etfs/SMH")]
    publish(
        local,
        models.smh,
        registry_key=REGISTRY_KEY,
        model="etfs/SMH",
        aliases=["production"],
        routes=route,
    )
    publish(local, models.smh_v2, registry_key=REGISTRY_KEY, model="etfs/SMH")
    return local


def data_of(store: Store, key: str) -> bytes:
    blob = store.get(key)
    assert blob is not None
    return blob.data


def ts(store: LocalStore, *args: str):
    return cli("--store", str(store.root), *args)


def stored_digest(store: LocalStore, model: str, version: str) -> str:
    blob = store.get(metadata_key(model, version))
    assert blob is not None
    return sha256_hex(blob.data)


def tamper_consistently(store: LocalStore, version: str = "1.0.1") -> None:
    """Replace a version's model and its metadata.json together: every artifact sha256 in the
    new metadata matches, only the digest recorded at publish time tells."""
    other = demo_bundle("etfs/SMH", version, seed=11, selected_features=[0, 2, 4, 6, 8, 10])
    for name, data in other.files.items():
        (store.root / artifact_key("etfs/SMH", version, name)).write_bytes(data)
    (store.root / metadata_key("etfs/SMH", version)).write_bytes(other.metadata_bytes)


def predict(api: Api, **fields: Any) -> tuple[int, dict[str, Any]]:
    event = load_event("rest_predict.json")
    body = {**json.loads(event["body"]), **fields}
    event["body"] = json.dumps(body)
    response = api.handle(event, None)
    return response["statusCode"], json.loads(response["body"])


def api_for(store: LocalStore, tmp_path: Path, clock: FakeClock | None = None) -> Api:
    settings = Settings(store_path=str(store.root), cache_dir=str(tmp_path / "cache"))
    return Api(ModelService(settings, store, clock=clock or FakeClock()))


# -- what is recorded --------------------------------------------------------------------------
def test_every_published_version_is_recorded_beside_its_folders(store):
    index = read_index(store, "etfs/SMH").index
    assert {v: index.digest(v) for v in index.versions} == {
        "1.0.0": stored_digest(store, "etfs/SMH", "1.0.0"),
        "1.0.1": stored_digest(store, "etfs/SMH", "1.0.1"),
    }
    # And the index is never mistaken for a version folder or a version's file
    key = index_key("etfs/SMH")
    assert key == "etfs/SMH/versions/index.json"
    assert parse_version_key(key) is None
    assert parse_index_key(key) == "etfs/SMH"
    assert [(f.model, f.version) for f in scan(store)] == [
        ("etfs/SMH", "1.0.0"),
        ("etfs/SMH", "1.0.1"),
    ]


def test_the_registry_does_not_grow_with_versions(tmp_path, models):
    # Given a model with one version, then 20 more published without an alias
    store = LocalStore(tmp_path / "store")
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    before = data_of(store, REGISTRY_KEY)
    for patch in range(1, 21):
        bundle = make_bundle(
            dataclasses.replace(models.smh.metadata, version=f"1.0.{patch}"), models.smh.files
        )
        publish_bundle(store, bundle, registry_key=REGISTRY_KEY, aliases=())
    # Then every digest is in the index and the registry kept its size
    assert len(read_index(store, "etfs/SMH").index.versions) == 21
    after = data_of(store, REGISTRY_KEY)
    assert abs(len(after) - len(before)) <= 4  # the revision number and timestamp only


def test_a_recorded_version_keeps_its_digest_and_its_number(store):
    digest = stored_digest(store, "etfs/SMH", "1.0.1")
    record_versions(store, "etfs/SMH", {"1.0.1": digest})  # the same again: a no-op
    with pytest.raises(Conflict, match="records metadata sha256"):
        record_versions(store, "etfs/SMH", {"1.0.1": SHA_A})
    update_index(store, "etfs/SMH", lambda index: index.mark_deleted("1.0.1", None))
    index = read_index(store, "etfs/SMH").index
    assert index.digest("1.0.1") is None and index.is_deleted("1.0.1")
    with pytest.raises(Conflict, match="never reused"):
        record_versions(store, "etfs/SMH", {"1.0.1": digest})


def test_a_sidecar_digest_is_recorded_beside_the_version(store):
    # The API issue 12's baselines use: a file kept beside an immutable version
    index = record_sidecar(store, "etfs/SMH", "1.0.0", "baseline.json", SHA_A)
    assert index.versions["1.0.0"].sidecars == {"baseline.json": SHA_A}
    assert read_index(store, "etfs/SMH").index.versions["1.0.0"].sidecars == {
        "baseline.json": SHA_A
    }
    with pytest.raises(Conflict, match=r"already records baseline\.json"):
        record_sidecar(store, "etfs/SMH", "1.0.0", "baseline.json", SHA_B)
    replaced = record_sidecar(store, "etfs/SMH", "1.0.0", "baseline.json", SHA_B, replace=True)
    assert replaced.versions["1.0.0"].sidecars["baseline.json"] == SHA_B
    assert replaced.digest("1.0.0") == stored_digest(store, "etfs/SMH", "1.0.0")
    with pytest.raises(NotFound, match=r"^etfs/SMH 9\.0\.0 is not a recorded version$") as caught:
        record_sidecar(store, "etfs/SMH", "9.0.0", "baseline.json", SHA_A)
    assert caught.value.code == "unknown_version"


def test_a_newer_index_schema_is_refused_and_unknown_fields_are_kept(store):
    raw = json.loads(data_of(store, index_key("etfs/SMH")))
    raw["versions"]["1.0.0"]["note"] = "kept"
    raw["owner"] = "quant team"
    store.put(index_key("etfs/SMH"), json.dumps(raw).encode())
    index = record_sidecar(store, "etfs/SMH", "1.0.0", "baseline.json", SHA_A)
    again = json.loads(index.to_json())
    assert again["owner"] == "quant team" and again["versions"]["1.0.0"]["note"] == "kept"
    raw["schema"] = 2
    store.put(index_key("etfs/SMH"), json.dumps(raw).encode())
    with pytest.raises(InvalidModel, match="unsupported schema 2"):
        read_index(store, "etfs/SMH")


# -- the runtime never serves a pinned version without a recorded digest -----------------------
def test_a_consistently_tampered_pinned_version_is_refused(store, tmp_path):
    # Given a pinned version that answers, then its model and metadata.json replaced together
    api = api_for(store, tmp_path / "before")
    assert predict(api, version="1.0.1")[0] == 200
    tamper_consistently(store)
    # When a fresh sandbox is asked for it by version (no alias or history entry names it)
    status, body = predict(api_for(store, tmp_path / "after"), version="1.0.1")
    # Then it is refused: the stored metadata.json is not what was published
    assert (status, body["error"]["code"]) == (503, "integrity_error")
    assert "does not match the" in body["error"]["message"]
    # And the version an alias names still answers
    assert predict(api_for(store, tmp_path / "after"))[0] == 200


def test_a_pinned_version_without_a_recorded_digest_is_404(store, tmp_path, models):
    # Given a version folder written without recording its digest (a store from before the index)
    bundle = make_bundle(
        dataclasses.replace(models.smh.metadata, version="1.0.2"), models.smh.files
    )
    write_bundle(store, bundle)
    # When a client pins it, Then it is not served, and the message says how to fix the store
    status, body = predict(api_for(store, tmp_path), version="1.0.2")
    assert (status, body["error"]["code"]) == (404, "unknown_version")
    assert "tickerserve migrate" in body["error"]["message"]


def test_pins_of_unknown_versions_read_the_index_at_most_every_few_seconds(store, tmp_path):
    recorder = FaultyStore(store)
    clock = FakeClock()
    service = ModelService(
        Settings(store_path=str(store.root), cache_dir=str(tmp_path / "cache")),
        recorder,
        clock=clock,
    )
    for patch in range(50):
        with pytest.raises(NotFound, match=rf"^model etfs/SMH has no version 7\.0\.{patch}: "):
            service.serving_for_ticker("SMH", version=f"7.0.{patch}")
    assert recorder.calls.count(("get", index_key("etfs/SMH"))) == 1
    clock.advance(6)
    with pytest.raises(NotFound, match=r"^model etfs/SMH has no version 7\.0\.99: "):
        service.serving_for_ticker("SMH", version="7.0.99")
    assert recorder.calls.count(("get", index_key("etfs/SMH"))) == 2
    # And a version recorded since is found on the next re-read
    assert service.serving_for_ticker("SMH", version="1.0.1").resolved.version == "1.0.1"


# -- validate cross-checks ---------------------------------------------------------------------
def test_validate_checks_a_pinned_version_against_its_recorded_digest(store):
    assert cli_json("--store", str(store.root), "validate", "etfs/SMH@1.0.1")["valid"] is True
    tamper_consistently(store)
    result = ts(store, "validate", "etfs/SMH@1.0.1")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: etfs/SMH 1.0.1 is not valid: etfs/SMH 1.0.1: ")
    assert "metadata.json sha256" in result.stderr


def test_validate_refuses_a_version_the_index_does_not_record_or_disagrees_on(store, models):
    bundle = make_bundle(
        dataclasses.replace(models.smh.metadata, version="1.0.2"), models.smh.files
    )
    write_bundle(store, bundle)
    unrecorded = ts(store, "validate", "etfs/SMH@1.0.2")
    assert unrecorded.exit_code == 1
    assert "its digest index has no record of it (run `tickerserve migrate`" in unrecorded.stderr
    # Given the registry and the index disagree about production's digest
    raw = json.loads(data_of(store, index_key("etfs/SMH")))
    raw["versions"]["1.0.0"]["metadata_sha256"] = SHA_A
    store.put(index_key("etfs/SMH"), json.dumps(raw).encode())
    disagree = ts(store, "validate", "etfs/SMH@production")
    assert disagree.exit_code == 1
    assert "the registry records metadata sha256" in disagree.stderr


# -- sync merges indexes -----------------------------------------------------------------------
def test_sync_merges_digest_indexes_and_records_the_versions_it_completes(
    s3_store: S3Store, tmp_path, models
):
    # Given a bucket that already records a version the local store never had
    publish_bundle(s3_store, models.smh, registry_key=REGISTRY_KEY)
    # And a local store from before the index: a new version, no index of its own
    local = LocalStore(tmp_path / "local")
    bundle = make_bundle(
        dataclasses.replace(models.smh_v2.metadata, version="1.0.1"), models.smh_v2.files
    )
    write_bundle(local, bundle)
    # When syncing it
    result = cli("--bucket", s3_store.bucket, "sync", str(local.root), "--json")
    assert result.exit_code == 0, result.stderr
    # Then the bucket's index holds both versions
    index = read_index(s3_store, "etfs/SMH").index
    assert index.digest("1.0.0") == sha256_hex(data_of(s3_store, metadata_key("etfs/SMH", "1.0.0")))
    assert index.digest("1.0.1") == sha256_hex(bundle.metadata_bytes)


def test_sync_refuses_a_version_recorded_with_another_digest(s3_store: S3Store, tmp_path, models):
    publish_bundle(s3_store, models.smh, registry_key=REGISTRY_KEY)
    local = LocalStore(tmp_path / "local")
    publish_bundle(local, models.smh, registry_key=REGISTRY_KEY)
    update_index(
        local,
        "etfs/SMH",
        lambda i: i.versions.update(
            {"1.0.0": dataclasses.replace(i.versions["1.0.0"], metadata_sha256=SHA_A)}
        ),
    )
    result = cli("--bucket", s3_store.bucket, "sync", str(local.root))
    assert result.exit_code == 2
    assert "the local digest index records aaaaaaaaaaaa" in result.stderr


def test_sync_delete_never_removes_a_digest_index(s3_store: S3Store, tmp_path, models):
    publish_bundle(s3_store, models.smh, registry_key=REGISTRY_KEY)
    local = LocalStore(tmp_path / "local")
    publish_bundle(local, models.smh, registry_key=REGISTRY_KEY)
    local.delete([index_key("etfs/SMH")])
    result = cli("--bucket", s3_store.bucket, "sync", str(local.root), "--delete", "--json")
    assert result.exit_code == 0, result.stderr
    assert read_index(s3_store, "etfs/SMH").etag is not None


def test_promote_records_a_version_written_before_the_index(store, models):
    bundle = make_bundle(
        dataclasses.replace(models.smh.metadata, version="1.0.2"), models.smh.files
    )
    write_bundle(store, bundle)
    assert ts(store, "promote", "etfs/SMH", "1.0.2").exit_code == 0
    assert read_index(store, "etfs/SMH").index.digest("1.0.2") == sha256_hex(bundle.metadata_bytes)


def test_read_bundle_is_unaffected(store):
    # The index sits beside the folders: reading a version never lists it as a file
    assert set(read_bundle(store, "etfs/SMH", "1.0.0").files) == {"model.txt"}
    assert VersionIndex("etfs/SMH").digest("1.0.0") is None
