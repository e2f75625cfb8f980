"""The local capture writer: buffered, flushed on size, time and close, never loses a record."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.capture_support import capture_objects, read_capture
from tests.cli_support import FaultyStore
from tickerserve.cli.capture_writer import StoreCaptureWriter, record_day
from tickerserve.errors import StorageUnavailable
from tickerserve.serving.capture import dumps
from tickerserve.storage.store import LocalStore, Store

WAIT = 10.0  # generous: two shared cores


def line(n: int, time: str = "2026-12-01T10:00:00.000001Z") -> bytes:
    return dumps({"kind": "capture", "v": 1, "time": time, "request_id": f"r-{n}"})


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def writers() -> Iterator[list[StoreCaptureWriter]]:
    made: list[StoreCaptureWriter] = []
    yield made
    for w in made:
        w.close()


def writer(made: list[StoreCaptureWriter], store: Store, **kwargs: Any) -> StoreCaptureWriter:
    w = StoreCaptureWriter(store, **kwargs)
    made.append(w)
    return w


def ids(store: Store) -> list[str]:
    return sorted(r["request_id"] for r in read_capture(store))


def test_a_full_buffer_is_written_without_waiting_for_the_interval(store, writers):
    w = writer(writers, store, max_records=3, interval=3600)
    w.write(b"".join([line(i) for i in range(3)]))
    eventually(lambda: w.written == 3)
    assert ids(store) == ["r-0", "r-1", "r-2"]


def test_a_partial_buffer_is_written_after_the_interval(store, writers):
    w = writer(writers, store, max_records=1000, interval=0.05)
    w.write(b"".join([line(1)]))
    eventually(lambda: w.written == 1)
    (key,) = capture_objects(store)
    assert key.startswith("capture/dt=2026-12-01/") and key.endswith(".jsonl.gz")


def test_close_writes_the_rest_grouped_by_each_records_own_day(store, writers):
    w = writer(writers, store, interval=3600)
    w.write(b"".join([line(1, "2026-11-30T23:59:59.999999Z"), line(2), line(3)]))
    assert w.written == 0
    w.close()
    keys = capture_objects(store)
    assert [k.split("/")[1] for k in keys] == ["dt=2026-11-30", "dt=2026-12-01"]
    assert ids(store) == ["r-1", "r-2", "r-3"]
    assert w.buffered == 0


def test_a_record_handed_over_after_close_is_written_at_once(store, writers):
    w = writer(writers, store, interval=3600)
    w.close()
    w.write(b"".join([line(7)]))
    assert ids(store) == ["r-7"]


def test_a_failing_store_keeps_records_and_retries_under_the_same_name(store, writers):
    # Given a store whose first write lands but reports a failure (a timeout after the fact)
    class LandsThenFails(FaultyStore):
        failures = 1

        def put(self, key: str, data: bytes, **kwargs: Any) -> str:
            etag = super().put(key, data, **kwargs)
            if self.failures:
                self.failures -= 1
                raise StorageUnavailable("timed out")
            return etag

    faulty = LandsThenFails(store)
    w = writer(writers, faulty, interval=3600)
    w.write(b"".join([line(i) for i in range(4)]))
    # When the first flush fails and a later one retries
    assert w.flush() is False
    assert w.buffered == 4
    assert w.flush() is True
    # Then the records are there exactly once, in one object
    assert ids(store) == ["r-0", "r-1", "r-2", "r-3"]
    assert len(capture_objects(store)) == 1
    puts = [k for op, k in faulty.calls if op == "put"]
    assert len(puts) == 2 and puts[0] == puts[1]


def test_when_the_store_stays_down_only_the_oldest_records_beyond_the_cap_are_dropped(
    store, writers
):
    def down(key: str) -> None:
        raise StorageUnavailable("down")

    faulty = FaultyStore(store, before_put=down)
    w = writer(writers, faulty, interval=3600, max_buffered=5)
    w.write(b"".join([line(i) for i in range(4)]))
    w.flush()
    w.write(b"".join([line(i) for i in range(4, 8)]))
    w.flush()
    assert (w.buffered, w.dropped) == (5, 3)
    faulty.before_put = lambda key: None
    assert w.flush()
    assert ids(store) == [f"r-{i}" for i in range(3, 8)]


def test_many_threads_writing_lose_nothing(store, writers):
    w = writer(writers, store, max_records=50, interval=0.01)

    def client(k: int) -> None:
        for i in range(250):
            w.write(b"".join([line(k * 1000 + i)]))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    assert len(set(ids(store))) == len(ids(store)) == 1000


def test_the_day_is_read_from_the_record_itself():
    assert record_day(line(1, "2027-01-02T00:00:00.000001Z")) == "2027-01-02"
