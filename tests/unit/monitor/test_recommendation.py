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
    decision = recommend(Evidence(drift, win, test, inputs), MonitorConfig().rule)
    assert decision.action == action
    assert decision.reason


def test_thresholds_are_configurable() -> None:
    rule = Rule(switch_win_rate=0.6, retrain_drift_pct=20, watch_drift_pct=15, alpha=0.01)
    assert recommend(Evidence(12.0, None, None), rule).action == "keep"
    assert recommend(Evidence(16.0, None, None), rule).action == "watch"
    assert recommend(Evidence(21.0, None, None), rule).action == "retrain"
    assert recommend(Evidence(1.0, 0.6, SIGNIFICANT), rule).action == "switch"
    assert (
        recommend(Evidence(1.0, 0.6, Significance("x", 1, 0.02, 9, "challenger")), rule).action
        == "keep"
    )
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\), not 1\.5"):
        MonitorConfig(alpha=1.5)


def test_the_history_sentence_speaks_like_the_seed() -> None:
    assert seed_sentence("keep", "production 1.0.0", None) == "USE MODEL A (production 1.0.0)"
    assert seed_sentence("switch", "production 1.0.0", "challenger 1.0.1") == (
        "SWITCH TO MODEL B (challenger 1.0.1)"
    )
    assert seed_sentence("retrain", "production 1.0.0", None).startswith("RETRAIN MODEL A")
