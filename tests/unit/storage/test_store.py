"""Both stores honour the same conditional-request contract."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

from tickerserve.storage.store import (
    KeyNotFound,
    LocalStore,
    PreconditionFailed,
    S3Store,
    atomic_write,
    sha256_hex,
)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return request.getfixturevalue("s3_store")


def test_get_put_and_conditional_get(store):
    etag = store.put("a/b.txt", b"hello")
    blob = store.get("a/b.txt")
    assert blob is not None and (blob.data, blob.etag) == (b"hello", etag)
    assert store.get("a/b.txt", if_none_match=etag) is None  # 304
    store.put("a/b.txt", b"changed")
    fresh = store.get("a/b.txt", if_none_match=etag)
    assert fresh is not None and fresh.data == b"changed"


def test_missing_key(store):
    with pytest.raises(KeyNotFound, match=r"^no object at nope\.json$") as caught:
        store.get("nope.json")
    assert caught.value.code == "key_not_found"
    assert store.head("nope.json") is None


def test_create_only_refuses_to_overwrite(store):
    store.put("v/model.txt", b"one", create_only=True)
    with pytest.raises(PreconditionFailed, match=r"^v/model\.txt .*already exists$") as caught:
        store.put("v/model.txt", b"two", create_only=True)
    assert caught.value.code == "precondition_failed"
    assert store.get("v/model.txt").data == b"one"


def test_if_match_detects_a_concurrent_change(store):
    first = store.put("reg.json", b"1")
    store.put("reg.json", b"2", if_match=first)
    with pytest.raises(PreconditionFailed, match=r"^reg\.json changed concurrently"):
        store.put("reg.json", b"3", if_match=first)  # stale ETag
    assert store.get("reg.json").data == b"2"


def test_head_reports_content_sha256(store):
    store.put("x/y.bin", b"\x00" * 10)
    info = store.head("x/y.bin")
    assert info is not None and (info.size, info.sha256) == (10, sha256_hex(b"\x00" * 10))


def test_list_and_delete(store):
    for key in ("m/versions/1.0.0/a", "m/versions/1.0.0/b", "n/c"):
        store.put(key, b"x")
    assert [o.key for o in store.list("m/")] == ["m/versions/1.0.0/a", "m/versions/1.0.0/b"]
    store.delete(["m/versions/1.0.0/a", "m/versions/1.0.0/b"])
    assert list(store.list("m/")) == []
    assert [o.key for o in store.list("")] == ["n/c"]


def test_list_matches_any_prefix_as_s3_does(store):
    keys = ["outcomes/dt=2026-12-01/a.jsonl", "outcomes/dt=2026-12-02/b.jsonl", "outcomes/x",
            "mm/y", "m/z"]  # fmt: skip
    for key in keys:
        store.put(key, b"x")
    listed = {p: [o.key for o in store.list(p)] for p in (
        "outcomes/dt=", "outcomes/dt=2026-12-02/", "outcomes/dt=2026-12-03/", "m", "m/", "",
        "../", "outcomes/../m/",
    )}  # fmt: skip
    assert listed == {
        "outcomes/dt=": keys[:2],
        "outcomes/dt=2026-12-02/": [keys[1]],
        "outcomes/dt=2026-12-03/": [],
        "m": ["m/z", "mm/y"],
        "m/": ["m/z"],
        "": sorted(keys),
        "../": [],
        "outcomes/../m/": [],
    }


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/../../b", ""])
def test_path_like_keys_are_refused_before_io(store, key):
    with pytest.raises(ValueError, match="invalid object key"):
        store.get(key)


def test_missing_bucket_is_unavailable_not_not_found(s3_store):
    broken = S3Store("no-such-bucket", client=s3_store.client)
    from tickerserve.errors import StorageUnavailable

    with pytest.raises(StorageUnavailable) as caught:
        broken.get("metadata/asset_registry.json")
    assert caught.value.code == "storage_unavailable"
    assert caught.value.message == "bucket does not exist (NoSuchBucket)"


def test_an_atomic_write_leaves_the_whole_file_or_the_old_one_and_no_temp_file(
    tmp_path, monkeypatch
):
    target = tmp_path / "model.txt"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert target.stat().st_mode & 0o777 == 0o600  # as tempfile.mkstemp made it

    # Given a write that fails half-way: the old file stays whole, no temp file is left
    class FullDisk(io.BytesIO):
        def write(self, data: Any) -> int:
            raise OSError(28, "No space left on device")

    def failing_fdopen(fd: int, mode: str) -> Any:
        os.close(fd)
        return FullDisk()

    monkeypatch.setattr(os, "fdopen", failing_fdopen)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, b"third")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.txt"]


def test_an_atomic_write_draws_another_name_when_one_is_taken(tmp_path, monkeypatch):
    # Given a temp name that is already taken by another writer's file
    taken = tmp_path / f".tmp-{'00' * 8}"
    taken.write_bytes(b"another writer's")
    draws = iter([b"\x00" * 8, b"\x01" * 8])
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    atomic_write(tmp_path / "model.txt", b"mine")
    # Then the other writer's file is untouched and ours is whole
    assert taken.read_bytes() == b"another writer's"
    assert (tmp_path / "model.txt").read_bytes() == b"mine"
