"""Treelite models read as node arrays: the very trees, covers and leaves of the originals,
and a clear refusal for the models the fast engines do not reproduce."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.family_support import families
from tickerserve.members.treelite import load_treelite
from tickerserve.members.treelite_forest import Unreadable, forest_from_treelite
from tickerserve.publishing.conversion.estimators import convert_estimator


def _read(name: str):
    estimator = next(iter(families()[name].estimators.values()))
    converted = convert_estimator(estimator, stem="m")
    return estimator, forest_from_treelite(load_treelite(converted.data), converted.spec.options)


@pytest.mark.parametrize("name", ["random_forest_regressor", "gradient_boosting_classifier",
                                  "extra_trees_classifier"])  # fmt: skip
def test_scikit_learn_trees_keep_their_structure_and_weighted_sample_counts(name):
    estimator, forest = _read(name)
    trees = np.asarray(estimator.estimators_).ravel()
    assert forest.n_trees == len(trees)
    for t, tree in enumerate(trees):
        inner = tree.tree_
        nodes = slice(int(forest.roots[t]), int(forest.roots[t]) + inner.node_count)
        np.testing.assert_array_equal(forest.cover[nodes], inner.weighted_n_node_samples)
        split = inner.children_left >= 0
        np.testing.assert_array_equal(forest.feature[nodes][split], inner.feature[split])
        np.testing.assert_array_equal(forest.threshold[nodes][split], inner.threshold[split])
    assert not forest.strict  # scikit-learn goes left when x <= threshold


def test_xgboost_trees_keep_their_float32_covers_and_strict_splits():
    estimator, forest = _read("xgboost_classifier")
    trees = json.loads(estimator.get_booster().save_raw("json"))["learner"]["gradient_booster"]
    for t, tree in enumerate(trees["model"]["trees"]):
        nodes = slice(int(forest.roots[t]), int(forest.roots[t]) + len(tree["sum_hessian"]))
        covers = np.asarray(tree["sum_hessian"], dtype=np.float32).astype(np.float64)
        np.testing.assert_array_equal(forest.cover[nodes], covers)
    assert forest.strict  # XGBoost goes left when x < threshold
    assert forest.family == "xgboost" and forest.width == 4


def test_gradient_boosting_starts_from_the_init_score_and_adds_shrunk_leaves():
    estimator, forest = _read("gradient_boosting_regressor")
    np.testing.assert_array_equal(forest.base, [estimator.init_.constant_[0][0]])
    first = estimator.estimators_[0, 0].tree_
    leaves = first.children_left < 0
    end = int(forest.roots[1])
    np.testing.assert_array_equal(
        forest.value[:end, 0][leaves], estimator.learning_rate * first.value[leaves, 0, 0]
    )


def test_hist_gradient_boosting_is_left_to_treelites_own_walker():
    estimator = families()["hist_gradient_boosting_classifier"].estimators["model"]
    converted = convert_estimator(estimator, stem="m")
    with pytest.raises(Unreadable, match="only XGBoost and scikit-learn forests"):
        forest_from_treelite(load_treelite(converted.data), converted.spec.options)
