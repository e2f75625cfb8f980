"""A ``Forest`` as an ONNX graph of ``ai.onnx.ml`` tree ensembles, for onnxruntime.

Two graphs, each exact by construction (and checked against the Treelite model at load):

- ``leaves_graph`` (RandomForest, ExtraTrees): onnxruntime only finds the leaves. One
  ``TreeEnsemble`` target per tree whose leaf weight is the leaf's node id within its tree
  (exact in float32 far beyond any real tree), so the output row holds every tree's leaf,
  and ``LeafSum`` adds the leaves as scikit-learn does. The trees are cut into
  chunks of about ``NODES_PER_CHUNK`` nodes, one ensemble node each: onnxruntime walks a row
  through all the trees of one ensemble before the next row, and a chunk that fits in the
  CPU cache is walked 1.5-2x faster than a 350,000-node forest in one piece.
- ``sum_graph`` (XGBoost, GradientBoosting): onnxruntime adds the leaves itself, in the
  original's order and precision, one single-target ensemble per margin column:
  * XGBoost: opset-3 ``TreeEnsembleRegressor`` in float32, XGBoost's own ``BRANCH_LT`` on
    its float32 thresholds, and the base margin as a one-leaf tree *first* (onnxruntime adds
    ``base_values`` after the trees; XGBoost starts from the base margin);
  * GradientBoosting: opset-5 ``TreeEnsemble`` in float64 (double inputs, thresholds and
    leaves), the init score folded into the first stage's leaves (``init + lr * v`` is
    scikit-learn's own first addition).

Splits use the float32 comparison of ``Forest.threshold32`` (``BRANCH_LEQ``) unless stated;
a missing value follows ``missing_value_tracks_true`` = the node's default-left flag. The
session must run one intra-op thread: with more, onnxruntime may split one row's trees
between threads and merge partial sums, another order (``onnx_engine`` sees to it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tickerserve.members import onnx_proto as proto
from tickerserve.members.forest import Forest

NODES_PER_CHUNK = 8000
ML_DOMAIN = "ai.onnx.ml"
_OPSET = 21


@dataclass(frozen=True)
class LeavesGraph:
    """A leaves graph and how to turn its output into global leaf ids."""

    model: bytes
    roots: np.ndarray  # (n_trees,) add to the graph's (tree-local) ids


def leaves_graph(forest: Forest, nodes_per_chunk: int = NODES_PER_CHUNK) -> LeavesGraph:
    """float32 rows -> (n_rows, n_trees) float32 leaf ids, local to each tree (opset-5
    ensembles: as fast as opset 3, and a session holds about half the memory, its node modes
    and thresholds being tensors rather than lists of strings and numbers)."""
    chunks = _chunks(forest, nodes_per_chunk)
    names = [f"leaves{i}" for i in range(len(chunks))]
    nodes = [
        _v5_ensemble(forest, trees, name, leaves=True)
        for trees, name in zip(chunks, names, strict=True)
    ]
    model = _model(nodes, names, forest.n_features, forest.n_trees, proto.FLOAT32, ml_opset=5)
    return LeavesGraph(model, forest.roots.astype(np.intp))


def sum_graph(forest: Forest) -> bytes:
    """Rows -> (n_rows, width) margins added by onnxruntime: float32 for XGBoost, float64
    (double inputs) for gradient boosting."""
    columns = forest.column
    names = [f"margin{k}" for k in range(forest.width)]
    if forest.family == "xgboost":
        nodes = [
            _v3_ensemble(forest, np.flatnonzero(columns == k), name,
                         first_leaf=float(forest.base[k]))
            for k, name in enumerate(names)
        ]  # fmt: skip
        return _model(nodes, names, forest.n_features, forest.width, proto.FLOAT32, ml_opset=3)
    if forest.family != "boosting":
        raise ValueError("onnxruntime adds the leaves of XGBoost and GradientBoosting only")
    nodes = [
        _v5_ensemble(forest, np.flatnonzero(columns == k), name, init=float(forest.base[k]))
        for k, name in enumerate(names)
    ]
    return _model(nodes, names, forest.n_features, forest.width, proto.DOUBLE, ml_opset=5)


def _chunks(forest: Forest, nodes_per_chunk: int) -> list[np.ndarray]:
    sizes = np.diff(np.append(forest.roots, forest.n_nodes))
    chunks: list[np.ndarray] = []
    start, count = 0, 0
    for t, size in enumerate(sizes.tolist()):
        if t > start and count + size > nodes_per_chunk:
            chunks.append(np.arange(start, t))
            start, count = t, 0
        count += size
    chunks.append(np.arange(start, forest.n_trees))
    return chunks


def _tree_nodes(forest: Forest, trees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global ids of the nodes of ``trees`` (in order) and each one's position in ``trees``."""
    starts = forest.roots[trees].astype(np.int64)
    ends = np.append(forest.roots, forest.n_nodes)[trees + 1].astype(np.int64)
    sizes = ends - starts
    position = np.repeat(np.arange(len(trees)), sizes)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    return np.arange(int(sizes.sum())) + offsets, position


def _v3_ensemble(forest: Forest, trees: np.ndarray, name: str, *, first_leaf: float) -> bytes:
    """A ``TreeEnsembleRegressor`` adding ``trees`` in float32 after a one-leaf tree of
    ``first_leaf`` (XGBoost's base margin)."""
    nodes, position = _tree_nodes(forest, trees)
    local = nodes - forest.roots[trees][position]
    leaf = forest.left[nodes] < 0
    tree_ids = position + 1  # tree 0 is the base margin's
    if forest.strict:  # XGBoost's own comparison on its own float32 thresholds
        modes = np.where(leaf, "LEAF", "BRANCH_LT")
        values = np.where(leaf, 0.0, forest.threshold[nodes]).astype(np.float32)
    else:
        modes = np.where(leaf, "LEAF", "BRANCH_LEQ")
        values = np.where(leaf, np.float32(0), forest.threshold32()[nodes])
    roots = forest.roots[trees][position]
    true_ids = np.where(leaf, 0, forest.left[nodes] - roots)
    false_ids = np.where(leaf, 0, forest.right[nodes] - roots)
    missing = (forest.default_left[nodes] & ~leaf).astype(np.int64)
    features = np.where(leaf, 0, forest.feature[nodes])
    leaf_nodes = np.flatnonzero(leaf)
    target_trees = tree_ids[leaf_nodes]
    target_nodes = local[leaf_nodes]
    weights = forest.value[nodes[leaf_nodes], 0].astype(np.float32)
    # Tree 0: a single leaf holding the base margin.
    tree_ids = np.concatenate([[0], tree_ids])
    local = np.concatenate([[0], local])
    features = np.concatenate([[0], features])
    modes = np.concatenate([["LEAF"], modes])
    values = np.concatenate([np.zeros(1, np.float32), values])
    true_ids = np.concatenate([[0], true_ids])
    false_ids = np.concatenate([[0], false_ids])
    missing = np.concatenate([[0], missing])
    target_trees = np.concatenate([[0], target_trees])
    target_nodes = np.concatenate([[0], target_nodes])
    target_ids = np.zeros(len(target_trees), dtype=np.int64)
    weights = np.concatenate([np.asarray([first_leaf], np.float32), weights])
    attributes = [
        proto.Attribute.of_int("n_targets", 1),
        proto.Attribute.of_string("aggregate_function", "SUM"),
        proto.Attribute.of_string("post_transform", "NONE"),
        proto.Attribute.of_ints("nodes_treeids", tree_ids),
        proto.Attribute.of_ints("nodes_nodeids", local),
        proto.Attribute.of_ints("nodes_featureids", features),
        proto.Attribute.of_strings("nodes_modes", modes.tolist()),
        proto.Attribute.of_floats("nodes_values", values),
        proto.Attribute.of_ints("nodes_truenodeids", true_ids),
        proto.Attribute.of_ints("nodes_falsenodeids", false_ids),
        proto.Attribute.of_ints("nodes_missing_value_tracks_true", missing),
        proto.Attribute.of_ints("target_treeids", target_trees),
        proto.Attribute.of_ints("target_nodeids", target_nodes),
        proto.Attribute.of_ints("target_ids", target_ids),
        proto.Attribute.of_floats("target_weights", weights),
    ]
    return proto.node("TreeEnsembleRegressor", ["X"], [name], attributes, domain=ML_DOMAIN)


def _v5_ensemble(
    forest: Forest, trees: np.ndarray, name: str, *, leaves: bool = False, init: float = 0.0
) -> bytes:
    """An opset-5 ``TreeEnsemble`` over ``trees``: one target per tree holding its leaf ids
    in float32 (``leaves``), or one float64 sum with ``init`` folded into the first tree's
    leaves. Opset 5 lists inner nodes and leaves apart and has no one-leaf tree: such a tree
    gets a dummy split whose two children are its one leaf."""
    nodes, position = _tree_nodes(forest, trees)
    leaf = forest.left[nodes] < 0
    local = nodes - forest.roots[trees][position]
    # A one-leaf tree is its root alone; it becomes a dummy split over two copies of it.
    stump = leaf & (local == 0)
    inner_nodes = np.flatnonzero(~leaf | stump)  # positions in ``nodes`` of opset-5 nodes
    leaf_nodes = np.flatnonzero(leaf)
    inner_index = np.full(len(nodes), -1, dtype=np.int64)
    inner_index[inner_nodes] = np.arange(len(inner_nodes))
    leaf_index = np.full(len(nodes), -1, dtype=np.int64)
    leaf_index[leaf_nodes] = np.arange(len(leaf_nodes))
    # Children as positions in ``nodes``: global id minus the tree's offset within ``nodes``.
    offset = nodes - np.arange(len(nodes))
    g = nodes[inner_nodes]
    is_stump = stump[inner_nodes]
    true_pos = np.where(is_stump, inner_nodes, forest.left[g] - offset[inner_nodes])
    false_pos = np.where(is_stump, inner_nodes, forest.right[g] - offset[inner_nodes])
    true_leaf = leaf[true_pos]
    false_leaf = leaf[false_pos]
    true_ids = np.where(true_leaf, leaf_index[true_pos], inner_index[true_pos])
    false_ids = np.where(false_leaf, leaf_index[false_pos], inner_index[false_pos])
    first_of_tree = np.concatenate(
        [[True], position[inner_nodes][1:] != position[inner_nodes][:-1]]
    )
    if leaves:  # float32: the row's float32 value against the one-comparison threshold
        data_type = proto.FLOAT32
        splits = np.where(is_stump, np.float32(0), forest.threshold32()[g])
        targets = position[leaf_nodes]
        weights = local[leaf_nodes].astype(np.float64)
    else:  # float64: scikit-learn's own threshold against double(float32(x))
        data_type = proto.DOUBLE
        splits = np.where(is_stump, 0.0, forest.threshold[g])
        targets = np.zeros(len(leaf_nodes), dtype=np.int64)
        weights = forest.value[nodes, 0].copy()
        weights[position == 0] += init  # scikit-learn's first addition: init + lr * v
        weights = weights[leaf_nodes]
    attributes = [
        proto.Attribute.of_int("n_targets", len(trees) if leaves else 1),
        proto.Attribute.of_int("aggregate_function", 1),  # SUM
        proto.Attribute.of_int("post_transform", 0),  # NONE
        proto.Attribute.of_ints("tree_roots", np.flatnonzero(first_of_tree)),
        proto.Attribute.of_tensor("nodes_modes", np.zeros(len(inner_nodes)), proto.UINT8),
        proto.Attribute.of_ints("nodes_featureids", np.where(is_stump, 0, forest.feature[g])),
        proto.Attribute.of_tensor("nodes_splits", splits, data_type),
        proto.Attribute.of_ints("nodes_truenodeids", true_ids),
        proto.Attribute.of_ints("nodes_trueleafs", true_leaf.astype(np.int64)),
        proto.Attribute.of_ints("nodes_falsenodeids", false_ids),
        proto.Attribute.of_ints("nodes_falseleafs", false_leaf.astype(np.int64)),
        proto.Attribute.of_ints(
            "nodes_missing_value_tracks_true", (forest.default_left[g] & ~is_stump).astype(np.int64)
        ),
        proto.Attribute.of_ints("leaf_targetids", targets),
        proto.Attribute.of_tensor("leaf_weights", weights, data_type),
    ]
    return proto.node("TreeEnsemble", ["X"], [name], attributes, domain=ML_DOMAIN)


def _model(
    nodes: list[bytes], names: list[str], n_features: int, width: int, data_type: int, *,
    ml_opset: int,
) -> bytes:  # fmt: skip
    if len(names) > 1:
        nodes = [*nodes, proto.node("Concat", names, ["Y"], [proto.Attribute.of_int("axis", 1)])]
    else:
        nodes = [*nodes, proto.node("Identity", names, ["Y"])]
    return proto.model(
        nodes,
        inputs=[proto.value_info("X", data_type, ["rows", n_features])],
        outputs=[proto.value_info("Y", data_type, ["rows", width])],
        opsets={"": _OPSET, ML_DOMAIN: ml_opset},
        name="trees",
    )
