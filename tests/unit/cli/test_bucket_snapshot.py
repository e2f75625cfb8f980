"""make serve's bucket kept in a folder: saved incrementally, restored whole, never left half
written by a crash."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tickerserve.cli.bucket_snapshot import BucketSnapshot, PeriodicSave, Saved, SnapshotError

BUCKET = "tickerserve-demo"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put(client: Any, key: str, data: bytes, **extra: Any) -> None:
    client.put_object(Bucket=BUCKET, Key=key, Body=data, **extra)


def contents(
    client: Any, bucket: str = BUCKET
) -> dict[str, tuple[bytes, str, dict[str, str], str]]:
    """Every object's bytes, content type, user metadata and ETag."""
    found = {}
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        got = client.get_object(Bucket=bucket, Key=item["Key"])
        found[item["Key"]] = (got["Body"].read(), got["ContentType"], got["Metadata"], got["ETag"])
    return found


def fill(client: Any) -> None:
    put(client, "metadata/asset_registry.json", b'{"revision": 3}', ContentType="application/json")
    put(client, "etfs/SMH/versions/1.0.0/model.txt", b"tree" * 1000, Metadata={"sha256": "ab"})
    put(client, "capture/dt=2026-12-01/a.jsonl.gz", b"\x1f\x8b gz", ContentType="application/gzip")
    put(client, "metadata/monitoring_history.jsonl", b'{"model": "etfs/SMH"}\n')


def test_a_saved_bucket_comes_back_whole_in_a_fresh_server(s3: Any, tmp_path: Path):
    # Given a bucket with models, capture and history, saved into a folder
    fill(s3)
    snapshot = BucketSnapshot(tmp_path / "bucket")
    saved = snapshot.save(s3, BUCKET)
    assert (saved.objects, saved.transferred) == (4, 4)
    original = contents(s3)
    # When a fresh, empty bucket (the next make serve's moto) gets it back
    s3.create_bucket(Bucket="next-run")
    restored = BucketSnapshot(tmp_path / "bucket").restore(s3, "next-run")
    # Then every object is there with its bytes, content type, metadata and ETag
    assert contents(s3, "next-run") == original
    assert (restored.objects, restored.bytes) == (4, sum(len(v[0]) for v in original.values()))
    assert restored.saved_at is not None and restored.unreadable == ()


def test_a_save_downloads_only_what_changed_and_forgets_what_was_deleted(s3: Any, tmp_path: Path):
    # Given a saved bucket
    fill(s3)
    snapshot = BucketSnapshot(tmp_path / "bucket")
    snapshot.save(s3, BUCKET)
    manifest = snapshot.manifest_path.read_bytes()
    # When nothing changed, a save downloads nothing and rewrites nothing
    assert snapshot.save(s3, BUCKET).transferred == 0
    assert snapshot.manifest_path.read_bytes() == manifest
    # When one object changes, one is added and one deleted
    put(s3, "metadata/asset_registry.json", b'{"revision": 4}')
    put(s3, "outcomes/dt=2026-12-02/b.jsonl", b'{"request_id": "r"}\n')
    s3.delete_object(Bucket=BUCKET, Key="capture/dt=2026-12-01/a.jsonl.gz")
    saved = snapshot.save(s3, BUCKET)
    # Then only the two new contents were downloaded, and the deleted object's bytes are gone
    assert (saved.objects, saved.transferred) == (4, 2)
    assert set(snapshot.entries()) == set(contents(s3))
    blobs = {p.name for p in (tmp_path / "bucket/objects").glob("*/*")}
    assert blobs == {e.sha256 for e in snapshot.entries().values()}


class BreaksAfter:
    """An S3 client whose GETs fail after ``n`` of them (the save stops half way)."""

    def __init__(self, client: Any, n: int) -> None:
        self._client, self._left = client, n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **kwargs: Any) -> Any:
        self._left -= 1
        if self._left < 0:
            raise ConnectionError("the server went away mid-save")
        return self._client.get_object(**kwargs)


def test_a_save_cut_short_leaves_the_previous_snapshot_whole(s3: Any, tmp_path: Path):
    # Given a saved bucket, then new objects
    fill(s3)
    snapshot = BucketSnapshot(tmp_path / "bucket")
    snapshot.save(s3, BUCKET)
    before = contents(s3)
    for i in range(6):
        put(s3, f"capture/dt=2026-12-02/{i}.jsonl.gz", f"row {i}".encode())
    # When a save stops after downloading a few of them
    breaking: Any = BreaksAfter(s3, 2)
    with pytest.raises(ConnectionError, match=r"^the server went away mid-save$"):
        BucketSnapshot(tmp_path / "bucket").save(breaking, BUCKET)
    # Then the folder still restores the previous bucket exactly
    s3.create_bucket(Bucket="after-crash")
    assert BucketSnapshot(tmp_path / "bucket").restore(s3, "after-crash").unreadable == ()
    assert contents(s3, "after-crash") == before
    # ... and the next save completes it and clears what the cut-off one left
    assert BucketSnapshot(tmp_path / "bucket").save(s3, BUCKET).objects == 10
    assert not list((tmp_path / "bucket").rglob(".tmp-*"))
    assert len(list((tmp_path / "bucket/objects").glob("*/*"))) == 10


def test_damaged_saved_bytes_are_left_out_and_named(s3: Any, tmp_path: Path):
    # Given a saved bucket whose file for one object was damaged on disk
    fill(s3)
    snapshot = BucketSnapshot(tmp_path / "bucket")
    snapshot.save(s3, BUCKET)
    damaged = snapshot.entries()["metadata/monitoring_history.jsonl"].sha256
    next((tmp_path / "bucket/objects").glob(f"*/{damaged}")).write_bytes(b"not it")
    # When restored
    s3.create_bucket(Bucket="next-run")
    restored = snapshot.restore(s3, "next-run")
    # Then that object is left out (never served with other bytes) and named; the rest is back
    assert restored.unreadable == ("metadata/monitoring_history.jsonl",)
    assert set(contents(s3, "next-run")) == set(contents(s3)) - set(restored.unreadable)


def test_a_folder_that_is_not_a_snapshot_is_refused(tmp_path: Path):
    folder = tmp_path / "bucket"
    folder.mkdir()
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(SnapshotError, match=r"manifest\.json is not valid JSON"):
        BucketSnapshot(folder).entries()
    (folder / "manifest.json").write_text(json.dumps({"format": 99, "objects": {}}))
    with pytest.raises(SnapshotError, match="not a snapshot of format 1"):
        BucketSnapshot(folder).entries()


def test_periodic_saves_warn_once_per_run_of_failures():
    # Given saves that fail twice, succeed, then fail again
    results: list[Exception | None] = [OSError("down"), OSError("down"), None, OSError("again")]
    warnings: list[str] = []
    done = []

    def save() -> Saved:
        outcome = results.pop(0) if results else None
        done.append(outcome)
        if outcome is not None:
            raise outcome
        return Saved(0, 0, 0)

    periodic = PeriodicSave(save, 0.01, warnings.append)
    periodic.start()
    deadline = time.monotonic() + 5
    while len(done) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    periodic.stop()
    # Then each run of failures is one warning, naming what failed
    assert warnings == [
        "could not save the bucket (OSError: down)",
        "could not save the bucket (OSError: again)",
    ]
