"""Seed 003's rule: when to keep, watch, retrain, or switch to the challenger.

From the seed's own words: switch only at a high challenger win rate ("Model B win rate > 75 %
for 3+ consecutive runs") while the champion's drift is under the retrain level; retrain above
it, or when "performance degrades consistently over 3+ monitoring runs"; watch between the
watch and retrain levels (the levels are ``config.Rule``'s, the seed's values written in
``config.json``). The multi-run parts are read from the monitoring history
(``tickerserve.monitor.streaks``): a switch needs the challenger to have won on ``runs``
different days in a row, and a champion whose drift rose from each day to the next over
``runs`` days, to at least the watch level, is retrained. We add two conditions: a switch also
needs the significance test to agree (p below ``alpha``, in the challenger's favour; alpha 1
turns the test off and applies the seed's rule alone), and a champion whose inputs or outputs
drifted is watched even while its outcomes still look fine (outcomes lag; inputs do not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tickerserve.monitor.config import Rule
from tickerserve.monitor.significance import Significance

Action = Literal["keep", "watch", "retrain", "switch"]
ACTIONS: tuple[Action, ...] = ("keep", "watch", "retrain", "switch")


@dataclass(frozen=True)
class Evidence:
    """What a run found for one model, with what the history adds."""

    drift_pct: float | None  # relative degradation of the primary metric, percent
    win_rate: float | None  # challenger's share of the windows that counted (0..1)
    test: Significance | None  # champion vs challenger, paired where possible
    inputs_drifted: bool = False  # a feature or the output distribution at "drift"
    windows_won: int = 0  # the challenger's windows of ``windows_counted``
    windows_counted: int = 0
    winning_days: int = 1  # days in a row (this run's included) the challenger won
    degrading: tuple[float, ...] = ()  # the drift of each day over which it rose, oldest first


@dataclass(frozen=True)
class Recommendation:
    action: Action
    reason: str


def recommend(evidence: Evidence, rule: Rule) -> Recommendation:
    """Apply the rule; the reason names the figures and thresholds that decided."""
    drift, win, test = evidence.drift_pct, evidence.win_rate, evidence.test
    drift_text = "unknown" if drift is None else f"{drift:+.1f}%"
    if win is not None and win >= rule.switch_win_rate:
        won = (
            f"challenger won {evidence.windows_won} of {evidence.windows_counted} windows "
            f"({win:.0%} >= {rule.switch_win_rate:.0%})"
        )
        if drift is None:
            blocker = "the champion's drift is unknown (no baseline metrics or outcomes)"
        elif drift >= rule.retrain_drift_pct:
            blocker = f"the champion's drift {drift_text} is not under {rule.retrain_drift_pct:g}%"
        elif not rule.test_off and test is None:
            blocker = "no significance test could be run"
        elif not rule.test_off and (
            test is None or test.favours != "challenger" or not test.p_value < rule.alpha
        ):
            assert test is not None
            blocker = (
                f"{test.name} p = {_p(test.p_value)} does not show the challenger better at "
                f"alpha {rule.alpha:g}"
            )
        elif evidence.winning_days < rule.runs:
            blocker = (
                f"it has won on {evidence.winning_days} day(s) in a row; seed 003 asks for "
                f"{rule.runs} (one day's runs count once)"
            )
        else:
            if rule.test_off:
                tested = "significance test off (alpha 1): seed 003's rule alone"
            else:
                assert test is not None
                tested = f"{test.name} p = {_p(test.p_value)} < {rule.alpha:g}"
            return Recommendation(
                "switch",
                f"{won} on {evidence.winning_days} days in a row, drift {drift_text} < "
                f"{rule.retrain_drift_pct:g}%, {tested}",
            )
        held = f"{won} but {blocker}"
    else:
        held = ""
    if drift is not None and drift > rule.retrain_drift_pct:
        reason = f"drift {drift_text} > {rule.retrain_drift_pct:g}%"
        return Recommendation("retrain", _join(reason, held))
    rising = evidence.degrading
    if len(rising) >= rule.runs and rising[-1] >= rule.watch_drift_pct:
        steps = " -> ".join(f"{d:+.1f}%" for d in rising)
        return Recommendation(
            "retrain",
            _join(f"drift rose over {len(rising)} days in a row ({steps}; seed 003: degrades "
                  f"over {rule.runs}+ runs)", held),
        )  # fmt: skip
    if drift is not None and drift >= rule.watch_drift_pct:
        return Recommendation(
            "watch",
            _join(f"drift {drift_text} between {rule.watch_drift_pct:g}% and "
                  f"{rule.retrain_drift_pct:g}%", held),
        )  # fmt: skip
    if evidence.inputs_drifted:
        return Recommendation("watch", _join("inputs or outputs drifted (PSI)", held))
    if held:
        return Recommendation("keep", held)
    return Recommendation("keep", f"drift {drift_text}; no reason to change")


def _p(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if second else first


def seed_sentence(action: Action, champion: str, challenger: str | None) -> str:
    """The ``recommendation`` line in the seed's own voice (Model A = champion)."""
    if action == "switch":
        return f"SWITCH TO MODEL B ({challenger})"
    if action == "retrain":
        return f"RETRAIN MODEL A ({champion})"
    if action == "watch":
        return f"USE MODEL A ({champion}), MONITOR CLOSELY"
    return f"USE MODEL A ({champion})"
