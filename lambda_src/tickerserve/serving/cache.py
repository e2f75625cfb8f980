"""Bounded caches: a content-addressed artifact cache on disk (/tmp) and loaded models in memory.

Both evict least-recently-used entries once their byte budget is exceeded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path
from typing import Generic, TypeVar

from tickerserve.storage.store import atomic_write

logger = logging.getLogger(__name__)

_SHA_NAME = re.compile(r"[0-9a-f]{64}")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruBytes(Generic[K, V]):
    """An LRU map whose entries have a size in bytes and whose total stays within a budget."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used_bytes(self) -> int:
        return self._used

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: K, value: V, size: int) -> list[K]:
        """Insert and return the keys evicted to make room. An entry larger than the whole
        budget is not kept at all: the caller uses it once and the budget holds."""
        with self._lock:
            if key in self._entries:
                self._used -= self._entries.pop(key)[1]
            if size > self.budget_bytes:
                return []
            self._entries[key] = (value, size)
            self._used += size
            evicted = []
            while self._used > self.budget_bytes:
                old_key, (_, old_size) = self._entries.popitem(last=False)
                self._used -= old_size
                evicted.append(old_key)
            return evicted

    def pop(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return None
            self._used -= entry[1]
            return entry[0]

    def keys(self) -> list[K]:
        with self._lock:
            return list(self._entries)

    def items(self) -> list[tuple[K, V, int]]:
        with self._lock:
            return [(k, v, s) for k, (v, s) in self._entries.items()]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


class DiskCache:
    """Artifacts on local disk, named by their sha256, written via temp file + rename.

    A file's name is its digest, so two models sharing an artifact share one file, and a
    torn write can never be mistaken for a complete one. Files left by an earlier process
    in the same sandbox (a warm Lambda /tmp) are adopted at start, oldest first.
    """

    def __init__(self, root: str | os.PathLike[str], budget_bytes: int) -> None:
        self.root = Path(root) / "objects"
        self._lru: LruBytes[str, Path] = LruBytes(budget_bytes)
        self._adopt_existing()

    @property
    def used_bytes(self) -> int:
        return self._lru.used_bytes

    @property
    def budget_bytes(self) -> int:
        return self._lru.budget_bytes

    def _adopt_existing(self) -> None:
        if not self.root.is_dir():
            return
        found = []
        for path in self.root.iterdir():
            if _SHA_NAME.fullmatch(path.name) and path.is_file():
                stat = path.stat()
                found.append((stat.st_mtime, path, stat.st_size))
            elif path.name.startswith(".tmp-"):
                with contextlib.suppress(OSError):
                    path.unlink()  # a write interrupted by an earlier process
        for _, path, size in sorted(found):
            self._remove(self._lru.put(path.name, path, size))

    def read(self, sha256: str) -> bytes | None:
        """The cached bytes for a digest, or None. Callers verify the digest before use."""
        path = self._lru.get(sha256)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            self._lru.pop(sha256)
            return None

    def write(self, sha256: str, data: bytes) -> None:
        """Store bytes already verified against ``sha256``. Full disk is logged, not fatal:
        the model still loads from memory, only the /tmp copy is lost."""
        if not _SHA_NAME.fullmatch(sha256):
            raise ValueError("cache keys are sha256 hex digests")
        path = self.root / sha256
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        except OSError as exc:
            logger.warning("could not cache artifact %s on disk: %s", sha256[:12], exc)
            return
        self._remove(self._lru.put(sha256, path, len(data)))
        if sha256 not in self._lru:  # larger than the whole budget
            self._remove([sha256])

    def discard(self, sha256: str) -> None:
        """Forget a file whose content failed verification."""
        self._lru.pop(sha256)
        self._remove([sha256])

    def _remove(self, digests: list[str]) -> None:
        for digest in digests:
            with contextlib.suppress(OSError):
                (self.root / digest).unlink()
