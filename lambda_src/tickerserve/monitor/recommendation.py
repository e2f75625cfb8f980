"""Seed 003's rule: when to keep, watch, retrain, or switch to the challenger.

From the seed's own words: switch only at a high challenger win rate while the champion's
drift is under the retrain level; retrain above it; watch between the watch and retrain
levels (the levels are ``config.Rule``'s, the seed's values written in ``config.json``). We
add two conditions: a switch also needs the significance test to agree (p below ``alpha``, in
the challenger's favour), and a champion whose inputs or outputs drifted is watched even
while its outcomes still look fine (outcomes lag; inputs do not).
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
    """What a run found for one model."""

    drift_pct: float | None  # relative degradation of the primary metric, percent
    win_rate: float | None  # challenger's share of the windows that counted (0..1)
    test: Significance | None  # champion vs challenger, paired where possible
    inputs_drifted: bool = False  # a feature or the output distribution at "drift"


@dataclass(frozen=True)
class Recommendation:
    action: Action
    reason: str


def recommend(evidence: Evidence, rule: Rule) -> Recommendation:
    """Apply the rule; the reason names the figures and thresholds that decided."""
    drift, win, test = evidence.drift_pct, evidence.win_rate, evidence.test
    drift_text = "unknown" if drift is None else f"{drift:.1f}%"
    if win is not None and win >= rule.switch_win_rate:
        if drift is None:
            blocker = "the champion's drift is unknown (no baseline metrics or outcomes)"
        elif drift >= rule.retrain_drift_pct:
            blocker = f"the champion's drift {drift_text} is not under {rule.retrain_drift_pct:g}%"
        elif test is None:
            blocker = "no significance test could be run"
        elif test.favours != "challenger" or not test.p_value < rule.alpha:
            blocker = (
                f"{test.name} p = {_p(test.p_value)} does not show the challenger better at "
                f"alpha {rule.alpha:g}"
            )
        else:
            return Recommendation(
                "switch",
                f"challenger won {win:.0%} of windows (>= {rule.switch_win_rate:.0%}), drift "
                f"{drift_text} < {rule.retrain_drift_pct:g}%, {test.name} p = "
                f"{_p(test.p_value)} < {rule.alpha:g}",
            )
        held = f"challenger won {win:.0%} of windows but {blocker}"
    else:
        held = ""
    if drift is not None and drift > rule.retrain_drift_pct:
        reason = f"drift {drift_text} > {rule.retrain_drift_pct:g}%"
        return Recommendation("retrain", _join(reason, held))
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
