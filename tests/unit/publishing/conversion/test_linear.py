"""Linear meta-learners become JSON coefficients: Ridge and LinearRegression with the identity
link, LogisticRegression with sigmoid or softmax; what cannot be served that way is refused."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import ElasticNet, LinearRegression, LogisticRegression, Ridge
from sklearn.svm import LinearSVC

from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.linear import convert_linear


def inputs(width: int = 4, n: int = 120) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, width))


@pytest.mark.parametrize("estimator", [Ridge(alpha=0.3), LinearRegression(), ElasticNet(0.01)])
def test_a_regressor_becomes_identity_coefficients_that_predict_alike(estimator):
    x = inputs()
    fitted = estimator.fit(x, x @ [1.0, -2.0, 0.5, 0.0] + 0.2)
    converted = convert_linear(fitted)
    assert (converted.model.link, converted.n_inputs, converted.classes) == ("identity", 4, None)
    assert converted.model.estimator == type(estimator).__name__
    mine = converted.model.prepared().predict(x)
    np.testing.assert_allclose(mine, converted.reference(x), rtol=1e-12, atol=1e-12)
    assert converted.reference(x).shape == (len(x), 1)


def test_a_binary_logistic_regression_has_the_sigmoid_link():
    x = inputs()
    fitted = LogisticRegression().fit(x, np.where(x[:, 0] > 0, "UP", "DOWN"))
    converted = convert_linear(fitted)
    assert (converted.model.link, converted.classes) == ("sigmoid", ["DOWN", "UP"])
    np.testing.assert_allclose(
        converted.model.prepared().predict(x), converted.reference(x), rtol=1e-12
    )


def test_a_multiclass_logistic_regression_has_the_softmax_link():
    x = inputs()
    fitted = LogisticRegression().fit(x, np.argmax(x[:, :3], axis=1))
    converted = convert_linear(fitted)
    assert converted.model.link == "softmax" and len(converted.model.coefficients) == 3
    np.testing.assert_allclose(
        converted.model.prepared().predict(x), converted.reference(x), rtol=1e-12
    )


def test_other_meta_learners_and_unfitted_ones_are_refused():
    with pytest.raises(NotConvertible) as caught:
        convert_linear(LinearSVC())
    assert caught.value.message == (
        "meta-learner sklearn.LinearSVC cannot be served: supported are Ridge, "
        "LinearRegression and LogisticRegression (scikit-learn)"
    )
    with pytest.raises(NotConvertible, match=r"^the Ridge meta-learner is not fitted$"):
        convert_linear(Ridge())


def test_a_multi_output_regressor_is_refused():
    x = inputs()
    fitted = Ridge().fit(x, np.column_stack([x[:, 0], x[:, 1]]))
    with pytest.raises(NotConvertible, match=r"^a multi-output Ridge meta-learner is not suppor"):
        convert_linear(fitted)
