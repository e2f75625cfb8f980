"""Reading what serving captured: the day partitions of a window, gzip (several members) or
plain JSON lines, records in batches, and every line that is not a capture record counted
rather than raised, even in a truncated object."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pytest

from tests.monitor_support import Row, class_output, stamp
from tickerserve.layout import CAPTURE_PREFIX, partition_prefix
from tickerserve.monitor.capture_reader import (
    ReadCounts,
    days,
    is_capture,
    iter_lines,
    object_keys,
    read_records,
)
from tickerserve.storage.store import LocalStore

DAY = date(2026, 12, 1)
CLASSES = ["UP", "DOWN"]


def record(i: int, day: date = DAY) -> dict:
    return Row(
        f"r{i}", stamp(day, i), "etfs/SMH", "1.0.0", "production", "champion",
        "classification", {"a": 1.0}, class_output("UP", CLASSES), [],
    ).record()  # fmt: skip


def lines(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path)


def test_a_window_is_its_days_half_open():
    assert days(date(2026, 11, 30), date(2026, 12, 2)) == [date(2026, 11, 30), date(2026, 12, 1)]
    assert days(DAY, DAY) == []
    assert partition_prefix(CAPTURE_PREFIX, DAY.isoformat()) == "capture/dt=2026-12-01/"


def test_only_objects_of_the_windows_days_are_read_in_key_order(store: LocalStore):
    store.put("capture/dt=2026-11-30/a.jsonl", b"")
    store.put("capture/dt=2026-12-01/b.jsonl", b"")
    store.put("capture/dt=2026-12-01/a.jsonl.gz", b"")
    store.put("capture/dt=2026-12-02/c.jsonl", b"")
    store.put("capture/dt=2026-12-010/odd.jsonl", b"")
    assert object_keys(store, DAY, date(2026, 12, 2)) == [
        "capture/dt=2026-12-01/a.jsonl.gz", "capture/dt=2026-12-01/b.jsonl",
    ]  # fmt: skip


def test_gzip_of_several_members_and_plain_objects_read_alike(store: LocalStore):
    records = [record(i) for i in range(6)]
    # Firehose concatenates gzip members into one object
    store.put("capture/dt=2026-12-01/a.gz", gzip.compress(lines(records[:3])) +
              gzip.compress(lines(records[3:5])))  # fmt: skip
    store.put("capture/dt=2026-12-01/b.jsonl", lines(records[5:]))
    counts = ReadCounts()
    read = [r for batch in read_records(store, DAY, date(2026, 12, 2), counts) for r in batch]
    assert read == records
    assert counts.to_dict() == {"objects": 2, "lines": 6, "skipped": 0, "skipped_by_reason": {}}


def test_lines_that_are_not_capture_records_are_counted_not_returned(store: LocalStore):
    good = record(1)
    data = b"\n".join([
        json.dumps(good).encode(), b"not json", b"[1, 2]",
        json.dumps({**good, "kind": "log"}).encode(), json.dumps({**good, "v": 2}).encode(),
        json.dumps({**good, "model": None}).encode(), b"   ",
    ])  # fmt: skip
    store.put("capture/dt=2026-12-01/x.jsonl", data)
    counts = ReadCounts()
    read = [r for batch in read_records(store, DAY, date(2026, 12, 2), counts) for r in batch]
    assert read == [good]
    # Skipped by reason: one line is no JSON, four are JSON but no capture record of this
    # version (a list, another kind, another version, a record without a model)
    assert counts.to_dict() == {
        "objects": 1, "lines": 6, "skipped": 5,
        "skipped_by_reason": {"not_a_record": 4, "not_json": 1},
    }  # fmt: skip


def test_a_truncated_gzip_object_keeps_what_was_read_and_counts_the_damage(store: LocalStore):
    whole = gzip.compress(lines([record(i) for i in range(50)]))
    store.put("capture/dt=2026-12-01/a.gz", whole[: len(whole) - 40])
    store.put("capture/dt=2026-12-01/b.jsonl", lines([record(99)]))
    counts = ReadCounts()
    read = [r for batch in read_records(store, DAY, date(2026, 12, 2), counts) for r in batch]
    assert read[-1]["request_id"] == "r99"
    assert counts.objects == 2 and counts.reasons == {"unreadable_object": 1}


def test_lines_come_in_batches_and_a_last_line_without_newline_counts():
    data = b"\n".join(b'{"n": %d}' % i for i in range(20_000))  # no final newline
    batches = list(iter_lines(data))
    assert sum(len(b) for b in batches) == 20_000
    assert len(batches) >= 2 and batches[-1][-1] == b'{"n": 19999}'


def test_a_capture_record_has_its_kind_version_model_and_time():
    assert is_capture(record(1))
    assert not is_capture({**record(1), "time": 3})
