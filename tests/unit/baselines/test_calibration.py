"""The reliability table fitted on a baseline's labelled reference rows."""

from __future__ import annotations

import numpy as np
import pytest

from tests.monitor_support import CLASSES, calibrated_rows
from tickerserve.baselines.baseline import Baseline, Reference, fit_baseline
from tickerserve.baselines.calibration import TRUSTED_ECE, Calibration, fit_calibration


def test_a_calibrated_model_s_confidence_matches_its_reference_accuracy():
    p, truth = calibrated_rows(np.random.default_rng(0), 5000)
    calibration = fit_calibration(p, truth)
    ece = calibration.expected_calibration_error()
    assert ece is not None and ece < 0.03
    assert calibration.problem() is None
    assert calibration.n == 5000
    assert sum(calibration.correct) == int((p.argmax(axis=1) == truth).sum())


def test_an_overconfident_model_is_badly_calibrated_and_says_so():
    p, truth = calibrated_rows(np.random.default_rng(1), 5000, sharpen=3.0)
    calibration = fit_calibration(p, truth)
    ece = calibration.expected_calibration_error()
    assert ece is not None and ece > TRUSTED_ECE
    problem = calibration.problem()
    assert problem is not None and problem.startswith("badly calibrated")
    assert f"{ece:.3f}" in problem


def test_too_few_reference_rows_calibrate_nothing():
    p, truth = calibrated_rows(np.random.default_rng(2), 200)
    assert fit_calibration(p, truth).problem() == (
        "only 200 labelled reference rows (calibration needs 500)"
    )


def test_labels_the_model_cannot_output_are_never_right():
    p = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1]])
    calibration = fit_calibration(p, np.array([3, 0]))  # 3: a label outside the classes
    assert (sum(calibration.rows), sum(calibration.correct)) == (2, 1)


def test_the_baseline_of_a_classifier_with_labels_carries_it_through_json():
    p, truth = calibrated_rows(np.random.default_rng(3), 1000)
    x = np.random.default_rng(4).normal(size=(1000, 2))
    baseline = fit_baseline(
        "etfs/SMH", "1.0.0", "classification",
        Reference(["a", "b"], x, p, [CLASSES[t] for t in truth]), classes=CLASSES,
    )  # fmt: skip
    assert baseline.calibration is not None
    again = Baseline.from_json(baseline.to_json())
    assert again.calibration == baseline.calibration
    # Without labels there is nothing to calibrate on, and an older baseline has none either
    unlabelled = fit_baseline(
        "etfs/SMH", "1.0.0", "classification", Reference(["a", "b"], x, p), classes=CLASSES
    )
    assert unlabelled.calibration is None
    assert "calibration" not in unlabelled.to_dict()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"edges": [0.5], "rows": [1], "correct": [1], "confidence": [0.5]}, "per bin"),
        ({"edges": [0.5], "rows": [1, 1], "correct": [2, 0], "confidence": [0.4, 0.6]},
         "more correct rows than rows"),
        ({"edges": [0.5, 0.4], "rows": [1, 1, 1], "correct": [0, 0, 0],
          "confidence": [0.1, 0.45, 0.9]}, "strictly increasing"),
    ],
)  # fmt: skip
def test_a_malformed_table_is_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        Calibration.from_dict(raw)
