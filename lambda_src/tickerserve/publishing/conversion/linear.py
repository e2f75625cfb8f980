"""Linear meta-learners -> JSON coefficients: Ridge, LinearRegression (identity link) and
LogisticRegression (sigmoid for two classes, softmax for more)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tickerserve.members.linear import LinearModel
from tickerserve.publishing.conversion import NotConvertible

REGRESSORS = ("Ridge", "LinearRegression", "RidgeCV", "Lasso", "ElasticNet")
CLASSIFIERS = ("LogisticRegression",)


@dataclass(frozen=True)
class ConvertedLinear:
    """A meta-learner as coefficients, and the original to compare it with."""

    model: LinearModel
    n_inputs: int
    reference: Callable[[np.ndarray], np.ndarray]  # (n_rows, n_outputs)
    classes: list[Any] | None = None


def convert_linear(obj: Any) -> ConvertedLinear:
    kind = type(obj).__name__
    module = type(obj).__module__.split(".")[0]
    if module != "sklearn" or kind not in (*REGRESSORS, *CLASSIFIERS):
        raise NotConvertible(
            f"meta-learner {module}.{kind} cannot be served: supported are Ridge, "
            "LinearRegression and LogisticRegression (scikit-learn)"
        )
    if not hasattr(obj, "coef_"):
        raise NotConvertible(f"the {kind} meta-learner is not fitted")
    coef = np.atleast_2d(np.asarray(obj.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(obj.intercept_, dtype=np.float64))
    if intercept.size == 1 and coef.shape[0] == 1:
        intercept = intercept.reshape(1)
    if kind in REGRESSORS:
        if coef.shape[0] != 1:
            raise NotConvertible(f"a multi-output {kind} meta-learner is not supported")
        model = LinearModel(coef.tolist(), intercept.tolist(), "identity", kind)
        return ConvertedLinear(
            model, coef.shape[1], lambda x: np.asarray(obj.predict(x)).reshape(-1, 1)
        )
    if getattr(obj, "multi_class", "auto") == "ovr" and coef.shape[0] > 1:
        raise NotConvertible("a one-vs-rest LogisticRegression meta-learner is not supported")
    link = "sigmoid" if coef.shape[0] == 1 else "softmax"
    model = LinearModel(coef.tolist(), intercept.tolist(), link, kind)
    return ConvertedLinear(
        model, coef.shape[1], lambda x: np.asarray(obj.predict_proba(x)), list(obj.classes_)
    )
