"""Capture for ``tickerserve serve``: records go into the store under the deployed prefix,
``capture/dt=YYYY-MM-DD/*.jsonl.gz``, so everything downstream works on a laptop.

Requests only append to a memory buffer; a background thread writes it out when it holds
``max_records`` records or ``max_bytes``, every ``interval`` seconds, and on ``close()``. Each
flush writes one new gzip JSON-lines object per day (create-only; objects are never appended
to or rewritten). A failed write keeps the records for the next flush; only when the store
stays down long enough for ``max_buffered`` records to pile up are the oldest dropped (and
counted). A record handed over after ``close()`` is written at once, so an answered request
is never left unrecorded.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

from tickerserve.errors import TickerserveError
from tickerserve.layout import capture_key
from tickerserve.storage.store import PreconditionFailed, Store

logger = logging.getLogger(__name__)

MAX_RECORDS = 5000
MAX_BYTES = 4 * 1024 * 1024
INTERVAL_SECONDS = 5.0
MAX_BUFFERED = 500_000
_TIME = b'"time":"'


def record_day(line: bytes) -> str:
    """The UTC date of a serialized record, read from its own ``time`` (no JSON parse)."""
    at = line.find(_TIME)
    if at < 0:
        return datetime.now(UTC).strftime("%Y-%m-%d")
    start = at + len(_TIME)
    return line[start : start + 10].decode("ascii", "replace")


class StoreCaptureWriter:
    """A capture sink that buffers lines and writes them to ``store`` in the background."""

    def __init__(
        self,
        store: Store,
        *,
        max_records: int = MAX_RECORDS,
        max_bytes: int = MAX_BYTES,
        interval: float = INTERVAL_SECONDS,
        max_buffered: int = MAX_BUFFERED,
    ) -> None:
        self.store = store
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.interval = interval
        self.max_buffered = max_buffered
        self.written = 0  # records in the store
        self.objects = 0  # objects written
        self.dropped = 0  # records given up on (store down for too long)
        self._lines: list[bytes] = []
        self._bytes = 0
        self._pending: list[tuple[str, str, list[bytes]]] = []  # (day, object name, lines)
        self._lock = threading.Lock()  # guards the buffer
        self._flush_lock = threading.Lock()  # one flush at a time, so objects never race
        self._wake = threading.Event()
        self._closed = False
        self._sequence = 0
        self._token = os.urandom(4).hex()  # distinguishes processes writing the same store
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    # -- the sink --------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        lines = data.splitlines(keepends=True)
        with self._lock:
            self._lines.extend(lines)
            self._bytes += sum(len(line) for line in lines)
            full = len(self._lines) >= self.max_records or self._bytes >= self.max_bytes
            closed = self._closed
        if closed:
            self.flush()  # after close nobody else will: write it now, before the answer goes
        elif full:
            self._wake.set()

    # -- flushing --------------------------------------------------------------------------
    def flush(self) -> bool:
        """Write everything buffered now; False (records kept for later) if the store failed."""
        with self._flush_lock:
            with self._lock:
                lines, self._lines, self._bytes = self._lines, [], 0
                chunks, self._pending = self._pending, []
            by_day: dict[str, list[bytes]] = defaultdict(list)
            for line in lines:
                by_day[record_day(line)].append(line)
            chunks += [(day, self._name(), day_lines) for day, day_lines in sorted(by_day.items())]
            failed = []
            for day, name, chunk in chunks:
                try:
                    self._put(day, name, chunk)
                except (TickerserveError, OSError, ValueError) as exc:
                    logger.warning("capture: %d record(s) not written yet: %s", len(chunk), exc)
                    failed.append((day, name, chunk))
            if failed:
                self._keep(failed)
            return not failed

    def _name(self) -> str:
        self._sequence += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{stamp}-{self._token}-{self._sequence:06d}.jsonl.gz"

    def _put(self, day: str, name: str, lines: list[bytes]) -> None:
        data = gzip.compress(b"".join(lines), compresslevel=5, mtime=0)
        # A failed chunk is retried under the same name: if the first put did land, the
        # create-only retry fails with PreconditionFailed and nothing is written twice.
        with contextlib.suppress(PreconditionFailed):
            self.store.put(
                capture_key(day, name), data, create_only=True, content_type="application/gzip"
            )
        self.written += len(lines)
        self.objects += 1

    def _keep(self, failed: list[tuple[str, str, list[bytes]]]) -> None:
        with self._lock:
            self._pending = failed + self._pending
            excess = self._count() - self.max_buffered
            while excess > 0 and self._pending:
                day, _, chunk = self._pending[0]
                gone = chunk[:excess]
                self.dropped += len(gone)
                excess -= len(gone)
                if len(gone) == len(chunk):
                    self._pending.pop(0)
                else:  # a chunk that changes keeps no name: it is new content
                    self._pending[0] = (day, self._name(), chunk[len(gone) :])
            if self.dropped:
                logger.error("capture: store unavailable, %d record(s) dropped", self.dropped)

    def _count(self) -> int:
        return len(self._lines) + sum(len(chunk) for _, _, chunk in self._pending)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._closed:
                return
            self.flush()

    def close(self, *, attempts: int = 5) -> None:
        """Stop the thread and write what is left (retrying a few times: the last chance)."""
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join()
        for attempt in range(attempts):
            if self.flush():
                return
            time.sleep(min(0.2 * 2**attempt, 2.0))
        lost = self.buffered
        if lost:
            logger.error("capture: %d record(s) could not be written to the store", lost)

    @property
    def buffered(self) -> int:
        """Records not written yet."""
        with self._lock:
            return self._count()
