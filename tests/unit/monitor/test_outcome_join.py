"""Outcomes joined to captured rows by request id: the latest received outcome per id wins,
labels and values come back for exactly the ids that have one, and past its capacity the
index keeps a deterministic sample that captured rows are joined against too."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from tests.monitor_support import write_outcomes
from tickerserve.monitor.capture_reader import ReadCounts
from tickerserve.monitor.outcome_join import (
    NO_LABEL,
    OutcomeIndex,
    latest_outcomes,
    request_key,
)
from tickerserve.storage.outcomes import Outcome
from tickerserve.storage.store import LocalStore


def outcome(rid: str, label: str | None = None, value: float | None = None,
            received: str = "2026-12-01T10:00:00Z") -> Outcome:  # fmt: skip
    return Outcome(rid, label, value, None, received)


def test_lookup_finds_labels_and_values_by_request_id():
    index = OutcomeIndex.build(
        [outcome("a", "UP"), outcome("b", "DOWN"), outcome("c", value=0.25), outcome("d", "UP")]
    )
    sampled, found, codes, values = index.lookup(["d", "zz", "c", "a", None, 7])
    assert sampled.all()
    assert found.tolist() == [True, False, True, True, False, False]
    assert [index.labels[c] if c != NO_LABEL else None for c in codes] == [
        "UP", None, None, "UP", None, None,
    ]  # fmt: skip
    assert values[2] == 0.25 and np.isnan(values[0]) and np.isnan(values[1])
    assert len(index) == 4 and index.sample_rate == 1.0


def test_the_latest_received_outcome_corrects_earlier_ones():
    index = OutcomeIndex.build([
        outcome("a", "UP", received="2026-12-01T10:00:00Z"),
        outcome("a", "DOWN", received="2026-12-03T10:00:00Z"),
        outcome("a", "FLAT", received="2026-12-02T10:00:00Z"),
        outcome("b", "UP", received="2026-12-01T10:00:00Z"),
        outcome("b", "DOWN", received="2026-12-01T10:00:00Z"),  # a tie: the later read wins
    ])  # fmt: skip
    _, found, codes, _ = index.lookup(["a", "b"])
    assert found.all()
    assert [index.labels[c] for c in codes] == ["DOWN", "DOWN"]
    assert len(index) == 2


def test_past_capacity_a_deterministic_sample_is_kept_and_lookups_agree():
    ids = [f"req-{i}" for i in range(5000)]
    index = OutcomeIndex.build((outcome(r, "UP") for r in ids), capacity=1000)
    assert len(index) <= 1000 and index.sample_bits >= 3
    assert index.sample_rate == 1 / (1 << index.sample_bits)
    sampled, found, _, _ = index.lookup(ids)
    # every sampled id has its outcome; no id outside the sample does
    assert (found == sampled).all()
    assert abs(int(sampled.sum()) - 5000 * index.sample_rate) < 5000 * index.sample_rate * 0.3
    again = OutcomeIndex.build((outcome(r, "UP") for r in reversed(ids)), capacity=1000)
    assert again.keys.tolist() == index.keys.tolist()


def test_request_keys_are_stable_64_bit_numbers():
    assert request_key("order-1") == request_key("order-1") != request_key("order-2")
    assert 0 <= request_key("x") < 2**64


def test_outcomes_of_the_window_are_read_from_the_store(tmp_path: Path):
    store = LocalStore(tmp_path)
    write_outcomes(store, [{"request_id": "a", "label": "UP"}], date(2026, 11, 30))
    write_outcomes(store, [{"request_id": "b", "label": "UP"}, {"request_id": "c", "value": 1.5}],
                   date(2026, 12, 1))  # fmt: skip
    store.put("outcomes/dt=2026-12-01/zz.jsonl", b"not json\n")
    counts = ReadCounts()
    read = list(latest_outcomes(store, date(2026, 12, 1), date(2026, 12, 2), counts))
    assert [(o.request_id, o.label, o.value) for o in read] == [("b", "UP", None), ("c", None, 1.5)]
    assert (counts.objects, counts.malformed) == (2, 1)
