"""A forest's node arrays: one float32 comparison for both libraries' splits, and the
structural checks that keep every engine inside its arrays."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.tree_support import member
from tickerserve.members.forest import Forest, probe_rows


def _tiny(threshold: float, *, strict: bool) -> Forest:
    """One split on feature 0 at ``threshold``: leaf values 1 (left) and 2 (right)."""
    return Forest(
        family="boosting", n_features=1, width=1,
        left=np.asarray([1, -1, -1], np.int32), right=np.asarray([2, -1, -1], np.int32),
        feature=np.asarray([0, -1, -1], np.int32), threshold=np.asarray([threshold, 0.0, 0.0]),
        strict=strict, default_left=np.asarray([True, False, False]),
        value=np.asarray([[0.0], [1.0], [2.0]]), cover=np.asarray([3.0, 2.0, 1.0]),
        roots=np.asarray([0], np.int32), base=np.zeros(1),
    )  # fmt: skip


def _float32_values_around(t: float) -> np.ndarray:
    """Every float32 within a few steps of ``t``, and the special values."""
    center = np.float32(t)
    near = [center]
    low = high = center
    for _ in range(4):
        low = np.nextafter(low, np.float32(-np.inf))
        high = np.nextafter(high, np.float32(np.inf))
        near += [low, high]
    special = [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 1e-38, 3.4e38, -3.4e38]
    return np.asarray(near + special, dtype=np.float32)


@pytest.mark.parametrize(
    "threshold", [0.0, -0.0, 0.1, -2.5, 1e-40, 0.30000000000000004, 1.0000001, 7.5e37]
)
def test_one_float32_comparison_is_both_libraries_comparison(threshold):
    x = _float32_values_around(threshold)
    # XGBoost: float32(x) < float32(t)
    t32 = np.float32(threshold)
    assert np.array_equal(x <= _tiny(float(t32), strict=True).threshold32()[0], x < t32)
    # scikit-learn: double(float32(x)) <= t, t a float64 that is often not a float32
    sk = _tiny(threshold, strict=False).threshold32()[0]
    assert np.array_equal(x <= sk, x.astype(np.float64) <= threshold)


def test_an_infinite_threshold_sends_every_number_left():
    # scikit-learn's split that separates missing values from all others
    forest = _tiny(np.inf, strict=False)
    forest.validate()
    x = np.asarray([-np.inf, 0.0, 3.4e38, np.inf], dtype=np.float32)
    assert np.all(x <= forest.threshold32()[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"left": np.asarray([0, -1, -1], np.int32)}, "child must follow its parent"),
        ({"right": np.asarray([5, -1, -1], np.int32)}, "child must follow its parent"),
        ({"right": np.asarray([-1, -1, -1], np.int32)}, "two children"),
        ({"feature": np.asarray([1, -1, -1], np.int32)}, "split features must be below 1"),
        ({"threshold": np.asarray([np.nan, 0.0, 0.0])}, "thresholds must be numbers"),
        ({"value": np.asarray([[0.0], [np.inf], [2.0]])}, "leaf values must be finite"),
        ({"cover": np.asarray([3.0, -1.0, 1.0])}, "covers must be finite and not negative"),
        ({"roots": np.asarray([1], np.int32)}, "roots must be increasing"),
        ({"family": "lightgbm"}, "unknown tree family"),
    ],
)
def test_a_malformed_forest_is_refused_before_any_engine_walks_it(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(_tiny(0.5, strict=False), **change).validate()


def test_covers_the_model_did_not_keep_are_known_to_be_missing():
    forest = dataclasses.replace(_tiny(0.5, strict=False), cover=np.full(3, np.nan))
    forest.validate()
    assert not forest.has_cover
    assert _tiny(0.5, strict=False).has_cover


def test_leaf_outputs_are_what_each_leaf_adds_to_each_margin():
    forest = member("xgboost_classifier").forest
    assert forest is not None
    outputs = forest.leaf_outputs()
    trees = forest.tree_of_node
    # A boosted tree adds to its own class's margin only; a forest's leaves share the average.
    assert np.array_equal(np.flatnonzero(outputs.any(axis=0)), np.arange(forest.width))
    for column in range(forest.width):
        assert np.all(outputs[forest.column[trees] != column, column] == 0)
    rf = member("random_forest_classifier").forest
    assert rf is not None
    np.testing.assert_allclose(rf.leaf_outputs().sum(axis=1)[rf.left < 0] * rf.n_trees, 1.0)


def test_probe_rows_sit_on_thresholds_and_miss_values():
    forest = member("gradient_boosting_regressor").forest
    assert forest is not None
    rows = probe_rows(forest, 64).astype(np.float32)
    inner = forest.left >= 0
    on = np.isin(rows[:, forest.feature[inner][0]], forest.threshold[inner].astype(np.float32))
    assert on.any()
    assert np.isnan(rows).any() and np.all(np.isnan(rows[0]))
