"""Append-only JSONL histories kept in the store: ``training`` (one record per publish or
delete) and ``monitoring`` (one record per monitoring run).

Appends are compare-and-swap (read with ETag, write with ``If-Match``; create with
``If-None-Match: *``) so concurrent publishers never lose a line. A history that would pass
``rotate_at`` bytes is first copied whole to a dated archive beside it (seed 003's archiving
advice), and the append starts a fresh object. A deleted version is not
erased from the history: a ``{"event": "deleted", ...}`` record is appended, and readers
mark the earlier ``published`` record with its ``deleted_at``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tickerserve.layout import (
    MONITORING_HISTORY_KEY,
    TRAINING_HISTORY_KEY,
    Version,
    history_archive_prefix,
)
from tickerserve.storage.compare_and_swap import ATTEMPTS, compare_and_swap
from tickerserve.storage.store import KeyNotFound, PreconditionFailed, Store

HISTORY_KEYS: dict[str, str] = {
    "training": TRAINING_HISTORY_KEY,
    "monitoring": MONITORING_HISTORY_KEY,
}
CONTENT_TYPE = "application/x-ndjson"


def encode_records(records: Iterable[dict[str, Any]]) -> bytes:
    """One compact JSON object per line; NaN and infinities are refused."""
    return b"".join(
        json.dumps(r, sort_keys=True, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        for r in records
    )


def archive_key(key: str, when: datetime) -> str:
    """``metadata/monitoring_history_archive_20261201T061500123456Z_1a2b3c4d.jsonl``: dated
    like the seed's archives, sorting in time order, unique per rotation attempt."""
    return f"{history_archive_prefix(key)}{when:%Y%m%dT%H%M%S%fZ}_{uuid.uuid4().hex[:8]}.jsonl"


def append_records(
    store: Store,
    key: str,
    records: list[dict[str, Any]],
    *,
    attempts: int = ATTEMPTS,
    rotate_at: int | None = None,
) -> str | None:
    """Append ``records`` to the JSONL object at ``key`` with compare-and-swap retries.

    With ``rotate_at``, a history that would grow past that many bytes is archived first and
    the records start a new object; returns the archive's key then (None otherwise).
    """
    if not records:
        return None
    lines = encode_records(records)
    archived: list[str] = []  # the archive of an attempt that has not won (yet)

    def discard_lost_archive(current: bytes) -> None:
        # The previous attempt archived the history, then lost the swap. Whatever won kept
        # those lines: an append left them in the object, a rotation archived them (or a
        # superset of them) itself. Only if our own lines are in the object did the swap
        # in fact go through (its answer lost), and the archive holds the only copy.
        if archived and not current.startswith(lines):
            store.delete([archived.pop()])

    def change(current: bytes | None) -> tuple[bytes, str | None]:
        current = current or b""
        discard_lost_archive(current)
        if current and not current.endswith(b"\n"):
            current += b"\n"
        if rotate_at is not None and current and len(current) + len(lines) > rotate_at:
            target = archive_key(key, datetime.now(UTC))
            store.put(target, current, create_only=True, content_type=CONTENT_TYPE)
            archived.append(target)
            return lines, target
        return current + lines, None

    try:
        return compare_and_swap(store, key, change, content_type=CONTENT_TYPE, attempts=attempts)
    except PreconditionFailed:
        with contextlib.suppress(KeyNotFound):
            blob = store.get(key)
            if blob is not None:
                discard_lost_archive(blob.data)
        raise


@dataclass(frozen=True)
class HistoryLog:
    """A history as read: its records in order and how many lines were not JSON objects."""

    records: list[dict[str, Any]]
    malformed: int


def parse_records(data: bytes) -> HistoryLog:
    records: list[dict[str, Any]] = []
    malformed = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            malformed += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            malformed += 1
    return HistoryLog(records, malformed)


def read_records(store: Store, key: str) -> HistoryLog:
    """All records of a history (empty when it does not exist yet)."""
    try:
        blob = store.get(key)
    except KeyNotFound:
        return HistoryLog([], 0)
    assert blob is not None
    return parse_records(blob.data)


def mark_deleted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copy of ``records`` where each ``published`` record a later ``deleted`` record names
    carries that ``deleted_at`` (a version re-published after a delete stays unmarked)."""
    out: list[dict[str, Any]] = []
    pending: dict[tuple[Any, Any], Any] = {}
    for record in reversed(records):
        key = (record.get("model"), record.get("version"))
        if record.get("event") == "deleted":
            pending[key] = record.get("deleted_at")
        elif record.get("event") == "published" and key in pending:
            record = {**record, "deleted_at": pending.pop(key)}
        out.append(record)
    out.reverse()
    return out


def versions_named(records: Iterable[dict[str, Any]], model: str) -> set[str]:
    """The versions of ``model`` that ``published`` or ``deleted`` training records name.

    A version number, once used, is never handed out again: warm runtimes cache models by
    (model, version), so a re-used number could keep serving the deleted model.
    """
    named: set[str] = set()
    for record in records:
        if record.get("model") != model or record.get("event") not in ("published", "deleted"):
            continue
        try:
            named.add(str(Version.parse(str(record.get("version")))))
        except ValueError:
            continue  # not a version this store could hold; nothing to reserve
    return named
