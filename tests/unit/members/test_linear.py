"""Linear meta-learners as JSON coefficients: they answer what the scikit-learn original
answers, and coefficients that do not fit the members they combine are refused."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

from tickerserve.members.linear import LinearModel


def inputs(seed: int, n: int = 200, width: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, width))


def as_linear(estimator, link: str) -> LinearModel:
    coefficients = np.atleast_2d(estimator.coef_).tolist()
    intercept = np.atleast_1d(estimator.intercept_).tolist()
    return LinearModel(coefficients, intercept, link, type(estimator).__name__)


@pytest.mark.parametrize("estimator", [Ridge(alpha=0.5), LinearRegression()])
def test_a_regression_stack_answers_what_scikit_learn_answers(estimator):
    x = inputs(0)
    y = x @ [0.5, -1.0, 2.0] + 0.1
    fitted = estimator.fit(x, y)
    linear = as_linear(fitted, "identity")
    linear.validate(width=3, n_outputs=1, task="regression")
    np.testing.assert_allclose(
        linear.prepared().predict(x)[:, 0], fitted.predict(x), rtol=1e-12, atol=1e-12
    )


def test_a_binary_logistic_stack_answers_both_probabilities():
    x = inputs(1)
    fitted = LogisticRegression().fit(x, (x[:, 0] + x[:, 1] > 0).astype(int))
    linear = as_linear(fitted, "sigmoid")
    linear.validate(width=3, n_outputs=2, task="classification")
    np.testing.assert_allclose(linear.prepared().predict(x), fitted.predict_proba(x), rtol=1e-12)


def test_a_multiclass_logistic_stack_answers_softmax_probabilities():
    x = inputs(2, width=4)
    fitted = LogisticRegression().fit(x, np.argmax(x[:, :3], axis=1))
    linear = as_linear(fitted, "softmax")
    linear.validate(width=4, n_outputs=3, task="classification")
    np.testing.assert_allclose(linear.prepared().predict(x), fitted.predict_proba(x), rtol=1e-12)


@pytest.mark.parametrize(
    ("model", "width", "n_outputs", "task", "message"),
    [
        (LinearModel([[1.0]], [0.0], "relu"), 1, 1, "regression",
         "stacking link must be one of identity, softmax, sigmoid"),
        (LinearModel([[1.0]], [0.0], "softmax"), 1, 1, "regression",
         "a regression stack has the identity link"),
        (LinearModel([[1.0]], [0.0], "identity"), 1, 2, "classification",
         "a classification stack needs the softmax or sigmoid link"),
        (LinearModel([[1.0]], [0.0], "sigmoid"), 1, 3, "classification",
         "the sigmoid link is for two classes"),
        (LinearModel([[1.0, 2.0]], [0.0], "identity"), 3, 1, "regression",
         "stacking coefficients must be 1 x 3"),
        (LinearModel([[1.0, 2.0]] * 2, [0.0], "softmax"), 2, 3, "classification",
         "stacking coefficients must be 3 x 2"),
        (LinearModel([[1.0]], [0.0, 1.0], "identity"), 1, 1, "regression",
         "stacking intercept must have 1 values"),
        (LinearModel([[math.inf]], [0.0], "identity"), 1, 1, "regression",
         "stacking coefficients must be finite"),
        (LinearModel([[1.0]], [math.nan], "identity"), 1, 1, "regression",
         "stacking coefficients must be finite"),
    ],
)  # fmt: skip
def test_coefficients_that_do_not_fit_the_members_are_refused(
    model: LinearModel, width: int, n_outputs: int, task: str, message: str
):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model.validate(width=width, n_outputs=n_outputs, task=task)
