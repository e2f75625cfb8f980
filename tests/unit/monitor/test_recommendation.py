"""Seed 003's recommendation rule, threshold by threshold."""

from __future__ import annotations

import pytest

from tickerserve.monitor.config import MonitorConfig, Rule
from tickerserve.monitor.recommendation import Evidence, recommend, seed_sentence
from tickerserve.monitor.significance import Significance

# The monitor function's layer has no scipy: nothing here may import it.
pytestmark = pytest.mark.usefixtures("without_scipy")
SIGNIFICANT = Significance("mcnemar_exact", 30.0, 0.001, 200, "challenger")
NOISE = Significance("mcnemar_exact", 2.0, 0.4, 40, "challenger")
WRONG_WAY = Significance("mcnemar_exact", -30.0, 0.001, 200, "champion")


@pytest.mark.parametrize(
    ("drift", "win", "test", "inputs", "action"),
    [
        (2.0, None, None, False, "keep"),
        (-20.0, None, None, False, "keep"),  # better than its baseline
        (5.0, None, None, False, "watch"),  # "5-10% -> monitor closely"
        (9.9, 0.5, SIGNIFICANT, False, "watch"),
        (10.0, None, None, False, "watch"),  # retrain only *above* 10%
        (10.1, None, None, False, "retrain"),
        (25.0, 1.0, SIGNIFICANT, False, "retrain"),  # switch needs drift under 10%
        (3.0, 0.75, SIGNIFICANT, False, "switch"),  # ">= 75% win rate AND drift < 10%"
        (9.9, 0.8, SIGNIFICANT, False, "switch"),
        (3.0, 0.74, SIGNIFICANT, False, "keep"),
        (3.0, 0.9, NOISE, False, "keep"),  # the rule says switch, the test says noise
        (3.0, 0.9, WRONG_WAY, False, "keep"),
        (3.0, 0.9, None, False, "keep"),
        (None, 0.9, SIGNIFICANT, False, "keep"),  # drift unknown: no switch
        (1.0, None, None, True, "watch"),  # inputs drifted while outcomes look fine
        (None, None, None, False, "keep"),
    ],
)
def test_the_rule(drift, win, test, inputs, action) -> None:
    # (with the challenger winning on the three days in a row seed 003 asks for)
    evidence = Evidence(drift, win, test, inputs, windows_won=7, windows_counted=7, winning_days=3)
    decision = recommend(evidence, MonitorConfig().rule)
    assert decision.action == action
    assert decision.reason


def test_thresholds_are_configurable() -> None:
    rule = Rule(switch_win_rate=0.6, retrain_drift_pct=20, watch_drift_pct=15, alpha=0.01)
    assert recommend(Evidence(12.0, None, None), rule).action == "keep"
    assert recommend(Evidence(16.0, None, None), rule).action == "watch"
    assert recommend(Evidence(21.0, None, None), rule).action == "retrain"
    assert recommend(Evidence(1.0, 0.6, SIGNIFICANT, winning_days=3), rule).action == "switch"
    almost = Significance("x", 1, 0.02, 9, "challenger")
    assert recommend(Evidence(1.0, 0.6, almost, winning_days=3), rule).action == "keep"
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\], not 1\.5"):
        MonitorConfig(alpha=1.5)


def test_a_switch_needs_three_winning_days_in_a_row() -> None:
    rule = MonitorConfig().rule
    for days, action in ((1, "keep"), (2, "keep"), (3, "switch"), (5, "switch")):
        evidence = Evidence(2.0, 1.0, SIGNIFICANT, windows_won=7, windows_counted=7,
                            winning_days=days)  # fmt: skip
        decision = recommend(evidence, rule)
        assert decision.action == action, days
    held = recommend(Evidence(2.0, 1.0, SIGNIFICANT, windows_won=2, windows_counted=2), rule)
    assert held.reason == (
        "challenger won 2 of 2 windows (100% >= 75%) but it has won on 1 day(s) in a row; "
        "seed 003 asks for 3 (one day's runs count once)"
    )


def test_alpha_one_applies_the_seed_rule_alone() -> None:
    rule = MonitorConfig(alpha=1).rule
    assert rule.test_off
    decision = recommend(Evidence(2.0, 0.8, NOISE, windows_won=4, windows_counted=5,
                                  winning_days=3), rule)  # fmt: skip
    assert decision.action == "switch"
    assert decision.reason.endswith("significance test off (alpha 1): seed 003's rule alone")
    # without any test at all, too
    assert recommend(Evidence(2.0, 0.8, None, winning_days=3), rule).action == "switch"


def test_a_champion_degrading_over_three_days_to_the_watch_level_is_retrained() -> None:
    rule = MonitorConfig().rule
    rising = recommend(Evidence(6.3, None, None, degrading=(2.1, 4.0, 6.3)), rule)
    assert rising.action == "retrain"
    assert rising.reason.startswith("drift rose over 3 days in a row (+2.1% -> +4.0% -> +6.3%")
    # Rising but still under the watch level, or rising over two days only: not yet
    assert recommend(Evidence(3.0, None, None, degrading=(1.0, 2.0, 3.0)), rule).action == "keep"
    assert recommend(Evidence(6.3, None, None, degrading=(4.0, 6.3)), rule).action == "watch"


def test_the_history_sentence_speaks_like_the_seed() -> None:
    assert seed_sentence("keep", "production 1.0.0", None) == "USE MODEL A (production 1.0.0)"
    assert seed_sentence("switch", "production 1.0.0", "challenger 1.0.1") == (
        "SWITCH TO MODEL B (challenger 1.0.1)"
    )
    assert seed_sentence("retrain", "production 1.0.0", None).startswith("RETRAIN MODEL A")
