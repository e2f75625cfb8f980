"""The tree graphs: onnxruntime finds the same leaf as a plain walk of the node arrays, in
one ensemble or cut into many, and a one-leaf tree is added like any other."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx

from tests.tree_support import member
from tickerserve.members.forest import Forest, probe_rows
from tickerserve.members.onnx_engine import OnnxSession
from tickerserve.members.tree_graphs import leaves_graph, sum_graph


def _walk(forest: Forest, rows: np.ndarray) -> np.ndarray:
    """(n_rows, n_trees) global leaf ids, one node at a time (the reference)."""
    x = rows.astype(np.float32)
    t32 = forest.threshold32()
    out = np.empty((len(x), forest.n_trees), dtype=np.intp)
    for r, row in enumerate(x):
        for t, node in enumerate(forest.roots.tolist()):
            while forest.left[node] >= 0:
                value = row[forest.feature[node]]
                go_left = forest.default_left[node] if np.isnan(value) else value <= t32[node]
                node = forest.left[node] if go_left else forest.right[node]
            out[r, t] = node
    return out


def test_the_leaf_graph_finds_the_walks_leaves_in_one_ensemble_or_many():
    forest = member("random_forest_classifier").forest
    assert forest is not None
    rows = probe_rows(forest, 200, seed=2)
    expected = _walk(forest, rows)
    for nodes_per_chunk in (10**9, 200, 1):  # one ensemble, a few, one per tree
        graph = leaves_graph(forest, nodes_per_chunk)
        onnx.checker.check_model(onnx.load_from_string(graph.model))
        found = OnnxSession(graph.model).run(rows).astype(np.intp) + graph.roots
        np.testing.assert_array_equal(found, expected)


def test_a_one_leaf_tree_adds_its_value_in_both_graph_kinds():
    # Given gradient boosting whose first tree became a single leaf (as XGBoost and scikit-
    # learn make when no split helps)
    forest = member("gradient_boosting_regressor").forest
    assert forest is not None
    stump = _with_first_tree_a_leaf(forest, 0.125)
    rows = probe_rows(stump, 50)
    expected = stump.base + stump.value[_walk(stump, rows), 0].sum(axis=1)
    mine = OnnxSession(sum_graph(stump)).run(rows.astype(np.float32))
    np.testing.assert_allclose(mine[:, 0], expected, rtol=1e-15, atol=1e-15)


def _with_first_tree_a_leaf(forest: Forest, value: float) -> Forest:
    """The same forest with tree 0 cut down to its root, made a leaf of ``value``."""
    end = int(forest.roots[1])
    keep = np.r_[0, end : forest.n_nodes]
    shift = end - 1

    def moved(ids: np.ndarray) -> np.ndarray:
        return np.where(ids >= 0, ids - shift, -1).astype(np.int32)

    left, right = moved(forest.left[keep]), moved(forest.right[keep])
    left[0] = right[0] = -1
    values = forest.value[keep].copy()
    values[0] = value
    feature = forest.feature[keep].copy()
    feature[0] = -1
    out = dataclasses.replace(
        forest, left=left, right=right, feature=feature, threshold=forest.threshold[keep],
        default_left=forest.default_left[keep] & (left >= 0), value=values,
        cover=forest.cover[keep], roots=np.r_[0, forest.roots[1:] - shift].astype(np.int32),
    )  # fmt: skip
    out.validate()
    return out
