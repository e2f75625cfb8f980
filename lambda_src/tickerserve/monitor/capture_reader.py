"""Reading capture records: ``capture/dt=YYYY-MM-DD/*`` objects of JSON lines, gzip or plain.

A narrow reader for the capture-record contract (PLAN.md "Capture record"): objects are listed
per day, decompressed as a stream and parsed in batches; lines that are not capture records
are skipped and counted by reason (``NOT_JSON``, ``NOT_A_RECORD``, ``UNREADABLE_OBJECT``), so
no line can stop a run. orjson parses when installed (about 3x the standard library).
"""

from __future__ import annotations

import gc
import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tickerserve.layout import CAPTURE_KIND, CAPTURE_PREFIX, CAPTURE_VERSION, partition_prefix
from tickerserve.storage.store import ObjectInfo, Store

try:  # the Lambda layer carries orjson; the standard library is the fallback
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - exercised where orjson is absent
    import json

    _loads = json.loads

BATCH_LINES = 8192
_CHUNK = 4 << 20


def days(since: date, until: date) -> list[date]:
    """The days of ``[since, until)``."""
    return [since + timedelta(days=i) for i in range((until - since).days)]


# Why a capture line was skipped (``ReadCounts.reasons``; the outcome reader adds its own).
NOT_JSON = "not_json"  # not JSON, or not UTF-8, or a number beyond float range
NOT_A_RECORD = "not_a_record"  # JSON, but not a capture record of this version
UNREADABLE_OBJECT = "unreadable_object"  # a truncated or garbled gzip object (counted once)


@dataclass
class ReadCounts:
    """What a reader saw besides the records it returned: lines skipped, by reason."""

    objects: int = 0
    lines: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def malformed(self) -> int:
        return sum(self.reasons.values())

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "lines": self.lines,
            "skipped": self.malformed,
            "skipped_by_reason": dict(sorted(self.reasons.items())),
        }


def object_keys(store: Store, since: date, until: date, prefix: str = CAPTURE_PREFIX) -> list[str]:
    """Every object under the day partitions of ``[since, until)``, in key order."""
    return [info.key for info in listed_objects(store, since, until, prefix)]


def listed_objects(
    store: Store, since: date, until: date, prefix: str = CAPTURE_PREFIX
) -> list[ObjectInfo]:
    """Every object under the day partitions of ``[since, until)``, in key order, with the
    size the listing gives (what a read of it is granted time for)."""
    listed: list[ObjectInfo] = []
    for day in days(since, until):
        listed.extend(
            sorted(store.list(partition_prefix(prefix, day.isoformat())), key=lambda info: info.key)
        )
    return listed


def iter_lines(data: bytes) -> Iterator[list[bytes]]:
    """Non-empty lines of a gzip (any number of members) or plain object, in batches."""
    stream: io.BufferedIOBase
    if data[:2] == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=io.BytesIO(data))
    else:
        stream = io.BytesIO(data)
    carry = b""
    batch: list[bytes] = []
    with stream:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            batch.extend(line for line in lines if line.strip())
            if len(batch) >= BATCH_LINES:
                yield batch
                batch = []
    if carry.strip():
        batch.append(carry)
    if batch:
        yield batch


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Parsed records are millions of small dicts and lists without cycles, freed by
    reference counting; the cyclic collector would walk them again and again (about half
    the parse time). Nesting is fine: only the outermost block turns it back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_batch_objects(lines: list[bytes], counts: ReadCounts) -> list[dict[str, Any]]:
    """The JSON objects among ``lines``; anything else is counted as skipped."""
    objects: list[dict[str, Any]] = []
    counts.lines += len(lines)
    with no_cycle_collection():
        for line in lines:
            try:
                value = _loads(line)
            except (ValueError, RecursionError):  # orjson's errors are ValueErrors
                counts.skip(NOT_JSON)
                continue
            if isinstance(value, dict):
                objects.append(value)
            else:
                counts.skip(NOT_A_RECORD)
    return objects


def is_capture(record: dict[str, Any]) -> bool:
    return (
        record.get("kind") == CAPTURE_KIND
        and record.get("v") == CAPTURE_VERSION
        and isinstance(record.get("model"), str)
        and isinstance(record.get("time"), str)
    )


def parse_batch(lines: list[bytes], counts: ReadCounts) -> list[dict[str, Any]]:
    """The capture records among ``lines``; everything else is counted as skipped."""
    objects = parse_batch_objects(lines, counts)
    records = [r for r in objects if is_capture(r)]
    counts.skip(NOT_A_RECORD, len(objects) - len(records))
    return records


def read_records(
    store: Store, since: date, until: date, counts: ReadCounts, prefix: str = CAPTURE_PREFIX
) -> Iterator[list[dict[str, Any]]]:
    """Capture records of ``[since, until)``, a batch at a time (one object in memory)."""
    for info in listed_objects(store, since, until, prefix):
        blob = store.get(info.key, size=info.size)
        assert blob is not None
        counts.objects += 1
        try:
            for lines in iter_lines(blob.data):
                yield parse_batch(lines, counts)
        except (OSError, EOFError, zlib.error):  # a truncated or garbled gzip: keep what was read
            counts.skip(UNREADABLE_OBJECT)
