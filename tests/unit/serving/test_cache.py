"""Byte-bounded LRU caches in memory and on disk."""

from __future__ import annotations

from tickerserve.serving.cache import DiskCache, LruBytes
from tickerserve.storage.store import sha256_hex


def test_lru_evicts_oldest_and_respects_recent_use():
    lru: LruBytes[str, str] = LruBytes(100)
    lru.put("a", "A", 40)
    lru.put("b", "B", 40)
    assert lru.get("a") == "A"  # a becomes most recent
    assert lru.put("c", "C", 40) == ["b"]
    assert lru.keys() == ["a", "c"] and lru.used_bytes == 80


def test_entry_larger_than_budget_is_not_kept():
    lru: LruBytes[str, str] = LruBytes(100)
    lru.put("a", "A", 50)
    assert lru.put("big", "X", 101) == []
    assert lru.keys() == ["a"]


def test_disk_cache_is_content_addressed_and_bounded(tmp_path):
    cache = DiskCache(tmp_path, budget_bytes=250)
    blobs = [bytes([i]) * 100 for i in range(3)]
    for blob in blobs:
        cache.write(sha256_hex(blob), blob)
    files = sorted(p.name for p in (tmp_path / "objects").iterdir())
    assert files == sorted(sha256_hex(b) for b in blobs[1:])
    assert cache.read(sha256_hex(blobs[0])) is None
    assert cache.read(sha256_hex(blobs[2])) == blobs[2]


def test_disk_cache_adopts_files_and_drops_torn_writes(tmp_path):
    first = DiskCache(tmp_path, budget_bytes=1000)
    blob = b"model bytes"
    first.write(sha256_hex(blob), blob)
    (tmp_path / "objects" / ".tmp-abandoned").write_bytes(b"half")
    second = DiskCache(tmp_path, budget_bytes=1000)
    assert second.read(sha256_hex(blob)) == blob
    assert not (tmp_path / "objects" / ".tmp-abandoned").exists()
