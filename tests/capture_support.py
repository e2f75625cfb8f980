"""Reading captured records back from a store, as the monitor does (gzip or plain JSON lines,
lines that are not capture records skipped)."""

from __future__ import annotations

import gzip
import json
from typing import Any

from tickerserve.layout import CAPTURE_PREFIX
from tickerserve.storage.store import Store


def capture_objects(store: Store) -> list[str]:
    return sorted(i.key for i in store.list(CAPTURE_PREFIX))


def read_capture(store: Store) -> list[dict[str, Any]]:
    """Every capture record under ``capture/``, in key order."""
    records: list[dict[str, Any]] = []
    for key in capture_objects(store):
        blob = store.get(key)
        assert blob is not None
        data = gzip.decompress(blob.data) if blob.data[:2] == b"\x1f\x8b" else blob.data
        for line in data.splitlines():
            if line.strip():
                record = json.loads(line)
                if isinstance(record, dict) and record.get("kind") == "capture":
                    records.append(record)
    return records


class ListSink:
    """A capture sink that keeps the lines it is given, parsed back into records."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.lines.extend(data.splitlines(keepends=True))

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]
