"""Outcomes: realized results, joined to captured predictions by ``request_id``.

One object per batch received (a ``POST /outcomes`` call, or a chunk of at most 1,000 lines
of ``tickerserve outcomes add``), JSON lines, under the day it was received::

    outcomes/dt=2026-12-02/{sha256(normalized content)[:32]}.jsonl
    {"request_id":"abc-0","label":"IRON_CONDOR","observed_at":"2026-12-01T21:00:00.000000Z",
     "received_at":"2026-12-02T08:15:30.123456Z"}
    {"request_id":"abc-1","value":0.0123,"observed_at":null,"received_at":"..."}

Batches, not one object per outcome: the monitor reads a week of outcomes every day, and
250,000 outcomes as 250,000 objects would be 250,000 GETs a run (minutes, and dollars); as
batches they are a few hundred.

The key hashes the batch's normalized content (each valid item's request id, label or value
and observed_at, in order; not ``received_at``) and is written create-only, so re-sending the
same batch on the same day changes nothing. The same outcome inside another batch is a
duplicate the reader folds; a different label or value for a request id is a correction:
``latest_outcomes`` returns the latest received (within one batch, the later line), and the
earlier ones stay in the store.

Every item is checked on its own, and nothing an item holds can fail the others: text must be
valid UTF-8 (no lone surrogates), a value a finite number within float range, and
``observed_at`` a time between 1970 and a day after the outcome was received (an outcome is
observed before it is reported; the day absorbs clock skew). Reading is as forgiving: a line
that is not an outcome is skipped and counted by its reason (``SKIP_REASONS``).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import math
import re
import zlib
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from tickerserve.contract import LIMITS, OUTCOME
from tickerserve.errors import BadRequest, PayloadTooLarge, TickerserveError
from tickerserve.layout import OUTCOMES_PREFIX, partition_prefix, validate_key
from tickerserve.storage.store import KeyNotFound, ObjectInfo, PreconditionFailed, Store

# The item's shape and limits are contract.json's (requests.outcomes), as the OpenAPI document's.
MAX_ITEMS = LIMITS.outcome_items  # per POST /outcomes (the CLI sends files in chunks this size)
FIELDS = frozenset(OUTCOME.fields)
_REQUEST_ID = OUTCOME.fields["request_id"]
MAX_LABEL = next(
    option["maxLength"]
    for option in (OUTCOME.fields["label"].schema or {})["anyOf"]
    if option.get("type") == "string"
)
KEY_SUFFIX = ".jsonl"
CONTENT_TYPE = "application/x-ndjson"
READ_THREADS = 16
# Objects read ahead of the consumer: keeps the pool busy while memory stays bounded (an
# object holds at most 1,000 outcomes).
READ_AHEAD = 4 * READ_THREADS
# Up to this many days, a reader lists each day's prefix; a longer or open range lists the
# whole prefix once.
DAY_LISTINGS = 62
# received_at as this module writes it: compared as a string, so only this spelling is taken
# as is (any other is parsed and written this way first).
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_DAY_LENGTH = len("YYYY-MM-DD")
_LINE = orjson.OPT_APPEND_NEWLINE
# The range an outcome's observed_at may fall in: from the epoch to a day after it was received.
EARLIEST_OBSERVED = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)
# Why a stored line was not read as an outcome (the reader's counts are keyed by these).
NOT_JSON = "not_json"  # not JSON (or not UTF-8), or an object that is not gzip it claims to be
NOT_AN_OUTCOME = "not_an_outcome"  # JSON, but not an outcome: fields missing or of wrong types
INVALID_TIME = "invalid_time"  # a received_at that is no time, or out of range
SKIP_REASONS = (NOT_JSON, NOT_AN_OUTCOME, INVALID_TIME)


@dataclass(frozen=True, slots=True)
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

    def content(self) -> bytes:
        """What makes two sendings the same outcome (``received_at`` does not count)."""
        return orjson.dumps([self.request_id, self.label, self.value, self.observed_at])


def batch_key(outcomes: Sequence[Outcome], day: str) -> str:
    """The object key of a batch: the day received and the hash of its normalized content."""
    digest = hashlib.sha256(b"\n".join(o.content() for o in outcomes)).hexdigest()
    return validate_key(f"{partition_prefix(OUTCOMES_PREFIX, day)}{digest[:32]}{KEY_SUFFIX}")


def utc_timestamp(moment: datetime | None = None) -> str:
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_outcome(raw: Any, *, received_at: str) -> Outcome:
    """Validate one item of ``{"outcomes": [...]}``; a mistake is a ``BadRequest`` naming it.
    Never any other exception, whatever the item holds."""
    if not isinstance(raw, dict):
        raise BadRequest("an outcome must be a JSON object", code="invalid_outcome")
    unknown = sorted(str(k)[:40] for k in raw if k not in FIELDS)
    if unknown:
        raise BadRequest(
            f"unknown field(s): {', '.join(map(ascii, unknown[:10]))}; expected request_id, "
            "label or value, observed_at",
            code="unknown_fields",
        )
    for name in OUTCOME.required:
        if name not in raw:
            raise BadRequest(f"missing field: {name}", code="missing_field")
    assert _REQUEST_ID.name_rule is not None
    try:
        request_id = _REQUEST_ID.name_rule.check(raw["request_id"])
    except ValueError as exc:
        raise BadRequest(str(exc), code=_REQUEST_ID.invalid_code) from None
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
        if not _is_utf8(label):
            raise BadRequest(
                "label must be valid UTF-8 text (it holds a lone surrogate)",
                code="invalid_label",
            )
    else:
        value = finite_float(raw["value"])
        if value is None:
            raise BadRequest(
                "value must be a finite number within the range of a 64-bit float",
                code="invalid_value",
            )
    observed_at = _observed_at(raw.get("observed_at"), received_at)
    return Outcome(request_id, label, value, observed_at, received_at)


def finite_float(number: Any) -> float | None:
    """``number`` as a finite float, or None: not a number (``true`` is none), not finite, or
    an integer beyond float range (a 400-digit integer)."""
    if type(number) not in (int, float):
        return None
    try:
        value = float(number)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _observed_at(raw: Any, received_at: str) -> str | None:
    if raw is None:
        return None
    moment = parse_time(raw)
    if moment is None:
        raise BadRequest(
            "observed_at must be an ISO 8601 date or time, e.g. 2026-12-01T21:00:00Z",
            code="invalid_observed_at",
        )
    latest = datetime.fromisoformat(received_at.replace("Z", "+00:00")) + CLOCK_SKEW
    if not EARLIEST_OBSERVED <= moment <= latest:
        raise BadRequest(
            f"observed_at {utc_timestamp(moment)} is outside {EARLIEST_OBSERVED.date()} .. "
            f"{latest.date()}: an outcome is observed before it is reported",
            code="invalid_observed_at",
        )
    return utc_timestamp(moment)


def parse_time(raw: Any) -> datetime | None:
    """An ISO 8601 date or time as an aware UTC datetime (no offset: UTC), or None when it is
    none, or when it falls outside what a datetime holds once moved to UTC (year 1, +01:00)."""
    if not isinstance(raw, str) or len(raw) > 40:
        return None
    try:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:  # a time without an offset is taken as UTC
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


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
    """Validate each item and write the valid ones as one object; per-item results
    (``stored``, ``unchanged`` or an error) and counts. A malformed item never stops the
    others; the object is written whole or not at all (create-only)."""
    received_at = utc_timestamp(now)
    results: list[dict[str, Any]] = [{} for _ in items]
    valid: list[tuple[int, Outcome]] = []
    for index, raw in enumerate(items):
        try:
            valid.append((index, parse_outcome(raw, received_at=received_at)))
        except TickerserveError as exc:
            results[index] = {"index": index, **exc.to_body()}
    if valid:
        written = _write_batch(store, [outcome for _, outcome in valid], received_at)
        for index, outcome in valid:
            results[index] = {"index": index, "request_id": outcome.request_id, **written}
    counts = {"stored": 0, "unchanged": 0, "failed": 0}
    for result in results:
        counts[result.get("status", "failed")] += 1
    return {"results": results, **counts}


def _write_batch(store: Store, outcomes: list[Outcome], received_at: str) -> dict[str, Any]:
    """``{"status": "stored" | "unchanged"}``, or the storage error every item gets."""
    key = batch_key(outcomes, received_at[:_DAY_LENGTH])
    data = b"".join(orjson.dumps(o.to_dict(), option=_LINE) for o in outcomes)
    try:
        store.put(key, data, create_only=True, content_type=CONTENT_TYPE)
    except PreconditionFailed:
        return {"status": "unchanged"}  # the same batch was received today already
    except TickerserveError as exc:
        return exc.to_body()
    return {"status": "stored"}


def receive(store: Store, body: Any) -> tuple[dict[str, Any], int]:
    """Answer a ``POST /outcomes`` body: per-item results, and 503 when the store failed the
    write (re-sending the whole request is safe: a stored batch comes back ``unchanged``)."""
    answer = store_outcomes(store, parse_body(body))
    failed_storage = any(
        r.get("error", {}).get("code") == "storage_unavailable" for r in answer["results"]
    )
    return answer, 503 if failed_storage else 200


# -- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutcomeObject:
    """One stored object's outcomes, in line order, and how many of its lines were not, by
    reason (``SKIP_REASONS``)."""

    key: str
    outcomes: list[Outcome]
    lines: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def malformed(self) -> int:
        return sum(self.skipped.values())


def read_outcome_objects(
    store: Store,
    *,
    since: date | None = None,
    until: date | None = None,
    threads: int = READ_THREADS,
) -> Iterator[OutcomeObject]:
    """Every outcome object received on the days of ``[since, until)`` (all days by default),
    in key order (so by day), read ``threads`` at a time a bounded distance ahead of the
    consumer. Lines that are not outcomes are counted, not raised; a storage error is."""
    listed = iter(outcome_objects(store, since, until))
    pending: deque[Future[OutcomeObject | None]] = deque()
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="outcomes")
    try:
        for info in itertools.islice(listed, READ_AHEAD):
            pending.append(pool.submit(_read_object, store, info.key, info.size))
        while pending:
            read = pending.popleft().result()
            following = next(listed, None)
            if following is not None:
                pending.append(pool.submit(_read_object, store, following.key, following.size))
            if read is not None:
                yield read
    finally:
        # A consumer that stops early leaves no reads queued (the running ones finish).
        pool.shutdown(wait=False, cancel_futures=True)


def outcome_objects(store: Store, since: date | None, until: date | None) -> list[ObjectInfo]:
    """The objects under the day partitions of ``[since, until)``, in key order, with their
    listed sizes (a read is granted the time its listed size needs, never what a server
    claims)."""
    if since is not None and until is not None and (until - since).days <= DAY_LISTINGS:
        listed: list[ObjectInfo] = []
        day = since
        while day < until:
            listed.extend(store.list(partition_prefix(OUTCOMES_PREFIX, day.isoformat())))
            day += timedelta(days=1)
        return sorted(listed, key=lambda info: info.key)
    low = None if since is None else since.isoformat()
    high = None if until is None else until.isoformat()
    start = len(partition_prefix(OUTCOMES_PREFIX))
    return sorted(
        (
            info
            for info in store.list(partition_prefix(OUTCOMES_PREFIX))
            if (low is None or info.key[start : start + _DAY_LENGTH] >= low)
            and (high is None or info.key[start : start + _DAY_LENGTH] < high)
        ),
        key=lambda info: info.key,
    )


def _read_object(store: Store, key: str, size: int | None = None) -> OutcomeObject | None:
    try:
        blob = store.get(key, size=size)
    except KeyNotFound:
        return None  # gone since it was listed
    assert blob is not None
    data = blob.data
    if data[:2] == b"\x1f\x8b":  # a gzip file put there by hand is read too
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return OutcomeObject(key, [], 1, {NOT_JSON: 1})
    # An object without received_at lines (written by hand) counts as received at midnight.
    start = len(partition_prefix(OUTCOMES_PREFIX))
    midnight = f"{key[start : start + _DAY_LENGTH]}T00:00:00.000000Z"
    outcomes: list[Outcome] = []
    skipped: dict[str, int] = {}
    lines = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        lines += 1
        try:
            raw = orjson.loads(line)  # invalid UTF-8 and lone surrogates fail here too
        except orjson.JSONDecodeError:
            skipped[NOT_JSON] = skipped.get(NOT_JSON, 0) + 1
            continue
        outcome = _stored_outcome(raw, midnight)
        if isinstance(outcome, Outcome):
            outcomes.append(outcome)
        else:
            skipped[outcome] = skipped.get(outcome, 0) + 1
    return OutcomeObject(key, outcomes, lines, skipped)


def _stored_outcome(raw: Any, midnight: str) -> Outcome | str:
    """An outcome line as stored, or why it is none (a ``SKIP_REASONS`` entry). Lenient about
    what a hand-written file may hold (a numeric label, no observed_at or received_at, another
    ISO 8601 spelling); never raises, whatever the line holds."""
    if not isinstance(raw, dict):
        return NOT_AN_OUTCOME
    request_id, label, value = raw.get("request_id"), raw.get("label"), raw.get("value")
    if not isinstance(request_id, str) or not request_id or (label is None) == (value is None):
        return NOT_AN_OUTCOME
    number = None
    if label is not None:
        if isinstance(label, bool) or not isinstance(label, str | int):
            return NOT_AN_OUTCOME
        label = str(label)
    else:
        number = finite_float(value)
        if number is None:
            return NOT_AN_OUTCOME
    received_at = raw.get("received_at")
    if received_at is None:
        received_at = midnight
    elif not (isinstance(received_at, str) and _STAMP.fullmatch(received_at)):
        moment = parse_time(received_at)
        if moment is None or moment < EARLIEST_OBSERVED:
            return INVALID_TIME
        received_at = utc_timestamp(moment)
    observed = parse_time(raw.get("observed_at"))
    return Outcome(
        request_id,
        label,
        number,
        None if observed is None else utc_timestamp(observed),
        received_at,
    )


def latest_outcomes(
    store: Store,
    *,
    since: date | None = None,
    until: date | None = None,
    request_ids: Collection[str] | None = None,
    on_malformed: Callable[[str, int], None] | None = None,
) -> dict[str, Outcome]:
    """The latest received outcome per request id, for outcomes received on days in
    ``[since, until)`` (all days by default), optionally only for ``request_ids``.

    Objects are read in parallel and folded as they arrive; lines that are not outcomes are
    skipped (``on_malformed`` gets each such object's key and how many lines it skipped).
    """
    wanted = None if request_ids is None else set(request_ids)
    latest: dict[str, Outcome] = {}
    for read in read_outcome_objects(store, since=since, until=until):
        if read.malformed and on_malformed is not None:
            on_malformed(read.key, read.malformed)
        for outcome in read.outcomes:
            if wanted is not None and outcome.request_id not in wanted:
                continue
            current = latest.get(outcome.request_id)
            # On a tie the one read later wins: within a batch, the later line.
            if current is None or outcome.received_at >= current.received_at:
                latest[outcome.request_id] = outcome
    return latest
