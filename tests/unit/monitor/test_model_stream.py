"""One model's captured traffic folded into fixed-size tallies, window by window: feature and
output counts on the baseline's bins, each side's performance against the outcomes, the paired
figures of shadow rows and the canary's own; malformed records never raise, and folding often
or once gives the same tallies."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date

import numpy as np
import pytest

from tests.monitor_support import Row, class_output, stamp
from tickerserve.baselines.baseline import Reference, fit_baseline
from tickerserve.monitor.model_stream import ModelStream, Sampler, Subject, first_occurrences
from tickerserve.monitor.outcome_join import KeyHasher, OutcomeIndex
from tickerserve.storage.outcomes import Outcome

DAYS = ["2026-12-01", "2026-12-02"]
CLASSES = ["UP", "DOWN", "FLAT"]
NAMES = ["a", "b"]


def baseline():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 2))
    proba = rng.dirichlet(np.ones(3), 1000)
    return fit_baseline("m/x", "1.0.0", "classification", Reference(NAMES, x, proba),
                        classes=CLASSES)  # fmt: skip


def subject(challenger: str | None = "challenger", task: str = "classification") -> Subject:
    return Subject(
        model="m/x", task=task, champion_alias="production", champion_version="1.0.0",  # type: ignore[arg-type]
        classes=CLASSES if task == "classification" else [], feature_names=NAMES,
        baseline=baseline() if task == "classification" else None,
        challenger_alias=challenger,
        aliases={"production": "1.0.0", "challenger": "1.0.1"},
    )  # fmt: skip


def row(i: int, day: int, label: str, *, features=None, role="champion", version="1.0.0",
        alias="production", challenger: str | None = None) -> dict:  # fmt: skip
    shadow = [] if challenger is None else [
        {"alias": "challenger", "version": "1.0.1", "output": class_output(challenger, CLASSES),
         "latency_us": 10}
    ]  # fmt: skip
    return Row(
        f"r{i}", stamp(date.fromisoformat(DAYS[day]), i), "m/x", version, alias, role,
        "classification", features or {"a": 0.1 * i, "b": None}, class_output(label, CLASSES),
        shadow,
    ).record()  # fmt: skip


HASHER = KeyHasher(b"the store's secret salt, 32 byte")


def stream(**kwargs) -> ModelStream:
    return ModelStream(subject(**kwargs), DAYS, Sampler(HASHER))


def done(s: ModelStream, truths: Mapping[str, str | float]) -> None:
    """Fold what needs no outcome, then judge the evidence against ``truths`` (labels, or
    values) as a run does: each id once, only the outcomes of captured ids."""
    s.fold()
    keys, order = s.evidence_keys()
    s.keep_first(first_occurrences(keys, order))
    outcomes = [
        Outcome(rid, t if isinstance(t, str) else None, t if isinstance(t, float) else None,
                None, "2026-12-03T00:00:00Z")
        for rid, t in truths.items()
    ]  # fmt: skip
    s.judge(OutcomeIndex.build(outcomes, HASHER, np.unique(keys)))


def test_rows_are_counted_per_window_and_rows_outside_the_run_are_dropped():
    s = stream()
    outside = row(9, 0, "UP")
    outside["time"] = "2026-12-05T00:00:00.000000Z"
    assert s.add([row(0, 0, "UP"), row(1, 1, "UP"), row(2, 1, "DOWN"), outside]) == 1
    s.fold()
    assert s.rows.tolist() == [1, 2]
    assert s.output_counts.tolist() == [[1, 0, 0], [1, 1, 0]]


def test_features_are_counted_on_the_baselines_bins_with_a_missing_bin():
    s = stream()
    values = np.random.default_rng(1).normal(size=50)
    s.add([row(i, 0, "UP", features={"a": float(v), "b": None}) for i, v in enumerate(values)])
    s.fold()
    assert s.subject.baseline is not None
    edges = np.asarray(s.subject.baseline.features["a"].edges)
    expected = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    assert s.features["a"].bins[0].tolist() == [*expected.tolist(), 0]
    assert s.features["b"].bins[0, -1] == 50  # every b missing
    assert s.features["a"].bins[1].sum() == 0


def test_each_side_is_scored_against_the_outcomes_and_pairs_counted():
    # Given shadow rows: the champion right on r0, r1; the challenger right on r1, r2
    truths = {"r0": "UP", "r1": "DOWN", "r2": "FLAT", "r3": "UP"}
    s = stream()
    s.add([
        row(0, 0, "UP", challenger="DOWN"), row(1, 0, "DOWN", challenger="DOWN"),
        row(2, 0, "UP", challenger="FLAT"), row(3, 0, "DOWN", challenger="DOWN"),
        row(4, 0, "UP", challenger="UP"),  # no outcome: paired, not scored
    ])  # fmt: skip
    done(s, truths)
    assert s.champion[0].metrics()["accuracy"] == 0.5
    pairs = s.pairs[0]
    assert (pairs.rows, pairs.agree) == (5, 3)
    assert (pairs.champion_only, pairs.challenger_only) == (1, 1)
    assert pairs.challenger.metrics()["accuracy"] == 0.5
    assert (s.champion_rows[0], s.sampled_rows[0]) == (5, 5)


def test_canary_rows_are_the_challengers_own_and_other_versions_are_counted():
    truths = {"r0": "UP", "r1": "UP", "r2": "UP"}
    s = stream()
    s.add([
        row(0, 0, "UP", role="canary", version="1.0.1", alias="challenger"),
        row(1, 0, "DOWN", role="canary", version="1.0.1", alias="challenger"),
        row(2, 0, "UP", version="0.9.0"),  # an old version no alias names any more
    ])  # fmt: skip
    done(s, truths)
    assert s.canary_rows.tolist() == [2, 0]
    assert s.canary[0].metrics()["accuracy"] == 0.5
    assert s.other_versions == 1
    assert s.champion[0].n == 0  # the champion answered none of them


def test_without_a_configured_challenger_the_captures_one_is_adopted():
    s = stream(challenger=None)
    assert s.challenger_version is None
    s.add([row(0, 0, "UP", challenger="DOWN")])
    assert (s.challenger_alias, s.challenger_version) == ("challenger", "1.0.1")


def test_malformed_records_are_judged_as_far_as_they_go_and_never_raise():
    s = stream()
    bad_output = row(1, 0, "UP")
    bad_output["output"] = {"label": ["UP"], "probabilities": {"UP": True}}
    missing = row(2, 0, "UP")
    del missing["challengers"]
    s.add([row(0, 0, "UP", features={"a": "x", "b": True}), bad_output, missing])
    done(s, {"r0": "UP", "r1": "UP"})
    assert s.rows.tolist() == [3, 0]
    assert s.features["a"].bins[0, -1] == 1  # a string is no value: counted missing
    assert s.champion[0].metrics()["n"] == 1  # only r0's output is a label


def test_folding_after_every_batch_or_once_gives_the_same_tallies():
    rng = np.random.default_rng(2)
    truths = {f"r{i}": CLASSES[rng.integers(3)] for i in range(300)}
    records = [
        row(i, i % 2, CLASSES[rng.integers(3)], challenger=CLASSES[rng.integers(3)],
            features={"a": float(rng.normal()), "b": float(rng.normal())})
        for i in range(300)
    ]  # fmt: skip
    once, often = stream(), stream()
    for start in range(0, 300, 50):
        once.add(records[start : start + 50])
        often.add(records[start : start + 50])
        often.fold()
    done(once, dict(truths))
    done(often, dict(truths))
    assert once.rows.tolist() == often.rows.tolist()
    assert once.output_counts.tolist() == often.output_counts.tolist()
    assert once.features["a"].bins.tolist() == often.features["a"].bins.tolist()
    for a, b in zip(once.pairs, often.pairs, strict=True):
        assert (a.champion_only, a.challenger_only, a.agree) == (
            b.champion_only, b.challenger_only, b.agree,
        )  # fmt: skip
    assert once.champion[1].metrics() == pytest.approx(often.champion[1].metrics())


def test_a_regressor_pairs_squared_error_differences():
    s = stream(task="regression")
    records = []
    for i in range(3):
        record = Row(f"r{i}", stamp(date(2026, 12, 1), i), "m/x", "1.0.0", "production",
                     "champion", "regression", {"a": 1.0, "b": 2.0}, {"value": i + 1.0},
                     [{"alias": "challenger", "version": "1.0.1",
                       "output": {"value": i + 0.5}}]).record()  # fmt: skip
        records.append(record)
    s.add(records)
    done(s, {f"r{i}": float(i) for i in range(3)})
    pairs = s.pairs[0]
    assert pairs.differential.n == 3
    assert pairs.differential.mean == pytest.approx(1.0 - 0.25)
    assert s.champion[0].metrics()["rmse"] == pytest.approx(1.0)


# -- only what was served is evidence, once (issue 19) -------------------------------------------


def test_rows_pinned_to_a_version_or_another_alias_are_no_evidence():
    # Given the champion's version answering through its alias, pinned by version (alias null)
    # and pinned to another alias that names the same version
    s = stream()
    pinned_version = row(1, 0, "UP", alias=None)
    pinned_alias = row(2, 0, "UP", alias="staging")
    s.add([row(0, 0, "UP"), pinned_version, pinned_alias])
    done(s, {"r0": "UP", "r1": "UP", "r2": "UP"})
    # Then all three are traffic, only the first is judged
    assert s.rows.tolist() == [3, 0]
    assert (s.champion[0].n, s.pinned_rows, s.joined.evidence_rows) == (1, 2, 1)


def test_a_request_id_carried_by_many_rows_counts_once():
    # Given one outcome and 370 shadow rows that all carry its request id
    s = stream()
    rows = [row(i, 0, "DOWN", challenger="UP") for i in range(370)]
    for r in rows:
        r["request_id"] = "probe"
    s.add(rows)
    done(s, {"probe": "UP"})
    # Then the outcome scores one pair, not 370
    pairs = s.pairs[0]
    assert (pairs.challenger.n, pairs.challenger_only) == (1, 1)
    assert s.joined.repeated_ids == 369


def test_an_outcome_of_the_other_kind_is_no_truth():
    s = stream()
    s.add([row(0, 0, "UP"), row(1, 0, "UP")])
    done(s, {"r0": "UP", "r1": 0.0})  # a value for a classifier's id
    assert s.champion[0].n == 1 and s.joined.wrong_task == 1


def test_past_the_capacity_a_salted_sample_of_rows_is_kept_for_every_stream():
    sampler = Sampler(HASHER, capacity=300)
    a, b = (ModelStream(subject(), DAYS, sampler) for _ in range(2))
    a.add([row(i, 0, "UP") for i in range(400)])
    b.add([row(i, 1, "UP") for i in range(400, 800)])
    kept = a.evidence_keys()[0].size + b.evidence_keys()[0].size
    assert sampler.bits >= 2 and kept <= 300 and sampler.rate == 1 / (1 << sampler.bits)
    # the same rule for both streams: every kept key is in the sample, none left out is
    for s, ids in ((a, range(400)), (b, range(400, 800))):
        keys = HASHER.keys([f"r{i}" for i in ids])
        expected = np.sort(keys[(keys & np.uint64((1 << sampler.bits) - 1)) == 0])
        assert np.sort(s.evidence_keys()[0]).tolist() == expected.tolist()


def test_the_champions_confidence_is_counted_on_its_calibration_bins():
    # Given a baseline calibrated on labelled reference rows
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(3), 1000)
    truth = [CLASSES[int(np.argmax(p))] for p in proba]
    calibrated = fit_baseline("m/x", "1.0.0", "classification",
                              Reference(NAMES, rng.normal(size=(1000, 2)), proba, truth),
                              classes=CLASSES)  # fmt: skip
    s = ModelStream(dataclasses.replace(subject(), baseline=calibrated), DAYS, Sampler(HASHER))
    # When served rows answer with confidence 0.7 and 0.95 (a pinned row and a canary do not
    # count: they are not the champion's served answers)
    confident = row(1, 0, "UP")
    confident["output"] = class_output("UP", CLASSES, confidence=0.95)
    canary = row(2, 0, "UP", role="canary", version="1.0.1", alias="challenger")
    s.add([row(0, 0, "UP"), confident, row(3, 1, "UP", alias=None), canary])
    s.fold()
    assert s.confidence_counts is not None and s.calibration is not None
    bins = s.calibration.bin_of(np.array([0.7, 0.95], dtype=np.float32)).tolist()  # as kept
    assert s.confidence_counts[0].sum() == 2 and s.confidence_counts[1].sum() == 0
    assert s.confidence_counts[0][bins[0]] >= 1 and s.confidence_counts[0][bins[1]] >= 1


def test_the_answers_warnings_are_tallied_per_used_feature_and_code():
    s = stream()
    warned = [
        {"feature": "a", "code": "out_of_range", "value": 9.0, "range": [0, 1]},
        {"feature": "b", "code": "unexpected_missing", "value": None, "range": [0, 1]},
    ]
    records = [
        {**row(0, 0, "UP"), "warnings": warned},
        {**row(1, 0, "UP"), "warnings": []},  # checked: nothing to say
        row(2, 1, "UP"),  # not checked (its version had no ranges)
        {**row(3, 1, "UP"), "warnings": [warned[0]]},
        # outside the run: not counted
        {**row(4, 1, "UP"), "time": "2026-12-05T00:00:00.000000Z", "warnings": warned},
        # what a record should not hold is skipped, never raised on
        {**row(5, 1, "UP"), "warnings": [
            "text", {"feature": ["a"], "code": "out_of_range"}, {"feature": "a", "code": {}},
            {"feature": "z", "code": "out_of_range"}, {"feature": "a", "code": "other"}]},
        {**row(6, 1, "UP"), "warnings": {"feature": "a"}},
    ]  # fmt: skip
    s.add(records)
    assert (s.checked_rows, s.warned_rows) == (4, 3)
    assert s.warnings == {"a": [2, 0], "b": [0, 1]}
