"""Reading capture records: ``capture/dt=YYYY-MM-DD/*`` objects of JSON lines, gzip or plain.

A narrow reader for the capture-record contract (PLAN.md "Capture record"): objects are listed
per day, decompressed as a stream and parsed in batches; lines that are not capture records
are skipped and counted. orjson parses when installed (about 3x the standard library).
"""

from __future__ import annotations

import gc
import gzip
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tickerserve.layout import CAPTURE_KIND, CAPTURE_PREFIX, CAPTURE_VERSION, partition_prefix
from tickerserve.storage.store import Store

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


@dataclass
class ReadCounts:
    """What a reader saw besides the records it returned."""

    objects: int = 0
    lines: int = 0
    malformed: int = 0  # not JSON, or JSON that is not a capture record

    def to_dict(self) -> dict[str, int]:
        return {"objects": self.objects, "lines": self.lines, "skipped": self.malformed}


def object_keys(store: Store, since: date, until: date, prefix: str = CAPTURE_PREFIX) -> list[str]:
    """Every object under the day partitions of ``[since, until)``, in key order."""
    keys: list[str] = []
    for day in days(since, until):
        listed = store.list(partition_prefix(prefix, day.isoformat()))
        keys.extend(sorted(info.key for info in listed))
    return keys


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
            except ValueError:
                counts.malformed += 1
                continue
            if isinstance(value, dict):
                objects.append(value)
            else:
                counts.malformed += 1
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
    counts.malformed += len(objects) - len(records)
    return records


def read_records(
    store: Store, since: date, until: date, counts: ReadCounts, prefix: str = CAPTURE_PREFIX
) -> Iterator[list[dict[str, Any]]]:
    """Capture records of ``[since, until)``, a batch at a time (one object in memory)."""
    for key in object_keys(store, since, until, prefix):
        blob = store.get(key)
        assert blob is not None
        counts.objects += 1
        try:
            for lines in iter_lines(blob.data):
                yield parse_batch(lines, counts)
        except (OSError, EOFError):  # a truncated or garbled gzip object: keep what was read
            counts.malformed += 1
