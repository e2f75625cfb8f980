"""Performance figures from streamed tallies: the same numbers scikit-learn gives on the whole
set, however the rows arrive, and the comparison rules the monitor uses."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)

from tickerserve.baselines.metrics import (
    LOG_LOSS_EPS,
    ClassificationTally,
    RegressionTally,
    better,
    drift_pct,
    new_tally,
    primary_metric,
)

N_CLASSES = 4


def classified(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth and predictions as label indices (``N_CLASSES`` = a label the model lacks), and
    each row's probabilities."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(N_CLASSES), n)
    predicted = proba.argmax(axis=1)
    truth = np.where(rng.random(n) < 0.6, predicted, rng.integers(0, N_CLASSES, n))
    return truth, predicted, proba


def test_classification_figures_match_scikit_learn_in_any_batching():
    truth, predicted, proba = classified(0, 900)
    p_truth = proba[np.arange(900), truth]
    tally = ClassificationTally(N_CLASSES)
    for part in np.array_split(np.arange(900), 7):
        tally.add(truth[part], predicted[part], p_truth[part])
    figures = tally.metrics()
    assert figures["n"] == 900
    assert figures["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert figures["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert figures["log_loss"] == pytest.approx(log_loss(truth, proba, labels=range(N_CLASSES)))


def test_labels_the_model_cannot_output_count_in_the_macro_average_one_by_one():
    # Given two true labels outside the model's classes, both bucketed as "other"
    truth_labels = ["UP", "DOWN", "UP", "CRASH", "HALT", "DOWN"]
    predicted_labels = ["UP", "DOWN", "DOWN", "UP", "DOWN", "DOWN"]
    classes = ["UP", "DOWN"]

    def index(label: str) -> int:
        return classes.index(label) if label in classes else len(classes)

    tally = ClassificationTally(len(classes))
    tally.add(
        np.array([index(t) for t in truth_labels]), np.array([index(p) for p in predicted_labels])
    )
    tally.other_labels |= {"CRASH", "HALT"}
    # Then macro-F1 averages over four labels, as scikit-learn does with the labels themselves
    expected = f1_score(truth_labels, predicted_labels, average="macro")
    assert tally.metrics()["macro_f1"] == pytest.approx(expected)
    assert tally.metrics()["accuracy"] == pytest.approx(3 / 6)


def test_log_loss_clips_certain_mistakes_and_skips_unknown_probabilities():
    tally = ClassificationTally(2)
    tally.add(np.array([0, 1, 1]), np.array([1, 1, 1]), np.array([0.0, np.nan, 1.0]))
    assert tally.metrics()["log_loss"] == pytest.approx(-np.log(LOG_LOSS_EPS) / 2)
    assert ClassificationTally(2).metrics() == {
        "accuracy": None,
        "macro_f1": None,
        "log_loss": None,
        "n": 0,
    }
    without = ClassificationTally(2)
    without.add(np.array([0]), np.array([0]))
    assert without.metrics()["log_loss"] is None


def test_merged_classification_tallies_equal_one_tally():
    truth, predicted, proba = classified(1, 400)
    p_truth = proba[np.arange(400), truth]
    whole, left, right = (ClassificationTally(N_CLASSES) for _ in range(3))
    whole.add(truth, predicted, p_truth)
    left.add(truth[:150], predicted[:150], p_truth[:150])
    right.add(truth[150:], predicted[150:], p_truth[150:])
    right.other_labels.add("X")
    left.merge(right)
    assert left.other_labels == {"X"}
    assert left.confusion.tolist() == whole.confusion.tolist()
    assert left.metrics()["log_loss"] == pytest.approx(whole.metrics()["log_loss"])


def test_regression_figures_match_scikit_learn_in_any_batching():
    rng = np.random.default_rng(3)
    truth = rng.normal(0.01, 0.02, 1000)
    predicted = truth + rng.normal(0.0, 0.01, 1000)
    tally, other = RegressionTally(), RegressionTally()
    tally.add(truth[:333], predicted[:333])
    other.add(truth[333:], predicted[333:])
    tally.merge(other)
    figures = tally.metrics()
    assert figures["n"] == 1000
    assert figures["rmse"] == pytest.approx(np.sqrt(mean_squared_error(truth, predicted)))
    assert figures["mae"] == pytest.approx(mean_absolute_error(truth, predicted))
    assert figures["r2"] == pytest.approx(r2_score(truth, predicted))


def test_r2_of_a_constant_truth_is_unknown_and_an_empty_tally_has_no_figures():
    tally = RegressionTally()
    tally.add(np.array([1.0, 1.0]), np.array([1.5, 0.5]))
    assert tally.metrics() == {"rmse": 0.5, "mae": 0.5, "r2": None, "n": 2}
    assert RegressionTally().metrics() == {"rmse": None, "mae": None, "r2": None, "n": 0}


def test_a_task_gets_its_tally_and_primary_metric():
    assert isinstance(new_tally("classification", 3), ClassificationTally)
    assert new_tally("classification", 3).n_classes == 3  # type: ignore[union-attr]
    assert isinstance(new_tally("regression", 0), RegressionTally)
    assert (primary_metric("classification"), primary_metric("regression")) == ("accuracy", "rmse")


def test_better_is_strict_and_knows_which_way_each_metric_points():
    assert better("accuracy", 0.8, 0.7) and not better("accuracy", 0.7, 0.8)
    assert better("rmse", 0.01, 0.02) and not better("rmse", 0.02, 0.01)
    assert not better("accuracy", 0.7, 0.7) and not better("rmse", 0.02, 0.02)  # a tie: champion
    assert better("log_loss", 0.3, 0.5) and better("r2", 0.5, 0.3)


def test_drift_is_degradation_in_percent_whichever_way_the_metric_points():
    assert drift_pct("accuracy", 0.8, 0.6) == pytest.approx(25.0)  # worse: positive
    assert drift_pct("accuracy", 0.8, 0.9) == pytest.approx(-12.5)  # better: negative
    assert drift_pct("rmse", 0.010, 0.015) == pytest.approx(50.0)
    assert drift_pct("rmse", 0.010, 0.005) == pytest.approx(-50.0)
    assert drift_pct("rmse", 0.0, 0.1) is None
    assert drift_pct("rmse", None, 0.1) is None and drift_pct("rmse", 0.1, None) is None
