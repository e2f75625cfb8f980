"""Section 8b: reading 250,000 outcomes back, as the monitor does every day.

Outcomes are stored one JSON-lines object per received batch (``POST /outcomes`` or a
1,000-line chunk of ``outcomes add``). The baseline is one object per outcome, how they were
stored before: the same reader (``tickerserve.storage.outcomes.latest_outcomes``, 16 objects
at a time) on both layouts, in a local folder and on the moto server. The per-outcome layout is
timed on fewer outcomes and scaled to 250,000 (its time grows with the number of objects); both
layouts hold the same outcomes.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench.common import say, table

OUTCOMES = 250_000
RECEIVED = datetime(2026, 12, 2, 8, tzinfo=UTC)
# A week of days received, as the monitor reads it.
SINCE, UNTIL = date(2026, 11, 26), date(2026, 12, 3)
LABELS = ("IRON_CONDOR", "BULL_PUT_SPREAD", "BEAR_CALL_SPREAD", "LONG_STRADDLE")


def _item(i: int) -> dict[str, Any]:
    return {"request_id": f"req-{i}", "label": LABELS[i % 4], "observed_at": "2026-12-01T21:00Z"}


def write_batches(store: Any, n: int) -> None:
    """``n`` outcomes as ``POST /outcomes`` stores them: one object per 1,000."""
    from tickerserve.storage.outcomes import MAX_ITEMS, store_outcomes

    def chunk(start: int) -> None:
        items = [_item(i) for i in range(start, min(start + MAX_ITEMS, n))]
        if store_outcomes(store, items, now=RECEIVED)["failed"]:
            raise RuntimeError("outcomes bench: a batch was not stored")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(chunk, range(0, n, MAX_ITEMS)))


def write_one_each(store: Any, n: int) -> None:
    """``n`` outcomes one object each, keyed by request id and content (the former layout)."""
    from tickerserve.layout import OUTCOMES_PREFIX, partition_prefix
    from tickerserve.storage.outcomes import parse_outcome, utc_timestamp

    stamp = utc_timestamp(RECEIVED)

    def put(i: int) -> None:
        outcome = parse_outcome(_item(i), received_at=stamp)
        rid = hashlib.sha256(outcome.request_id.encode()).hexdigest()[:32]
        body = json.dumps(outcome.to_dict(), separators=(",", ":")).encode()
        digest = hashlib.sha256(body).hexdigest()[:16]
        day = partition_prefix(OUTCOMES_PREFIX, stamp[:10])
        store.put(f"{day}{rid}-{digest}.json", body, create_only=True)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(n)))


def _read(store: Any) -> tuple[float, int]:
    from tickerserve.storage.outcomes import latest_outcomes

    started = time.perf_counter()
    found = len(latest_outcomes(store, since=SINCE, until=UNTIL))
    return time.perf_counter() - started, found


def outcomes_section(*, endpoint: str, one_each_local: int, one_each_s3: int) -> dict[str, Any]:
    """Read times (s, scaled to 250,000 outcomes) per layout and store."""
    import boto3

    from tickerserve.storage.store import PUBLISHING, LocalStore, S3Store

    client = boto3.client("s3", endpoint_url=endpoint)
    work = Path(tempfile.mkdtemp(prefix="outcomes-bench-"))
    stores: dict[str, Callable[[str], Any]] = {
        "local folder": lambda name: LocalStore(work / name),
        "moto S3": lambda name: _bucket(client, S3Store, PUBLISHING, name),
    }
    sizes = {"local folder": one_each_local, "moto S3": one_each_s3}
    rows, result = [], {}
    for where, make in stores.items():
        batched, single = make("outcomes-batched"), make("outcomes-one-each")
        write_batches(batched, OUTCOMES)
        write_one_each(single, sizes[where])
        took, found = _read(batched)
        assert found == OUTCOMES, found
        took_single, found_single = _read(single)
        assert found_single == sizes[where], found_single
        scaled = took_single * OUTCOMES / sizes[where]
        result[where] = {"batched_s": took, "one_each_s": scaled}
        rows += [
            [where, "one object per batch of 1,000", f"{OUTCOMES // 1000:,}", f"{OUTCOMES:,}",
             f"{took:.2f}", f"{took:.2f}", "1x"],
            ["", "one object per outcome (before)", f"{sizes[where]:,}", f"{sizes[where]:,}",
             f"{took_single:.2f}", f"{scaled:.1f}", f"{scaled / took:.0f}x"],
        ]  # fmt: skip
    say()
    say(
        table(
            "8b. Reading a week of outcomes back (latest_outcomes, 16 objects at a time; s)",
            ["store", "layout", "objects", "outcomes", "read", f"per {OUTCOMES:,}", "vs batched"],
            rows,
        )
    )
    say(
        f"   'per {OUTCOMES:,}' scales the one-object-per-outcome read linearly (a lower bound: "
        f"listing grows too). On S3 each\n   GET is also $0.0004 per 1,000: "
        f"{OUTCOMES // 1000:,} GETs a run instead of {OUTCOMES:,}."
    )
    return result


def _bucket(client: Any, s3_store: Any, timeouts: Any, name: str) -> Any:
    client.create_bucket(Bucket=name)
    return s3_store(name, client=client, timeouts=timeouts)
