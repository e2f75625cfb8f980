"""Outcomes joined to captured rows by request id: only the ids that were served are kept
(never-served ones cost nothing), keys are salted, the latest label and the latest value of an
id are kept apart (a value never erases a label) and a correction is known as one."""

from __future__ import annotations

import tracemalloc
from datetime import date
from pathlib import Path

import numpy as np

from tests.monitor_support import write_outcomes
from tickerserve.monitor.capture_reader import ReadCounts
from tickerserve.monitor.outcome_join import (
    NO_KEY,
    KeyHasher,
    OutcomeIndex,
    in_sample,
    latest_outcomes,
)
from tickerserve.storage.outcomes import Outcome
from tickerserve.storage.store import LocalStore

HASHER = KeyHasher(b"a secret salt of the store, 32 b")


def outcome(rid: str, label: str | None = None, value: float | None = None,
            received: str = "2026-12-01T10:00:00Z") -> Outcome:  # fmt: skip
    return Outcome(rid, label, value, None, received)


def served(*ids: str) -> np.ndarray:
    return np.unique(HASHER.keys(list(ids)))


def labels_of(index: OutcomeIndex, *ids: str) -> list[str | None]:
    found, codes, _ = index.labels_for(HASHER.keys(list(ids)))
    return [index.labels[c] if f else None for f, c in zip(found, codes, strict=True)]


def test_only_outcomes_of_served_ids_are_kept():
    index = OutcomeIndex.build(
        [outcome("a", "UP"), outcome("never", "DOWN"), outcome("c", value=0.25),
         outcome("d", "UP")],
        HASHER, served("a", "c", "d", "quiet"),
    )  # fmt: skip
    assert labels_of(index, "d", "never", "c", "a") == ["UP", None, None, "UP"]
    found, values, _ = index.values_for(HASHER.keys(["c", "a"]))
    assert found.tolist() == [True, False] and values[0] == 0.25
    assert (len(index), index.kept, index.ignored) == (3, 3, 1)


def test_the_latest_received_label_wins_and_the_id_is_marked_corrected():
    index = OutcomeIndex.build([
        outcome("a", "UP", received="2026-12-01T10:00:00Z"),
        outcome("a", "DOWN", received="2026-12-03T10:00:00Z"),
        outcome("a", "FLAT", received="2026-12-02T10:00:00Z"),
        outcome("b", "UP", received="2026-12-01T10:00:00Z"),
        outcome("b", "DOWN", received="2026-12-01T10:00:00Z"),  # a tie: the later read wins
        outcome("c", "UP"), outcome("c", "UP"),  # the same outcome twice is no correction
    ], HASHER, served("a", "b", "c"))  # fmt: skip
    assert labels_of(index, "a", "b", "c") == ["DOWN", "DOWN", "UP"]
    _, _, corrected = index.labels_for(HASHER.keys(["a", "b", "c"]))
    assert corrected.tolist() == [True, True, False]


def test_a_value_sent_for_a_labelled_id_never_erases_its_label():
    # Given a classifier's honest label, then a value for the same id received later
    index = OutcomeIndex.build(
        [outcome("a", "UP", received="2026-12-01T10:00:00Z"),
         outcome("a", value=0.0, received="2026-12-02T10:00:00Z")],
        HASHER, served("a"),
    )  # fmt: skip
    # Then the label is still the label (a regressor would read the value)
    assert labels_of(index, "a") == ["UP"]
    found, values, _ = index.values_for(HASHER.keys(["a"]))
    assert found.tolist() == [True] and values.tolist() == [0.0]


def test_corrections_are_known_across_the_merges_of_a_long_stream():
    # Given more outcomes than one merge holds, the first and the last for the same id
    ids = [f"id-{i}" for i in range(3000)]
    stream = [outcome(r, "UP") for r in ids] * 30 + [
        outcome("id-7", "DOWN", received="2026-12-09T00:00:00Z")
    ]
    index = OutcomeIndex.build(stream, HASHER, served(*ids))
    assert labels_of(index, "id-7", "id-8") == ["DOWN", "UP"]
    _, _, corrected = index.labels_for(HASHER.keys(["id-7", "id-8"]))
    assert corrected.tolist() == [True, False]


def test_never_served_outcomes_cost_no_memory():
    # Given 200 served ids, and 200 or 200,000 outcomes for ids that were never served
    wanted = served(*(f"served-{i}" for i in range(200)))

    def peak(flood: int) -> tuple[int, OutcomeIndex]:
        outcomes = (outcome(f"flood-{i}", "UP") for i in range(flood))
        tracemalloc.start()
        index = OutcomeIndex.build(outcomes, HASHER, wanted)
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size, index

    small, _ = peak(200)
    large, index = peak(200_000)
    # Then a thousand times the flood leaves nothing in the index, and memory stays within
    # one batch's working set of the small run's
    assert (len(index), index.ignored) == (0, 200_000)
    assert large < small + 64 * 1024 * 1024 and large < 3 * max(small, 8 * 1024 * 1024)


def test_keys_depend_on_the_secret_salt_and_samples_cannot_be_chosen():
    ids = [f"order-{i}" for i in range(4000)]
    mine, theirs = KeyHasher(b"salt one, sixteen+"), KeyHasher(b"salt two, sixteen+")
    assert mine.key("order-1") == mine.key("order-1") != theirs.key("order-1")
    assert 0 < mine.key("x") < 2**64
    # Which ids fall in a 1/8 sample differs with the salt: an attacker without it cannot
    # pick ids that stay in
    in_mine = set(np.flatnonzero(in_sample(mine.keys(ids), 3)).tolist())
    in_theirs = set(np.flatnonzero(in_sample(theirs.keys(ids), 3)).tolist())
    assert abs(len(in_mine) - 500) < 100 and len(in_mine & in_theirs) < 150
    assert mine.keys(["ok", None, 7, "", "\ud800"]).tolist()[1:] == [NO_KEY] * 4


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
