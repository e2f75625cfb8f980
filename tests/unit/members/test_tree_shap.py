"""TreeSHAP over the stored trees is shap's exact path-dependent TreeSHAP: against the shap
package (its C++ algorithm in double precision), against a brute-force Shapley sum over every
coalition, and adding up to the model's own margins."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import shap
from sklearn.ensemble import GradientBoostingRegressor

from tests.family_support import families, rows
from tests.tree_support import hard_rows, member
from tickerserve.members.forest import Forest
from tickerserve.members.tree_shap import enumerate_paths, shap_values
from tickerserve.members.treelite import load_treelite
from tickerserve.members.treelite_forest import forest_from_treelite
from tickerserve.publishing.conversion.estimators import convert_estimator

TOLERANCE = 1e-9  # shap's own algorithm in double: we agree to about 1e-14


def _explain(forest: Forest, x: np.ndarray) -> np.ndarray:
    paths = enumerate_paths(forest)
    return np.stack([shap_values(paths, row) for row in x])  # (rows, features, width)


def _as_3d(values: object) -> np.ndarray:
    array = np.asarray(values)
    return array[:, :, None] if array.ndim == 2 else array


def _sklearn_dict_model(estimator) -> dict:
    """shap's dict model of a multiclass GradientBoostingClassifier (shap refuses the
    estimator itself), from scikit-learn's own arrays: learning_rate * value per class."""
    trees = []
    grid = estimator.estimators_
    for stage in range(grid.shape[0]):
        for k in range(grid.shape[1]):
            tree = grid[stage, k].tree_
            values = np.zeros((tree.node_count, grid.shape[1]))
            values[:, k] = estimator.learning_rate * tree.value[:, 0, 0]
            trees.append({
                "children_left": tree.children_left, "children_right": tree.children_right,
                "children_default": tree.children_left, "features": tree.feature,
                "thresholds": tree.threshold, "values": values,
                "node_sample_weight": tree.weighted_n_node_samples,
            })  # fmt: skip
    return {"trees": trees, "tree_output": "raw_value", "input_dtype": np.float64}


def _xgboost_dict_model(estimator) -> dict:
    """shap's dict model of an XGBoost model, from XGBoost's own JSON. shap.TreeExplainer on
    the estimator itself does not run shap's algorithm: it calls XGBoost's ``pred_contribs``,
    which works in float32 (1e-6 to 3e-6 away from the exact values at a few hundred trees).
    So the exact reference is shap's double-precision algorithm on the same trees: XGBoost's
    float32 covers and leaves, its ``x < t`` as shap's ``x <= nextafter(t, -inf)``."""
    doc = json.loads(estimator.get_booster().save_raw("json"))
    width = max(1, int(doc["learner"]["learner_model_param"]["num_class"]))
    trees = []
    for t, tree in enumerate(doc["learner"]["gradient_booster"]["model"]["trees"]):
        left = np.asarray(tree["left_children"])
        right = np.asarray(tree["right_children"])
        condition = np.asarray(tree["split_conditions"], dtype=np.float32)
        leaf = left < 0
        values = np.zeros((len(left), width))
        values[leaf, t % width] = condition[leaf]
        below = np.nextafter(condition, np.float32(-np.inf)).astype(np.float64)
        trees.append({
            "children_left": left, "children_right": right,
            "children_default": np.where(np.asarray(tree["default_left"], bool), left, right),
            "features": np.where(leaf, -2, np.asarray(tree["split_indices"])),
            "thresholds": np.where(leaf, 0.0, below), "values": values,
            "node_sample_weight": np.asarray(tree["sum_hessian"], np.float32).astype(np.float64),
        })  # fmt: skip
    return {"trees": trees, "tree_output": "raw_value", "input_dtype": np.float64}


@pytest.mark.parametrize(
    "name",
    ["random_forest_classifier", "random_forest_regressor", "extra_trees_classifier",
     "extra_trees_regressor", "gradient_boosting_binary", "gradient_boosting_regressor"],
)  # fmt: skip
def test_scikit_learn_trees_match_shaps_tree_explainer(name):
    family = families()[name]
    estimator = family.estimators["model"]
    forest = member(name).forest
    assert forest is not None
    x = hard_rows(estimator, 12, forest.n_features, missing=family.missing)
    x32 = x.astype(np.float32).astype(np.float64)  # the trees compare float32 values
    expected = _as_3d(shap.TreeExplainer(estimator).shap_values(x32, check_additivity=False))
    mine = _explain(forest, x)
    if name.endswith("_binary"):  # shap explains the positive class's log-odds
        expected = expected[:, :, -1:]
    np.testing.assert_allclose(mine, expected, rtol=0, atol=TOLERANCE)


def test_multiclass_gradient_boosting_matches_shaps_algorithm():
    family = families()["gradient_boosting_classifier"]
    estimator = family.estimators["model"]
    forest = member("gradient_boosting_classifier").forest
    assert forest is not None
    x = hard_rows(estimator, 12, forest.n_features, missing=False)
    reference = shap.TreeExplainer(_sklearn_dict_model(estimator))
    expected = _as_3d(reference.shap_values(x.astype(np.float32).astype(np.float64)))
    np.testing.assert_allclose(_explain(forest, x), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name", ["xgboost_classifier", "xgboost_binary", "xgboost_regressor"])
def test_xgboost_matches_shaps_algorithm_in_double_precision(name):
    estimator = families()[name].estimators["model"]
    forest = member(name).forest
    assert forest is not None
    x = hard_rows(estimator, 12, forest.n_features, missing=True)
    reference = shap.TreeExplainer(_xgboost_dict_model(estimator))
    expected = _as_3d(reference.shap_values(x.astype(np.float32).astype(np.float64),
                                            check_additivity=False))  # fmt: skip
    np.testing.assert_allclose(_explain(forest, x), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(
    "name",
    ["xgboost_classifier", "random_forest_classifier", "gradient_boosting_classifier",
     "extra_trees_regressor"],
)  # fmt: skip
def test_the_expected_value_plus_contributions_is_the_models_margin(name):
    loaded = member(name)
    assert loaded.forest is not None
    x = rows(20, missing=families()[name].missing)
    paths = enumerate_paths(loaded.forest)
    total = paths.expected + np.stack([shap_values(paths, r).sum(axis=0) for r in x])
    margins = loaded.margins(x)
    # XGBoost adds its trees in float32: its margin is within float32 rounding of the sum.
    tolerance = (
        1e-6 * np.maximum(1.0, np.abs(margins)) if loaded.forest.family == "xgboost" else 1e-12
    )
    assert np.all(np.abs(total - margins) <= tolerance)


def test_brute_force_shapley_values_of_the_path_dependent_game():
    # Given a small model with missing values routed by default directions
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 4))
    y = x[:, 0] * x[:, 1] + np.sin(x[:, 2]) + 0.3 * x[:, 3]
    estimator = GradientBoostingRegressor(n_estimators=4, max_depth=3, random_state=0).fit(x, y)
    converted = convert_estimator(estimator, stem="m")
    forest = forest_from_treelite(load_treelite(converted.data), converted.spec.options)
    probes = rng.normal(size=(6, 4))
    probes[0, 1] = probes[2, 3] = probes[4, 0] = np.nan
    # Then each contribution is the Shapley value over every coalition of the 4 features
    # of v(S) = the trees' expected output given the features in S (covers weight the rest)
    mine = _explain(forest, probes)[:, :, 0]
    for row, got in zip(probes, mine, strict=True):
        np.testing.assert_allclose(got, _brute_force(forest, row), rtol=0, atol=1e-12)


def _brute_force(forest: Forest, row: np.ndarray) -> np.ndarray:
    n = forest.n_features
    x = row.astype(np.float32)
    t32 = forest.threshold32()

    def expected(node: int, known: frozenset[int]) -> float:
        if forest.left[node] < 0:
            return float(forest.value[node, 0])
        feature = int(forest.feature[node])
        left, right = int(forest.left[node]), int(forest.right[node])
        if feature in known:
            go_left = forest.default_left[node] if np.isnan(x[feature]) else x[feature] <= t32[node]
            return expected(left if go_left else right, known)
        share = forest.cover[left] / forest.cover[node]
        return share * expected(left, known) + (1 - share) * expected(right, known)

    def value(known: frozenset[int]) -> float:
        return sum(expected(int(root), known) for root in forest.roots)

    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                known = frozenset(subset)
                phi[i] += weight * (value(known | {i}) - value(known))
    return phi


def test_a_model_without_covers_cannot_be_explained():
    forest = member("gradient_boosting_regressor").forest
    assert forest is not None
    import dataclasses

    blind = dataclasses.replace(forest, cover=np.full(forest.n_nodes, np.nan))
    with pytest.raises(ValueError, match="kept no node covers"):
        enumerate_paths(blind)
