"""Leaf ids -> margins in the original library's order and precision: the few-rows path and
the batch path give the same bits, and both are the strictly sequential sum."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tree_support import member
from tickerserve.members.leaf_sum import SMALL_BATCH, LeafSum


def _sequential(table: np.ndarray, base: np.ndarray, leaves: np.ndarray, width: int) -> np.ndarray:
    """((base + leaf_0) + leaf_1) + ... per row and column, one addition at a time."""
    out = np.empty((leaves.shape[0], width), dtype=table.dtype)
    for r, row in enumerate(leaves):
        for k in range(width):
            total = base[k]
            for leaf in row[k::width]:
                total = total + table[leaf]
            out[r, k] = total
    return out


@pytest.mark.parametrize("name", ["xgboost_classifier", "gradient_boosting_classifier",
                                  "xgboost_regressor"])  # fmt: skip
def test_boosted_margins_are_the_sequential_sum_in_the_library_precision(name):
    forest = member(name).forest
    assert forest is not None
    adder = LeafSum(forest)
    rng = np.random.default_rng(0)
    leaves = np.stack([rng.choice(np.flatnonzero(forest.tree_of_node == t) , size=40)
                       for t in range(forest.n_trees)], axis=1)  # fmt: skip
    leaves = np.where(forest.left[leaves] < 0, leaves, forest.roots[None, :])  # leaves only
    leaves = np.where(forest.left[leaves] < 0, leaves, _first_leaf(forest)[None, :])
    expected = _sequential(adder.table, adder.base, leaves, forest.width)
    # Both paths (a cumulative sum under SMALL_BATCH rows, a loop over trees above it)
    assert adder.margins(leaves[: SMALL_BATCH - 1]).dtype == expected.dtype
    np.testing.assert_array_equal(adder.margins(leaves[: SMALL_BATCH - 1]),
                                  expected[: SMALL_BATCH - 1])  # fmt: skip
    np.testing.assert_array_equal(adder.margins(leaves), expected)


def test_forest_probabilities_are_averaged_after_the_sequential_sum():
    forest = member("random_forest_classifier").forest
    assert forest is not None
    adder = LeafSum(forest)
    leaves = np.tile(_first_leaf(forest), (40, 1))
    expected = np.zeros(forest.width)
    for leaf in leaves[0]:
        expected = expected + adder.table[leaf]
    expected = expected / forest.n_trees
    for part in (leaves[:1], leaves):
        np.testing.assert_array_equal(adder.margins(part), np.tile(expected, (len(part), 1)))


def _first_leaf(forest) -> np.ndarray:
    """Each tree's first leaf."""
    out = []
    for t in range(forest.n_trees):
        nodes = np.flatnonzero((forest.tree_of_node == t) & (forest.left < 0))
        out.append(nodes[0])
    return np.asarray(out)
