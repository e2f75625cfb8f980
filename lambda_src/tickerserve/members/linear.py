"""Linear meta-learners as JSON coefficients (stacking): Ridge, LinearRegression,
LogisticRegression. Inputs are the members' outputs side by side; nothing is unpickled.

``link`` maps the linear scores to the answer: ``identity`` (a regressor's value),
``softmax`` (one row of coefficients per class) or ``sigmoid`` (one row; binary classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tickerserve.members.links import expit, softmax

LINKS = ("identity", "softmax", "sigmoid")


@dataclass(frozen=True)
class LinearModel:
    """``link(inputs @ coefficients.T + intercept)``, in float64 as scikit-learn computes it."""

    coefficients: list[list[float]]
    intercept: list[float]
    link: str = "softmax"
    estimator: str = ""  # what it was converted from (Ridge, LogisticRegression, ...)

    def validate(self, *, width: int, n_outputs: int, task: str) -> None:
        """Shape checks against the members it combines; raise ``ValueError``."""
        if self.link not in LINKS:
            raise ValueError(f"stacking link must be one of {', '.join(LINKS)}")
        rows = self.coefficients
        expected = {"identity": 1, "sigmoid": 1, "softmax": n_outputs}[self.link]
        if task == "regression" and self.link != "identity":
            raise ValueError("a regression stack has the identity link")
        if task == "classification" and self.link == "identity":
            raise ValueError("a classification stack needs the softmax or sigmoid link")
        if self.link == "sigmoid" and n_outputs != 2:
            raise ValueError("the sigmoid link is for two classes")
        if len(rows) != expected or any(len(r) != width for r in rows):
            raise ValueError(f"stacking coefficients must be {expected} x {width}")
        if len(self.intercept) != expected:
            raise ValueError(f"stacking intercept must have {expected} values")
        values = [v for r in rows for v in r] + list(self.intercept)
        if not all(math.isfinite(v) for v in values):
            raise ValueError("stacking coefficients must be finite")

    def prepared(self) -> PreparedLinear:
        return PreparedLinear(
            np.asarray(self.coefficients, dtype=np.float64).T,
            np.asarray(self.intercept, dtype=np.float64),
            self.link,
        )


@dataclass(frozen=True)
class PreparedLinear:
    """Arrays built once per loaded model."""

    weights: np.ndarray  # (width, rows)
    intercept: np.ndarray
    link: str

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        scores = inputs @ self.weights + self.intercept
        if self.link == "identity":
            return scores
        if self.link == "sigmoid":
            p = expit(scores[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(scores, axis=1)
