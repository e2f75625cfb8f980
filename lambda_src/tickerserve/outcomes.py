"""Outcomes: realized results, joined to captured predictions by ``request_id``.

One object per request id and content, under the date it was received::

    outcomes/dt=2026-12-02/{sha256(request_id)[:32]}-{sha256(content)[:16]}.json
    {"request_id": "abc-0", "label": "IRON_CONDOR" | "value": 0.0123,
     "observed_at": "2026-12-01T21:00:00Z" | null, "received_at": "2026-12-02T08:15:30.123456Z"}

Writes are create-only: re-sending the same outcome on the same day finds its object and
changes nothing; a different label or value (or observed_at) for the same request id is a
correction, a new object. ``latest_outcomes`` (the reader issue 12's monitor uses) returns
the latest received outcome per request id; earlier ones stay in the store.

Request ids are hashed in the key: their characters (``:``, ``..``) are not all safe in
object keys, and the key must be fixed-length whatever the id.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tickerserve import request_ids
from tickerserve.errors import BadRequest, PayloadTooLarge, TickerserveError
from tickerserve.layout import OUTCOMES_PREFIX, validate_key
from tickerserve.store import KeyNotFound, PreconditionFailed, Store

MAX_ITEMS = 1000  # per POST /outcomes (the CLI sends files in chunks of this size)
MAX_LABEL = 128
FIELDS = frozenset({"request_id", "label", "value", "observed_at"})
WRITE_THREADS = 16
READ_THREADS = 16
_DAY_LENGTH = len("YYYY-MM-DD")


@dataclass(frozen=True)
class Outcome:
    """A realized result for one request id (``label`` for classifiers, ``value`` for
    regressors); ``received_at`` says which of several for the same id is the latest."""

    request_id: str
    label: str | None
    value: float | None
    observed_at: str | None
    received_at: str

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"request_id": self.request_id}
        if self.label is not None:
            body["label"] = self.label
        else:
            body["value"] = self.value
        body["observed_at"] = self.observed_at
        body["received_at"] = self.received_at
        return body

    @property
    def content_digest(self) -> str:
        """What makes two sendings the same outcome (``received_at`` does not count)."""
        canonical = json.dumps(
            [self.request_id, self.label, self.value, self.observed_at], separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def key(self) -> str:
        """The object key: the day received, the request id's hash, the content's hash."""
        day = self.received_at[:_DAY_LENGTH]
        return validate_key(
            f"{OUTCOMES_PREFIX}dt={day}/{request_key(self.request_id)}-"
            f"{self.content_digest[:16]}.json"
        )


def request_key(request_id: str) -> str:
    """The part of an outcome's key that names its request id."""
    return hashlib.sha256(request_id.encode()).hexdigest()[:32]


def utc_timestamp(moment: datetime | None = None) -> str:
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_outcome(raw: Any, *, received_at: str) -> Outcome:
    """Validate one item of ``{"outcomes": [...]}``; a mistake is a ``BadRequest`` naming it."""
    if not isinstance(raw, dict):
        raise BadRequest("an outcome must be a JSON object", code="invalid_outcome")
    unknown = sorted(str(k)[:40] for k in raw if k not in FIELDS)
    if unknown:
        raise BadRequest(
            f"unknown field(s): {', '.join(unknown[:10])}; expected request_id, label or "
            "value, observed_at",
            code="unknown_fields",
        )
    if "request_id" not in raw:
        raise BadRequest("missing field: request_id", code="missing_field")
    request_id = request_ids.valid(raw["request_id"])
    if request_id is None:
        raise BadRequest(
            "request_id must be 1-128 characters of letters, digits, '.', '_', ':', '-'",
            code="invalid_request_id",
        )
    has_label, has_value = raw.get("label") is not None, raw.get("value") is not None
    if has_label == has_value:
        raise BadRequest(
            "give exactly one of label (classifiers) and value (regressors)",
            code="invalid_outcome",
        )
    label = value = None
    if has_label:
        label = raw["label"]
        if not isinstance(label, str) or not 0 < len(label) <= MAX_LABEL:
            raise BadRequest(
                f"label must be a non-empty string of at most {MAX_LABEL} characters",
                code="invalid_label",
            )
    else:
        number = raw["value"]
        if type(number) not in (int, float) or not math.isfinite(number):
            raise BadRequest("value must be a finite number", code="invalid_value")
        value = float(number)
    observed_at = _timestamp(raw.get("observed_at"))
    return Outcome(request_id, label, value, observed_at, received_at)


def _timestamp(raw: Any) -> str | None:
    if raw is None:
        return None
    try:
        if not isinstance(raw, str) or len(raw) > 40:
            raise ValueError(raw)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            "observed_at must be an ISO 8601 date or time, e.g. 2026-12-01T21:00:00Z",
            code="invalid_observed_at",
        ) from None
    if moment.tzinfo is None:  # a time without an offset is taken as UTC
        moment = moment.replace(tzinfo=UTC)
    return utc_timestamp(moment)


def parse_body(body: Any) -> list[Any]:
    """The item list of a ``POST /outcomes`` body (the items themselves are checked one by one)."""
    if not isinstance(body, dict) or set(body) != {"outcomes"}:
        raise BadRequest('body must be {"outcomes": [...]}', code="invalid_body")
    items = body["outcomes"]
    if not isinstance(items, list) or not items:
        raise BadRequest("outcomes must be a non-empty list", code="invalid_body")
    if len(items) > MAX_ITEMS:
        raise PayloadTooLarge(
            f"{len(items)} outcomes; a request holds at most {MAX_ITEMS}", code="batch_too_large"
        )
    return items


def store_outcomes(
    store: Store, items: Sequence[Any], *, now: datetime | None = None
) -> dict[str, Any]:
    """Validate and write each item; per-item results (``stored``, ``unchanged`` or an error)
    and counts. A malformed item never stops the others; nothing half-written is possible
    (one object per outcome, written create-only)."""
    now = now or datetime.now(UTC)
    results: list[dict[str, Any]] = [{} for _ in items]
    valid: list[tuple[int, Outcome]] = []
    for index, raw in enumerate(items):
        # Items count as received in list order, a microsecond apart: when one request
        # corrects itself (the same id twice), the later item is the latest.
        received_at = utc_timestamp(now + timedelta(microseconds=index))
        try:
            valid.append((index, parse_outcome(raw, received_at=received_at)))
        except TickerserveError as exc:
            results[index] = {"index": index, **exc.to_body()}

    def write(entry: tuple[int, Outcome]) -> tuple[int, dict[str, Any]]:
        index, outcome = entry
        result: dict[str, Any] = {"index": index, "request_id": outcome.request_id}
        try:
            store.put(
                outcome.key(),
                json.dumps(outcome.to_dict(), separators=(",", ":")).encode(),
                create_only=True,
                content_type="application/json",
            )
            result["status"] = "stored"
        except PreconditionFailed:
            result["status"] = "unchanged"  # the same outcome was received today already
        except TickerserveError as exc:
            result.update(exc.to_body())
        return index, result

    if len(valid) <= 1:
        written = [write(entry) for entry in valid]
    else:
        with ThreadPoolExecutor(max_workers=min(WRITE_THREADS, len(valid))) as pool:
            written = list(pool.map(write, valid))
    for index, result in written:
        results[index] = result
    counts = {"stored": 0, "unchanged": 0, "failed": 0}
    for result in results:
        counts[result.get("status", "failed")] += 1
    return {"results": results, **counts}


def receive(store: Store, body: Any) -> tuple[dict[str, Any], int]:
    """Answer a ``POST /outcomes`` body: per-item results, and 503 when the store failed any
    write (re-sending the whole request is safe: stored items come back ``unchanged``)."""
    answer = store_outcomes(store, parse_body(body))
    failed_storage = any(
        r.get("error", {}).get("code") == "storage_unavailable" for r in answer["results"]
    )
    return answer, 503 if failed_storage else 200


def latest_outcomes(
    store: Store,
    *,
    since: date | None = None,
    until: date | None = None,
    request_ids: Collection[str] | None = None,
    on_malformed: Callable[[str], None] | None = None,
) -> dict[str, Outcome]:
    """The latest received outcome per request id, for outcomes received on days in
    ``[since, until)`` (all days by default), optionally only for ``request_ids``.

    Objects that cannot be read as outcomes are skipped (``on_malformed`` gets their key).
    """
    wanted = None if request_ids is None else {request_key(r) for r in request_ids}
    keys = [key for key in _keys(store, since, until) if _wanted(key, wanted)]
    skipped = on_malformed or (lambda key: None)

    def read(key: str) -> Outcome | None:
        try:
            blob = store.get(key)
        except KeyNotFound:
            return None
        assert blob is not None
        try:
            raw = json.loads(blob.data)
            received_at = raw.pop("received_at")
            outcome = parse_outcome(raw, received_at=str(received_at))
        except (ValueError, TypeError, KeyError, AttributeError, BadRequest):
            skipped(key)
            return None
        return outcome

    latest: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        for outcome in pool.map(read, keys):
            if outcome is None:
                continue
            current = latest.get(outcome.request_id)
            if current is None or outcome.received_at > current.received_at:
                latest[outcome.request_id] = outcome
    return latest


def _keys(store: Store, since: date | None, until: date | None) -> Iterable[str]:
    low = None if since is None else since.isoformat()
    high = None if until is None else until.isoformat()
    for info in store.list(f"{OUTCOMES_PREFIX}dt="):
        day = info.key[len(OUTCOMES_PREFIX) + 3 :][:_DAY_LENGTH]
        if (low is None or day >= low) and (high is None or day < high):
            yield info.key


def _wanted(key: str, wanted: set[str] | None) -> bool:
    if wanted is None:
        return True
    name = key.rsplit("/", 1)[-1]
    return name[:32] in wanted
