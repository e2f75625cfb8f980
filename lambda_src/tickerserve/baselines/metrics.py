"""Performance figures, computed from tallies that a stream can fill batch by batch.

Classification: accuracy, macro-F1 (over the labels seen in truth or prediction, as
scikit-learn does), log loss (probabilities clipped to ``LOG_LOSS_EPS``). Regression: RMSE,
MAE, R². The primary metric is accuracy for classifiers and RMSE for regressors; ``drift_pct``
is its relative degradation against the baseline, in percent (seed 003's meaning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tickerserve.baselines.moments import Moments

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")
LOG_LOSS_EPS = 1e-15
PRIMARY: dict[str, str] = {"classification": "accuracy", "regression": "rmse"}
HIGHER_IS_BETTER = {"accuracy": True, "macro_f1": True, "log_loss": False, "rmse": False,
                    "mae": False, "r2": True}  # fmt: skip


@dataclass
class ClassificationTally:
    """Confusion counts over ``n_classes`` known labels plus one "other" (labels the model
    cannot output), and the summed log loss of rows whose probabilities were known."""

    n_classes: int
    confusion: np.ndarray = field(init=False)
    log_loss_sum: float = 0.0
    log_loss_n: int = 0
    # Distinct true labels outside the model's classes: each is a class of the macro average
    # (with F1 = 0, as the model never predicts it), as in scikit-learn.
    other_labels: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        size = self.n_classes + 1
        self.confusion = np.zeros((size, size), dtype=np.int64)

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    def add(
        self, truth: np.ndarray, predicted: np.ndarray, p_truth: np.ndarray | None = None
    ) -> None:
        """Rows given as label indices (``n_classes`` = other); ``p_truth`` is each row's
        probability of its true label (NaN where unknown)."""
        size = self.n_classes + 1
        codes = truth.astype(np.int64) * size + predicted.astype(np.int64)
        self.confusion += np.bincount(codes, minlength=size * size).reshape(size, size)
        if p_truth is not None:
            known = p_truth[~np.isnan(p_truth)]
            self.log_loss_sum += float(-np.sum(np.log(np.clip(known, LOG_LOSS_EPS, 1.0))))
            self.log_loss_n += int(known.size)

    def merge(self, other: ClassificationTally) -> None:
        self.confusion += other.confusion
        self.log_loss_sum += other.log_loss_sum
        self.log_loss_n += other.log_loss_n
        self.other_labels |= other.other_labels

    def metrics(self) -> dict[str, float | None]:
        n = self.n
        if n == 0:
            return {"accuracy": None, "macro_f1": None, "log_loss": None, "n": 0}
        true_counts, pred_counts = self.confusion.sum(axis=1), self.confusion.sum(axis=0)
        tp = np.diag(self.confusion).astype(np.float64)
        seen = (true_counts + pred_counts) > 0
        seen[-1] = False  # "other" is a bucket of labels, counted one by one below
        denominator = (true_counts + pred_counts)[seen].astype(np.float64)
        f1 = 2 * tp[seen] / denominator
        n_labels = f1.size + len(self.other_labels)
        return {
            "accuracy": self.correct / n,
            "macro_f1": float(np.sum(f1)) / n_labels if n_labels else 0.0,
            "log_loss": self.log_loss_sum / self.log_loss_n if self.log_loss_n else None,
            "n": n,
        }


@dataclass
class RegressionTally:
    """Errors (prediction - truth) and truths of a stream."""

    errors: Moments = field(default_factory=Moments)
    squared: Moments = field(default_factory=Moments)  # of squared errors (Welch's test)
    truth: Moments = field(default_factory=Moments)
    abs_sum: float = 0.0

    @property
    def n(self) -> int:
        return self.errors.n

    def add(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        errors = predicted - truth
        self.errors.add(errors)
        self.squared.add(errors * errors)
        self.truth.add(truth)
        self.abs_sum += float(np.sum(np.abs(errors)))

    def merge(self, other: RegressionTally) -> None:
        self.errors.merge(other.errors)
        self.squared.merge(other.squared)
        self.truth.merge(other.truth)
        self.abs_sum += other.abs_sum

    def metrics(self) -> dict[str, float | None]:
        n = self.n
        if n == 0:
            return {"rmse": None, "mae": None, "r2": None, "n": 0}
        sse = self.squared.sum
        sst = self.truth.m2
        return {
            "rmse": math.sqrt(sse / n),
            "mae": self.abs_sum / n,
            # A constant truth has no variance to explain (scikit-learn says 0 or 1 then).
            "r2": 1.0 - sse / sst if sst > 0 else None,
            "n": n,
        }


Tally = ClassificationTally | RegressionTally


def new_tally(task: Task, n_classes: int) -> Tally:
    return ClassificationTally(n_classes) if task == "classification" else RegressionTally()


def primary_metric(task: str) -> str:
    return PRIMARY[task]


def better(metric: str, challenger: float, champion: float) -> bool:
    """Strictly better: a tie stays with the champion."""
    if HIGHER_IS_BETTER[metric]:
        return challenger > champion
    return challenger < champion


def drift_pct(metric: str, baseline: float | None, current: float | None) -> float | None:
    """Relative degradation of ``metric`` against the baseline in percent; negative when the
    window is better than the baseline; None when either side is unknown or zero."""
    if baseline is None or current is None or baseline == 0:
        return None
    change = (current - baseline) / abs(baseline) * 100.0
    return -change if HIGHER_IS_BETTER[metric] else change
