"""Seed 003's two rules over several runs, read from ``monitoring_history.jsonl``.

The seed: "Model B win rate > 75 % for 3+ consecutive runs → consider switching" and "if
performance degrades consistently over 3+ monitoring runs → retrain". One run can be lucky (or
steered: a caller who may predict once could make one day's windows say anything), so a switch
needs the challenger to have won on three different days in a row, against the same champion
version with the same challenger version; the runs of one day are one day of evidence (the
day's last run speaks for it). A champion degrades consistently when its drift (positive:
worse than its baseline) rose from each day's run to the next over three days.

History lines are read as found: a line that is not one of ours for the model (an imported
seed line names no model version), or whose figures are not numbers, is skipped and counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Runs on different days a rule needs (the seed's "3+ consecutive runs").
RUNS = 3


@dataclass(frozen=True)
class DailyRun:
    """What one day's last run found for a model."""

    day: str  # monitoring_date, YYYY-MM-DD
    champion: str | None  # versions compared
    challenger: str | None
    win_rate: float | None  # the challenger's share of the windows counted (0..1)
    windows_counted: int | None
    drift_pct: float | None  # relative degradation of the primary metric, percent


@dataclass
class HistoryRead:
    """A model's daily runs, oldest first, and the history lines that could not be used."""

    runs: list[DailyRun] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def daily_runs(
    records: Iterable[Mapping[str, Any]], model: str, today: DailyRun | None = None
) -> HistoryRead:
    """The model's runs, one per day (the day's last line; ``today``, the run being decided,
    replaces any line of its own day), oldest first."""
    read = HistoryRead()
    by_day: dict[str, DailyRun] = {}
    for record in records:
        if not isinstance(record, Mapping) or record.get("model") != model:
            continue  # another model's, or an imported seed line (it names no model)
        run = _run_of(record)
        if isinstance(run, str):
            read.skip(run)
            continue
        by_day[run.day] = run  # lines are appended in time order: the day's last wins
    if today is not None:
        by_day[today.day] = today
    read.runs = [by_day[day] for day in sorted(by_day)]
    return read


def _run_of(record: Mapping[str, Any]) -> DailyRun | str:
    day = record.get("monitoring_date")
    if not (isinstance(day, str) and len(day) == 10 and day[4] == "-" and day[7] == "-"):
        return "no_monitoring_date"
    comparison = record.get("comparison")
    drift = record.get("drift")
    if not isinstance(comparison, Mapping) or not isinstance(drift, Mapping):
        return "not_a_run"
    win_rate = _number(comparison.get("model_b_win_rate"))
    drift_pct = _number(drift.get("drift_pct"))
    if isinstance(win_rate, str) or isinstance(drift_pct, str):
        return "not_a_number"
    counted = comparison.get("windows_counted")
    return DailyRun(
        day=day,
        champion=_version(record.get("champion")),
        challenger=_version(record.get("challenger")),
        win_rate=win_rate,
        windows_counted=counted if type(counted) is int else None,
        drift_pct=drift_pct,
    )


def _number(value: Any) -> float | str | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        return "not_a_number"
    return float(value)


def _version(ref: Any) -> str | None:
    version = ref.get("version") if isinstance(ref, Mapping) else None
    return version if isinstance(version, str) else None


def winning_streak(runs: list[DailyRun], win_rate: float) -> list[DailyRun]:
    """The latest days in a row on which the challenger won at least ``win_rate`` of the
    windows, all comparing the latest day's champion and challenger versions."""
    if not runs:
        return []
    last = runs[-1]
    streak: list[DailyRun] = []
    for run in reversed(runs):
        same = (run.champion, run.challenger) == (last.champion, last.challenger)
        if not same or run.challenger is None or run.win_rate is None or run.win_rate < win_rate:
            break
        streak.append(run)
    return streak[::-1]


def degrading_streak(runs: list[DailyRun]) -> list[DailyRun]:
    """The latest days in a row over which the champion's drift rose at every step, all
    judging the latest day's champion version."""
    if not runs or runs[-1].drift_pct is None:
        return []
    streak = [runs[-1]]
    for run in reversed(runs[:-1]):
        later = streak[0]
        assert later.drift_pct is not None
        if run.champion != runs[-1].champion or run.drift_pct is None:
            break
        if not run.drift_pct < later.drift_pct:
            break
        streak.insert(0, run)
    return streak
