"""Seed 003's rules over several runs: three winning days in a row, three days of degradation."""

from __future__ import annotations

from typing import Any

from tickerserve.monitor.streaks import DailyRun, daily_runs, degrading_streak, winning_streak

MODEL = "etfs/SMH"


def line(day: str, win: Any = 0.9, drift: Any = 1.0, **extra: Any) -> dict[str, Any]:
    """A history line as ``monitor run`` writes it (the fields the rules read)."""
    return {
        "kind": "monitoring",
        "model": MODEL,
        "monitoring_date": day,
        "champion": {"alias": "production", "version": "1.0.0"},
        "challenger": {"alias": "challenger", "version": "1.0.1"},
        "comparison": {"model_b_win_rate": win, "windows_counted": 7},
        "drift": {"drift_pct": drift, "model_a_drift_pct": max(0.0, drift or 0.0)},
        **extra,
    }


def days(*records: dict[str, Any], today: DailyRun | None = None) -> list[DailyRun]:
    return daily_runs(records, MODEL, today).runs


def test_three_runs_in_one_day_are_one_day_of_evidence():
    # Given three winning runs on December 3 (and a losing one on December 2)
    runs = days(line("2026-12-02", win=0.2), *(line("2026-12-03") for _ in range(3)))
    # Then they count as one winning day
    assert [r.day for r in winning_streak(runs, 0.75)] == ["2026-12-03"]


def test_the_day_s_last_run_speaks_for_it_and_the_run_being_decided_for_today():
    runs = days(line("2026-12-01"), line("2026-12-02"), line("2026-12-02", win=0.1))
    assert winning_streak(runs, 0.75) == []
    today = DailyRun("2026-12-02", "1.0.0", "1.0.1", 0.8, 7, 1.0)
    runs = days(line("2026-12-01"), line("2026-12-02", win=0.1), today=today)
    assert [r.day for r in winning_streak(runs, 0.75)] == ["2026-12-01", "2026-12-02"]


def test_a_streak_needs_the_same_champion_and_challenger_versions():
    other = {"challenger": {"alias": "challenger", "version": "1.0.2"}}
    runs = days(line("2026-12-01", **other), line("2026-12-02"), line("2026-12-03"))
    assert [r.day for r in winning_streak(runs, 0.75)] == ["2026-12-02", "2026-12-03"]
    no_challenger = days(line("2026-12-01", challenger=None))
    assert winning_streak(no_challenger, 0.75) == []


def test_other_models_seed_lines_and_unreadable_lines_are_left_out_and_counted():
    seed_line = {"monitoring_date": "2026-12-01", "comparison": {"model_b_win_rate": 1.0}}
    read = daily_runs(
        [
            seed_line,  # imported from seed 003: names no model or version
            {**line("2026-12-01"), "model": "etfs/SPY"},
            line("2026-12-02", win="0.9"),
            line("2026-12-02", drift=float("inf")),
            {**line("2026-12-03"), "monitoring_date": 20261203},
            {**line("2026-12-04"), "comparison": None},
            "not a line",  # type: ignore[list-item]
            line("2026-12-05"),
        ],
        MODEL,
    )
    assert [r.day for r in read.runs] == ["2026-12-05"]
    assert read.skipped == {"not_a_number": 2, "no_monitoring_date": 1, "not_a_run": 1}


def test_degradation_must_rise_from_each_day_to_the_next():
    rising = days(line("2026-12-01", drift=-2.0), line("2026-12-02", drift=3.0),
                  line("2026-12-03", drift=6.5))  # fmt: skip
    assert [r.drift_pct for r in degrading_streak(rising)] == [-2.0, 3.0, 6.5]
    dip = days(line("2026-12-01", drift=4.0), line("2026-12-02", drift=3.0),
               line("2026-12-03", drift=6.5))  # fmt: skip
    assert [r.day for r in degrading_streak(dip)] == ["2026-12-02", "2026-12-03"]
    unknown = days(line("2026-12-01", drift=1.0), line("2026-12-02", drift=None),
                   line("2026-12-03", drift=6.5))  # fmt: skip
    assert len(degrading_streak(unknown)) == 1
    assert degrading_streak(days(line("2026-12-01", drift=None))) == []
