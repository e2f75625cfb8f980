"""Realized outcomes joined to what was served, in memory bounded by the captured rows.

The monitor judges only what was served: a run reads its capture first and gathers the keys
of the request ids its rows carry, then reads the outcomes and keeps only those for these keys
(``OutcomeIndex.build(..., wanted=)``). An outcome for an id that was never served costs one
key lookup and nothing else: it can neither grow memory nor thin what is judged.

Keys are 64-bit blake2b hashes of the request id under a secret salt stored with the store
(``KeyHasher``; ``tickerserve.monitor.sampling_salt``), so no caller can pick ids whose keys
land in a sample or collide with someone else's.

Per key the index keeps the latest label and, separately, the latest value (a value sent for
a classifier's id never erases its label: each task reads its own kind), and whether a later
outcome of that kind changed an earlier one (a correction; every outcome stays in the store).
``latest_outcomes`` streams every outcome received on the run's days with the outcomes
module's reader (many objects in parallel).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

from tickerserve.monitor.capture_reader import ReadCounts
from tickerserve.storage.outcomes import Outcome, read_outcome_objects
from tickerserve.storage.store import Store

NO_LABEL = -1
NO_KEY = 0  # a row whose request id is missing or not a string: never joined
_BATCH = 65536


def latest_outcomes(
    store: Store, since: date, until: date, counts: ReadCounts | None = None
) -> Iterator[Outcome]:
    """Every outcome received on the days of ``[since, until)``, oldest object first. Later
    ones correct earlier ones; ``OutcomeIndex`` keeps the latest per request id."""
    counts = counts or ReadCounts()
    for read in read_outcome_objects(store, since=since, until=until):
        counts.objects += 1
        counts.lines += read.lines
        for reason, count in read.skipped.items():
            counts.skip(reason, count)
        yield from read.outcomes


class KeyHasher:
    """Request id -> a 64-bit key under a secret salt (the same within a store, never
    ``NO_KEY``)."""

    def __init__(self, salt: bytes) -> None:
        self.salt = salt[:64]  # blake2b takes a key of at most 64 bytes

    def key(self, request_id: str) -> int:
        digest = hashlib.blake2b(request_id.encode(), digest_size=8, key=self.salt).digest()
        return int.from_bytes(digest, "little") or 1

    def keys(self, request_ids: Sequence[Any]) -> np.ndarray:
        """Each id's key; ``NO_KEY`` where the id is not a string (or not UTF-8)."""
        return np.fromiter(
            (self._key_or_none(r) for r in request_ids), dtype=np.uint64, count=len(request_ids)
        )

    def _key_or_none(self, request_id: Any) -> int:
        if not isinstance(request_id, str) or not request_id:
            return NO_KEY
        try:
            return self.key(request_id)
        except UnicodeEncodeError:
            return NO_KEY


def in_sample(keys: np.ndarray, sample_bits: int) -> np.ndarray:
    """The keys whose lowest ``sample_bits`` bits are zero (a share 2**-bits of them)."""
    mask = np.uint64((1 << sample_bits) - 1)
    return (keys & mask) == 0


@functools.lru_cache(maxsize=65536)  # outcomes arrive in batches: few distinct stamps
def _epoch(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError):
        return 0.0


@dataclass
class _Latest:
    """The latest outcome of one kind per key, sorted by key, and which keys were corrected."""

    keys: np.ndarray
    received: np.ndarray
    values: np.ndarray  # label codes (int32) or values (float64)
    corrected: np.ndarray

    @classmethod
    def empty(cls, dtype: Any) -> _Latest:
        return cls(np.zeros(0, np.uint64), np.zeros(0), np.zeros(0, dtype), np.zeros(0, dtype=bool))

    def merged(self, keys: np.ndarray, received: np.ndarray, values: np.ndarray) -> _Latest:
        """With more rows: the latest per key wins (on a tie, the one read later), and a key
        is corrected when its rows (earlier ones included) disagree."""
        all_keys = np.concatenate([self.keys, keys])
        all_received = np.concatenate([self.received, received])
        all_values = np.concatenate([self.values, values])
        carried = np.concatenate([self.corrected, np.zeros(keys.size, dtype=bool)])
        order = np.lexsort((all_received, all_keys))  # stable: read order breaks ties
        all_keys, all_received = all_keys[order], all_received[order]
        all_values, carried = all_values[order], carried[order]
        if not all_keys.size:
            return self
        starts = np.flatnonzero(np.append(True, all_keys[1:] != all_keys[:-1]))
        last = np.append(starts[1:] - 1, all_keys.size - 1)
        # A group disagrees when any value differs from its latest one.
        latest_value = np.repeat(all_values[last], np.diff(np.append(starts, all_keys.size)))
        differs = all_values != latest_value
        if all_values.dtype.kind == "f":
            differs &= ~(np.isnan(all_values) & np.isnan(latest_value))
        corrected = np.logical_or.reduceat(differs | carried, starts)
        return _Latest(all_keys[last], all_received[last], all_values[last], corrected)


class OutcomeIndex:
    """The latest label and the latest value per wanted key, as sorted numpy arrays."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self._codes: dict[str, int] = {}
        self.label_outcomes = _Latest.empty(np.int32)
        self.value_outcomes = _Latest.empty(np.float64)
        self.kept = 0  # outcomes for keys that were served
        self.ignored = 0  # outcomes for keys never served (cost a lookup, nothing else)

    @classmethod
    def build(
        cls, outcomes: Iterable[Outcome], hasher: KeyHasher, wanted: np.ndarray
    ) -> OutcomeIndex:
        """Keep, of ``outcomes`` (in the order received), those whose key is in ``wanted``
        (sorted, unique: the keys of the captured rows)."""
        index = cls()
        wanted = np.asarray(wanted, dtype=np.uint64)
        batch: list[Outcome] = []
        pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        pending_rows = 0
        for outcome in outcomes:
            batch.append(outcome)
            if len(batch) >= _BATCH:
                part = index._wanted_rows(batch, hasher, wanted)
                batch = []
                pending.append(part)
                pending_rows += part[0].size
                if pending_rows > max(_BATCH, 2 * wanted.size):  # many repeats of served ids
                    index._merge(pending)
                    pending, pending_rows = [], 0
        if batch:
            pending.append(index._wanted_rows(batch, hasher, wanted))
        index._merge(pending)
        return index

    def _wanted_rows(
        self, batch: list[Outcome], hasher: KeyHasher, wanted: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        keys = np.fromiter((hasher.key(o.request_id) for o in batch), np.uint64, len(batch))
        if wanted.size:
            pos = np.minimum(np.searchsorted(wanted, keys), wanted.size - 1)
            keep = wanted[pos] == keys
        else:
            keep = np.zeros(keys.size, dtype=bool)
        self.kept += int(keep.sum())
        self.ignored += int(keys.size - keep.sum())
        chosen = [o for o, k in zip(batch, keep.tolist(), strict=True) if k]
        received = np.array([_epoch(o.received_at) for o in chosen], dtype=np.float64)
        codes = np.array([self._code(o.label) for o in chosen], dtype=np.int32)
        values = np.array(
            [np.nan if o.value is None else o.value for o in chosen], dtype=np.float64
        )
        return keys[keep], received, codes, values

    def _merge(self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> None:
        if not parts:
            return
        keys = np.concatenate([p[0] for p in parts])
        received = np.concatenate([p[1] for p in parts])
        codes = np.concatenate([p[2] for p in parts])
        values = np.concatenate([p[3] for p in parts])
        labelled = codes != NO_LABEL
        self.label_outcomes = self.label_outcomes.merged(
            keys[labelled], received[labelled], codes[labelled]
        )
        valued = ~labelled
        self.value_outcomes = self.value_outcomes.merged(
            keys[valued], received[valued], values[valued]
        )

    def _code(self, label: str | None) -> int:
        if label is None:
            return NO_LABEL
        code = self._codes.get(label)
        if code is None:
            code = self._codes[label] = len(self.labels)
            self.labels.append(label)
        return code

    def __len__(self) -> int:
        """Keys with any outcome."""
        return int(np.union1d(self.label_outcomes.keys, self.value_outcomes.keys).size)

    def labels_for(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each key: has a label?, its latest label code, was it corrected?"""
        return _lookup(self.label_outcomes, keys, NO_LABEL)

    def values_for(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each key: has a value?, its latest value, was it corrected?"""
        return _lookup(self.value_outcomes, keys, np.nan)


def _lookup(
    latest: _Latest, keys: np.ndarray, missing: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys = np.asarray(keys, dtype=np.uint64)
    if latest.keys.size == 0:
        none = np.zeros(keys.size, dtype=bool)
        return none, np.full(keys.size, missing, dtype=latest.values.dtype), none
    pos = np.minimum(np.searchsorted(latest.keys, keys), latest.keys.size - 1)
    found = (latest.keys[pos] == keys) & (keys != NO_KEY)
    values = np.where(found, latest.values[pos], missing).astype(latest.values.dtype)
    return found, values, found & latest.corrected[pos]
