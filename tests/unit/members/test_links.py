"""scikit-learn's links without scipy: the same bits as ``scipy.special.expit`` and
``softmax`` over the whole float64 range, and a stacked classifier that answers exactly what
its LogisticRegression meta-learner answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special
from sklearn.linear_model import LogisticRegression

from tickerserve.members.links import expit, softmax
from tickerserve.publishing.conversion.linear import convert_linear

# Below this, exp(-x) overflows: scipy answers 0, we answer exp(x) (a subnormal number).
OVERFLOW = -math.log(np.finfo(np.float64).max)
ANY_FLOAT = st.floats(allow_nan=False, width=64)
MARGINS = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=9), elements=ANY_FLOAT
)


@settings(max_examples=400, deadline=None)
@given(MARGINS)
def test_expit_is_scipys_bit_for_bit_wherever_scipy_does_not_underflow(x):
    mine = expit(x)
    assert mine.shape == x.shape
    exact = x >= OVERFLOW
    np.testing.assert_array_equal(mine[exact], special.expit(x[exact]))
    # Then below it the true value, exp(x), not scipy's premature 0
    np.testing.assert_array_equal(mine[~exact], np.exp(x[~exact]))


def test_expit_at_the_edges():
    x = np.array([-np.inf, -1e308, -745.2, -745.0, -709.9, -709.7, -36.7, 0.0, 38.0, 1e308, np.inf])
    mine = expit(x)
    assert mine[0] == 0.0 == mine[1] == mine[2]  # exp(x) itself underflows there
    assert mine[3] == 5e-324 and special.expit(-745.0) == 0.0  # the smallest subnormal
    assert mine[4] == pytest.approx(math.exp(-709.9), rel=1e-15)
    assert mine[5] == special.expit(-709.7) > 0
    assert mine[6] == special.expit(-36.7) and mine[7] == 0.5
    assert mine[8] == mine[9] == mine[10] == 1.0
    assert np.isnan(expit(np.array([np.nan]))[0])


def test_expit_of_many_rows_matches_scipy_on_a_wide_normal_sample():
    x = np.random.default_rng(7).normal(scale=40.0, size=50_000)
    np.testing.assert_array_equal(expit(x), special.expit(x))


@settings(max_examples=400, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=12),
        elements=st.floats(min_value=-1e300, max_value=1e300),
    )
)
def test_softmax_is_scipys_bit_for_bit_and_sums_to_one(x):
    mine = softmax(x, axis=1)
    np.testing.assert_array_equal(mine, special.softmax(x, axis=1))
    assert np.all(np.isfinite(mine))
    np.testing.assert_allclose(mine.sum(axis=1), 1.0, rtol=1e-13)


def test_softmax_of_huge_scores_does_not_overflow():
    x = np.array([[1000.0, 1000.0], [-1000.0, 0.0], [710.0, -710.0]])
    mine = softmax(x, axis=1)
    np.testing.assert_array_equal(mine, special.softmax(x, axis=1))
    np.testing.assert_array_equal(mine, [[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])


@pytest.mark.parametrize("n_classes", [2, 4])
def test_a_logistic_meta_learner_answers_scikit_learns_probabilities(n_classes):
    # Given a LogisticRegression stacked over member outputs, converted to JSON coefficients
    rng = np.random.default_rng(n_classes)
    inputs = rng.normal(scale=3.0, size=(400, 6))
    labels = rng.integers(0, n_classes, size=400)
    meta = LogisticRegression(C=50.0).fit(inputs, labels)
    converted = convert_linear(meta)
    assert converted.model.link == ("sigmoid" if n_classes == 2 else "softmax")
    # When the function computes the probabilities (far-out rows included)
    rows = np.vstack([inputs, rng.normal(scale=300.0, size=(50, 6))])
    mine = converted.model.prepared().predict(rows)
    # Then they are scikit-learn's, bit for bit
    np.testing.assert_array_equal(mine, meta.predict_proba(rows))
