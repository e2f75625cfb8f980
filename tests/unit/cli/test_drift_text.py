"""Drift in words, one sign everywhere: + worse, - better; seed 003's clipped 0 is "not worse"."""

from __future__ import annotations

from tickerserve.cli.drift_text import drift_of, drift_text, line_drift_text


def test_drift_reads_worse_above_zero_and_better_below_for_any_metric():
    assert drift_text(6.365) == "+6.4% (worse)"
    assert drift_text(-6.365) == "-6.4% (better)"
    assert drift_text(0.0) == "+0.0% (as the baseline)"
    assert drift_text(None) == "-"


def test_our_lines_use_the_signed_figure_never_the_seed_s_clipped_one():
    ours = {"drift": {"model_a_drift_pct": 0.0, "drift_pct": -6.365}}
    assert drift_of(ours) == -6.365
    assert line_drift_text(ours) == "-6.4% (better)"


def test_a_seed_line_s_zero_says_not_worse_rather_than_as_the_baseline():
    # seed 003 writes the degradation alone: its 0 is "as good or better"
    assert line_drift_text({"drift": {"model_a_drift_pct": 0.0}}) == "0.0% (not worse)"
    assert line_drift_text({"drift": {"model_a_drift_pct": 7.9}}) == "+7.9% (worse)"
    assert line_drift_text({"drift": {"model_a_drift_pct": "n/a"}}) == "-"
    assert line_drift_text({"drift": None}) == "-"
