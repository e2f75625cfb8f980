"""Capture: one JSON record per scored row, handed to a sink without blocking the answer.

The record (its ``kind`` and ``v`` are ``layout.CAPTURE_KIND`` and ``CAPTURE_VERSION``, from
``layout.json``) is the contract issue 12's monitor reads::

    {"kind": "capture", "v": 1, "time": "2026-12-01T22:29:14.123456Z",
     "request_id": "abc-0", "source": "api" | "batch" | "direct",
     "ticker": "SMH", "signal": "strategy", "timeframe": null,
     "model": "etfs/SMH", "version": "1.0.1", "alias": "production",
     "role": "champion" | "canary", "task": "classification" | "regression",
     "features": {"rsi_14": 61.2, "iv_rank": null},
     "window": {"rows": 60, "sha256": "..."},        (sequence models, 2-D observations)
     "output": {"label": ..., "probabilities": {...}} | {"value": 0.0123},
     "challengers": [{"alias", "version", "output", "latency_us"} | {"alias", "error"}],
     "latency_us": 123,
     "warnings": [{"feature", "code", "value", "range"}]}

``warnings`` is the answer's own (issue 21): present when the answering version has feature
ranges (``[]`` for a row like its reference), absent when it has none.

A window's record keeps its newest row as ``features`` (drift is judged on it) and the
window's digest (``serving.windows.window_digest``), so a record stays a few KiB however long
the window. Network answers add to ``output``: a discrete policy's ``action`` (its index) and a
box policy's ``action`` (its first dimension is the ``value`` monitored), a regressor's named
``values`` (the first is the ``value``), a critic's ``critic_value``.

Sinks: in the Lambda, ``LogSink`` prints each record as its own log line (CloudWatch Logs →
Firehose → the capture bucket; no I/O on the request path beyond the log write every
invocation already does); under ``tickerserve serve`` a buffered writer puts them into the
store. Records are serialized with orjson (about 2 µs a record against about 22 µs for the
standard ``json`` module: the budget for capture is 10 µs per prediction).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import orjson

from tickerserve.contract import DEFAULT_SIGNAL
from tickerserve.layout import CAPTURE_KIND, CAPTURE_VERSION
from tickerserve.metric_names import PREDICTION
from tickerserve.serving.windows import WindowSchema, window_digest
from tickerserve.storage.registry import Resolved

logger = logging.getLogger(__name__)

SOURCES = ("api", "batch", "direct")
ROLES = ("champion", "canary")
# NaN (a missing feature) becomes null; datetimes become ISO 8601 with a "Z". Values are
# Python numbers already (``tolist``), so numpy serialization is not needed.
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE


class CaptureSink(Protocol):
    """Where serialized records go: ``data`` is one or more whole JSON lines."""

    def write(self, data: bytes) -> None: ...


class LogSink:
    """One log line per record on the process's stdout (file descriptor 1), which the Lambda
    runtime sends to CloudWatch Logs as one log event per line; the subscription filter picks
    them out by ``kind``.

    Written with ``os.write``, not through ``sys.stdout``: half the cost, and a write of whole
    lines up to ``PIPE_BUF`` (4 KiB) bytes is atomic on a pipe, so no other writer's output can
    land inside a record. A longer record (hundreds of features) is written in one call too;
    only a log line printed by another thread at that very moment could split it.
    """

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd

    def write(self, data: bytes) -> None:
        written = os.write(self.fd, data)
        if written < len(data):  # a write a signal cut short: the rest, as often as it takes
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(self.fd, view) :]


def output_of(answer: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The task and the ``output`` object of an answer (classification or regression)."""
    probabilities = answer.get("probabilities")
    task = "regression"
    output: dict[str, Any]
    if probabilities is not None:
        task = "classification"
        output = {"label": answer["prediction"], "probabilities": probabilities}
        if "action" in answer:  # a discrete policy
            output["action"] = answer["action"]
    elif "prediction" not in answer:  # a box policy: its action, first dimension monitored
        output = {"value": answer["action"][0], "action": answer["action"]}
    elif isinstance(answer["prediction"], dict):  # named outputs: the first is monitored
        values = answer["prediction"]
        output = {"value": next(iter(values.values())), "values": values}
    else:
        output = {"value": answer["prediction"]}
    if "value" in answer:  # a policy's critic
        output["critic_value"] = answer["value"]
    return task, output


def features_used(names: Sequence[str], row: Any, given: Any = None) -> dict[str, Any]:
    """The feature values as the model consumed them, by name (NaN, i.e. missing → null).

    ``given`` is the request's own features: an object naming exactly the used features is
    already that (the model took every value from it), so it is used as it is.
    """
    if isinstance(given, dict) and len(given) == len(names):
        return given
    return dict(zip(names, row.tolist(), strict=True))


def captured_inputs(
    schema: Any, row: np.ndarray, given: Any = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A record's ``features`` and, for a window, its ``window`` (rows and digest)."""
    if isinstance(schema, WindowSchema):
        return schema.captured(row), {"rows": schema.rows, "sha256": window_digest(row)}
    return features_used(schema.used_names, row, given), None


def new_record(
    *,
    request_id: str,
    source: str,
    ticker: str,
    timeframe: str | None,
    resolved: Resolved,
    role: str,
    answer: dict[str, Any],
    features: dict[str, Any],
    challengers: list[dict[str, Any]],
    latency_us: int,
    time: datetime | None = None,
    signal: str = DEFAULT_SIGNAL,
    window: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A capture record for one scored row (the dict the sink's line is made from)."""
    task, output = output_of(answer)
    record = {
        "kind": CAPTURE_KIND,
        "v": CAPTURE_VERSION,
        "time": time or datetime.now(UTC),
        "request_id": request_id,
        "source": source,
        "ticker": ticker,
        "signal": signal,
        "timeframe": timeframe,
        "model": resolved.model,
        "version": resolved.version,
        "alias": resolved.alias,
        "role": role,
        "task": task,
        "features": features,
        "output": output,
        "challengers": challengers,
        "latency_us": latency_us,
    }
    explanation = answer.get("explanation")
    if explanation is not None:  # the top k the answer carried, as answered
        record["explanation"] = explanation
    if window is not None:
        record["window"] = window
    warnings = answer.get("warnings")
    if warnings is not None:  # as answered: the version has ranges
        record["warnings"] = warnings
    return record


def dumps(record: dict[str, Any]) -> bytes:
    """One record as a JSON line (with its trailing newline)."""
    return orjson.dumps(record, option=_OPTIONS)


class Capture:
    """Serializes records and hands them to the sink. Never raises: a failing sink is logged
    (once per minute at most) and counted, and the answer goes out as if nothing happened."""

    def __init__(
        self,
        sink: CaptureSink | None,
        *,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.sink = sink
        self.enabled = sink is not None
        self.records = 0  # counters for /health and tests (updated without a lock: a
        self.failures = 0  # Lambda sandbox runs one request at a time)
        self._on_event = on_event or (lambda name: None)
        self._last_warning = 0.0

    def emit(self, records: Sequence[dict[str, Any]]) -> None:
        sink = self.sink
        if sink is None or not records:
            return
        try:
            if len(records) == 1:
                sink.write(orjson.dumps(records[0], option=_OPTIONS))
            else:
                sink.write(b"".join([orjson.dumps(r, option=_OPTIONS) for r in records]))
        except Exception as exc:  # capture must never fail a request
            self._failed(len(records), exc)
            return
        self.records += len(records)

    def _failed(self, count: int, exc: Exception) -> None:
        self.failures += count
        now = datetime.now(UTC).timestamp()
        warn = now - self._last_warning >= 60.0
        if warn:
            self._last_warning = now
        self._on_event(PREDICTION.capture_failures)
        if warn:
            logger.warning("capture failed for %d record(s): %s", count, exc)


DISABLED = Capture(None)
