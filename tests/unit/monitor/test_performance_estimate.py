"""Accuracy estimated from confidence before outcomes arrive (CBPE)."""

from __future__ import annotations

import numpy as np

from tests.monitor_support import calibrated_rows
from tickerserve.baselines.calibration import fit_calibration
from tickerserve.monitor.performance_estimate import estimate


def counts_of(calibration, p: np.ndarray) -> np.ndarray:
    bins = calibration.bin_of(p.max(axis=1))
    return np.bincount(bins, minlength=len(calibration.rows))


def test_a_calibrated_model_s_estimate_follows_its_realized_accuracy_under_shift():
    rng = np.random.default_rng(7)
    # Given a calibration fitted on 3,000 reference rows
    p, truth = calibrated_rows(rng, 3000)
    calibration = fit_calibration(p, truth)
    # When the inputs shift and the model becomes less sure (and less often right)
    for scale in (1.5, 0.8, 2.5):
        later, later_truth = calibrated_rows(rng, 2000, scale=scale)
        realized = float((later.argmax(axis=1) == later_truth).mean())
        found = estimate(calibration, counts_of(calibration, later))
        # Then the estimate tracks the realized accuracy, not the reference's
        assert found.trusted and found.problem is None
        assert found.accuracy is not None
        assert abs(found.accuracy - realized) < 0.03, (scale, found.accuracy, realized)


def test_an_overconfident_model_s_estimate_is_flagged_not_trusted():
    rng = np.random.default_rng(8)
    p, truth = calibrated_rows(rng, 3000, sharpen=3.0)
    calibration = fit_calibration(p, truth)
    later, _ = calibrated_rows(rng, 2000, sharpen=3.0)
    found = estimate(calibration, counts_of(calibration, later))
    assert not found.trusted
    assert found.problem is not None and found.problem.startswith("badly calibrated")
    # Its raw confidence would have promised far more than it delivers
    assert found.accuracy is not None
    assert later.max(axis=1).mean() - found.accuracy > 0.1


def test_no_rows_no_estimate():
    p, truth = calibrated_rows(np.random.default_rng(9), 1000)
    found = estimate(fit_calibration(p, truth), np.zeros(10))
    assert (found.accuracy, found.rows) == (None, 0)
