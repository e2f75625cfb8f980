"""Realized outcomes, joined to captured rows by request id, in bounded memory.

``latest_outcomes`` reads ``outcomes/dt=YYYY-MM-DD/*`` (the date received) with the outcomes
module's reader (``tickerserve.storage.outcomes.read_outcome_objects``: JSON lines, many objects in
parallel) and streams every outcome; the latest received outcome per request id wins (a
correction), which ``OutcomeIndex`` decides.

``OutcomeIndex`` keeps each outcome as 20 bytes of numpy (a 64-bit key of the request id, a
label code, a value). Past ``capacity`` outcomes it keeps a deterministic sample instead: the
request ids whose key has its lowest ``sample_bits`` bits zero, so captured rows are joined
against exactly the same sample and every figure stays unbiased (the sample rate is reported).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np

from tickerserve.monitor.capture_reader import ReadCounts
from tickerserve.monitor.config import DEFAULTS
from tickerserve.storage.outcomes import Outcome, read_outcome_objects
from tickerserve.storage.store import Store

DEFAULT_CAPACITY = DEFAULTS.outcome_capacity
NO_LABEL = -1


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


def request_key(request_id: str) -> int:
    """A stable 64-bit key (the same in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=8).digest(), "little")


@functools.lru_cache(maxsize=65536)  # outcomes arrive in batches: few distinct stamps
def _epoch(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class OutcomeIndex:
    """The latest outcome per request id, as sorted numpy arrays."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.labels: list[str] = []
        self._codes: dict[str, int] = {}
        self.sample_bits = 0
        self.keys = np.zeros(0, dtype=np.uint64)
        self.label_codes = np.zeros(0, dtype=np.int32)
        self.values = np.zeros(0, dtype=np.float64)
        self._received = np.zeros(0, dtype=np.float64)
        self._pending: list[tuple[list[int], list[float], list[int], list[float]]] = []
        self._pending_rows = 0

    @classmethod
    def build(cls, outcomes: Iterable[Outcome], capacity: int = DEFAULT_CAPACITY) -> OutcomeIndex:
        index = cls(capacity)
        keys: list[int] = []
        received: list[float] = []
        codes: list[int] = []
        values: list[float] = []
        for outcome in outcomes:
            keys.append(request_key(outcome.request_id))
            received.append(_epoch(outcome.received_at))
            codes.append(index._code(outcome.label))
            values.append(np.nan if outcome.value is None else outcome.value)
            if len(keys) >= 65536:
                index._add(keys, received, codes, values)
                keys, received, codes, values = [], [], [], []
        index._add(keys, received, codes, values)
        index._compact()
        return index

    def __len__(self) -> int:
        return int(self.keys.size)

    @property
    def sample_rate(self) -> float:
        return 1.0 / (1 << self.sample_bits)

    def _code(self, label: str | None) -> int:
        if label is None:
            return NO_LABEL
        code = self._codes.get(label)
        if code is None:
            code = self._codes[label] = len(self.labels)
            self.labels.append(label)
        return code

    def _add(
        self, keys: list[int], received: list[float], codes: list[int], values: list[float]
    ) -> None:
        if not keys:
            return
        self._pending.append((keys, received, codes, values))
        self._pending_rows += len(keys)
        if self._pending_rows + self.keys.size > 2 * self.capacity:
            self._compact()

    def _compact(self) -> None:
        """Merge pending outcomes, keep the latest per key, then thin to ``capacity``."""
        parts = self._pending
        self._pending, self._pending_rows = [], 0
        keys = np.concatenate([self.keys, *(np.array(p[0], dtype=np.uint64) for p in parts)])
        received = np.concatenate([self._received, *(np.array(p[1]) for p in parts)])
        codes = np.concatenate([self.label_codes, *(np.array(p[2], dtype=np.int32) for p in parts)])
        values = np.concatenate([self.values, *(np.array(p[3]) for p in parts)])
        keep = self._in_sample(keys)
        keys, received, codes, values = keys[keep], received[keep], codes[keep], values[keep]
        # Sort by key, then by time received (stable: on a tie the one read later wins),
        # and keep the last row of every key.
        order = np.lexsort((received, keys))
        keys, received, codes, values = keys[order], received[order], codes[order], values[order]
        last = np.append(keys[1:] != keys[:-1], True) if keys.size else np.zeros(0, dtype=bool)
        keys, received, codes, values = keys[last], received[last], codes[last], values[last]
        while keys.size > self.capacity:
            self.sample_bits += 1
            keep = self._in_sample(keys)
            keys, received, codes, values = keys[keep], received[keep], codes[keep], values[keep]
        self.keys, self._received, self.label_codes, self.values = keys, received, codes, values

    def _in_sample(self, keys: np.ndarray) -> np.ndarray:
        mask = np.uint64((1 << self.sample_bits) - 1)
        return (keys & mask) == 0

    def lookup(
        self, request_ids: Sequence[Any]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For each id: in the sample?, has an outcome?, its label code, its value."""
        keys = np.array(
            [request_key(r) if isinstance(r, str) else 0 for r in request_ids], dtype=np.uint64
        )
        sampled = self._in_sample(keys)
        if self.keys.size == 0:
            none = np.zeros(keys.size, dtype=bool)
            return sampled, none, np.full(keys.size, NO_LABEL, np.int32), np.full(keys.size, np.nan)
        pos = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        found = self.keys[pos] == keys
        codes = np.where(found, self.label_codes[pos], NO_LABEL)
        values = np.where(found, self.values[pos], np.nan)
        return sampled, found, codes, values
