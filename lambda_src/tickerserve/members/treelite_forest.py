"""A Treelite model's node arrays -> a ``Forest``, read through Treelite's C API.

Every Treelite member published so far (XGBoost and scikit-learn trees) holds what the fast
engines and TreeSHAP need: each node's children, split feature, threshold and comparison,
default direction, leaf value or vector, and its cover (``sum_hess``: XGBoost's hessian
sums, scikit-learn's weighted sample counts). So stored versions get the new engines and
explanations without being published again. The member's recipe (``options``) says whose
arithmetic the margins follow; a model this module does not recognise (HistGradientBoosting,
categorical splits, another comparison) returns ``None`` and stays on GTIL.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tickerserve.members.forest import Forest
from tickerserve.members.treelite_api import NativeModel

_LESS, _LESS_EQUAL = 2, 3  # Treelite's Operator codes ("<", "<=")
_CATEGORICAL = 2  # Treelite's TreeNodeType for a categorical test


class Unreadable(Exception):
    """The model is not one the fast engines reproduce (the reason says why)."""


def forest_from_treelite(model: NativeModel, options: dict[str, Any]) -> Forest:
    """The node arrays of ``model``, read as its recipe says; ``Unreadable`` otherwise."""
    if options.get("margin") == "float32_in_order":
        family = "xgboost"
    elif options.get("margin") == "native" and options.get("round_inputs") == "float32":
        average = int(model.header_field("average_tree_output")[0])
        family = "forest" if average else "boosting"
    else:  # HistGradientBoosting compares float64 inputs: GTIL serves it
        raise Unreadable("only XGBoost and scikit-learn forests and gradient boosting")
    width = int(options["margin_width"])
    n_trees = int(model.num_tree)
    leaf_shape = [int(v) for v in model.header_field("leaf_vector_shape")]
    leaf_width = width if family == "forest" else 1
    if leaf_shape not in ([1, 1], [1, leaf_width]) or (family != "forest" and leaf_shape != [1, 1]):
        raise Unreadable(f"leaf vectors of shape {leaf_shape}")
    if family != "forest":
        class_id = model.header_field("class_id").astype(np.int64)
        if not np.array_equal(class_id, np.arange(n_trees) % width):
            raise Unreadable("trees do not feed the margin columns in turn")
    parts: dict[str, list[np.ndarray]] = {key: [] for key in ("l", "r", "f", "t", "d", "v", "c")}
    roots = np.zeros(n_trees, dtype=np.int32)
    offset = 0
    strict: bool | None = None
    for t in range(n_trees):
        left = model.tree_field(t, "cleft").astype(np.int64)
        n = len(left)
        if n == 0:
            raise Unreadable(f"tree {t} is empty")
        leaf = left < 0
        if np.any(model.tree_field(t, "node_type")[~leaf] == _CATEGORICAL):
            raise Unreadable("categorical splits")
        cmp = model.tree_field(t, "cmp")[~leaf]
        if cmp.size:
            ops = np.unique(cmp)
            tree_strict = bool(ops[0] == _LESS)
            if (
                len(ops) != 1
                or ops[0] not in (_LESS, _LESS_EQUAL)
                or strict not in (None, tree_strict)
            ):
                raise Unreadable(f"comparison operators {ops.tolist()}")
            strict = tree_strict
        right = model.tree_field(t, "cright").astype(np.int64)
        roots[t] = offset
        parts["l"].append(np.where(leaf, -1, left + offset))
        parts["r"].append(np.where(leaf, -1, right + offset))
        parts["f"].append(np.where(leaf, -1, model.tree_field(t, "split_index")))
        parts["t"].append(np.where(leaf, 0.0, model.tree_field(t, "threshold")))
        parts["d"].append(model.tree_field(t, "default_left").astype(bool) & ~leaf)
        parts["v"].append(_leaf_values(model, t, leaf, leaf_width))
        hess = model.tree_field(t, "sum_hess").astype(np.float64)
        present = model.tree_field(t, "sum_hess_present")
        parts["c"].append(hess if len(hess) == n and np.all(present == 1) else np.full(n, np.nan))
        offset += n
    cover = np.concatenate(parts["c"])
    if family == "xgboost":
        # XGBoost keeps float32 covers; Treelite parsed their decimal text as float64.
        cover = cover.astype(np.float32).astype(np.float64)
        base = np.asarray(options["base_margin"], dtype=np.float32).astype(np.float64)
    elif family == "boosting":
        base = model.header_field("base_scores").astype(np.float64)[:width]
    else:
        base = np.zeros(width)
    forest = Forest(
        family=family,
        n_features=int(model.num_feature),
        width=width,
        left=np.concatenate(parts["l"]).astype(np.int32),
        right=np.concatenate(parts["r"]).astype(np.int32),
        feature=np.concatenate(parts["f"]).astype(np.int32),
        threshold=np.concatenate(parts["t"]).astype(np.float64),
        strict=bool(strict),
        default_left=np.concatenate(parts["d"]),
        value=np.concatenate(parts["v"]),
        cover=cover,
        roots=roots,
        base=base,
    )
    try:
        forest.validate()
    except ValueError as exc:
        raise Unreadable(str(exc)) from None
    return forest


def _leaf_values(model: NativeModel, tree: int, leaf: np.ndarray, width: int) -> np.ndarray:
    """(n_nodes, width) leaf outputs (zeros at inner nodes): a leaf's vector, or its value."""
    out = np.zeros((len(leaf), width))
    vector = model.tree_field(tree, "leaf_vector").astype(np.float64)
    if vector.size:
        begin = model.tree_field(tree, "leaf_vector_begin").astype(np.int64)
        end = model.tree_field(tree, "leaf_vector_end").astype(np.int64)
        if np.any((end - begin)[leaf] != width):
            raise Unreadable(f"tree {tree}: leaf vectors are not {width} long")
        positions = begin[leaf][:, None] + np.arange(width)
        out[leaf] = vector[positions]
    else:
        out[leaf, 0] = model.tree_field(tree, "leaf_value").astype(np.float64)[leaf]
    return out
