"""Rows -> a tree ensemble's margins as its original library computes them, fast.

One engine per family, each the fastest exact one measured against the library's own
vectorized predict (1,000 rows, 100 and 500 trees; bench section 6):

- RandomForest / ExtraTrees: onnxruntime finds the leaves (``leaves_graph``), ``LeafSum``
  adds them as scikit-learn does (about 1.6x ``predict_proba``);
- GradientBoosting: onnxruntime adds the leaves itself in float64 (``sum_graph``;
  1.15-1.3x);
- XGBoost: onnxruntime adds the leaves in float32 (``sum_graph``): exact, the fastest for
  small requests, but 0.4-0.9x XGBoost's own predictor on batches; so a member that carries
  XGBoost's model file answers batches of ``LIBXGBOOST_MIN_ROWS`` rows or more with XGBoost's
  own library (``xgboost_api``; see ``members.treelite``).

Every engine takes rows as given (float64 or float32) and compares their float32 values, as
both libraries do. Batches are split across the function's vCPUs by rows (``row_split``).

A batch's rows are walked in ``branch_order``: rows on the same side of the forest's most
used splits next to each other. onnxruntime walks each tree over a block of rows, one row
after the other, and a row that takes the branches its neighbour took is walked without
the CPU mispredicting them: 15-18% less time for a 1,000-row batch of GradientBoosting at
500 trees. Each row's answer is its own (computed whole, in the same order), so the
answers are the same bits in any row order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from tickerserve.members.forest import Forest
from tickerserve.members.leaf_sum import LeafSum
from tickerserve.members.onnx_engine import OnnxSession
from tickerserve.members.row_split import split_rows
from tickerserve.members.tree_graphs import leaves_graph, sum_graph

LIBXGBOOST_MIN_ROWS = 64  # below, one libxgboost call costs more than onnxruntime's walk
ORDER_MIN_ROWS = 256  # below, sorting costs about what the branches it saves cost
ORDER_FEATURES = 6  # at most, rows grouped by their side of this many features' medians
ROWS_PER_GROUP = 16  # fewer features for smaller batches: groups of about this many rows


class TreeEngine(Protocol):
    """Rows -> margins: float32 for XGBoost, float64 otherwise, (n_rows, width)."""

    name: str

    def margins(self, rows: np.ndarray) -> np.ndarray: ...


class LeavesEngine:
    """onnxruntime finds every tree's leaf; ``LeafSum`` adds them in the library's order."""

    name = "onnxruntime leaves"

    def __init__(self, forest: Forest) -> None:
        graph = leaves_graph(forest)
        self._session = OnnxSession(graph.model)
        self._roots = graph.roots
        self._sum = LeafSum(forest)
        self._features = split_features(forest)

    def margins(self, rows: np.ndarray) -> np.ndarray:
        return in_branch_order(self._margins, _float32(rows), self._features)

    def _margins(self, rows: np.ndarray) -> np.ndarray:
        local = self._session.run(rows).astype(np.intp)
        local += self._roots
        return self._sum.margins(local)


class SumEngine:
    """onnxruntime adds the leaves itself (XGBoost in float32, GradientBoosting in float64)."""

    name = "onnxruntime sums"

    def __init__(self, forest: Forest) -> None:
        self._session = OnnxSession(sum_graph(forest))
        self._features = split_features(forest)

    def margins(self, rows: np.ndarray) -> np.ndarray:
        return in_branch_order(self._session.run, _float32(rows), self._features)


def build_engine(forest: Forest) -> TreeEngine:
    """The family's onnxruntime engine: leaves for forests, sums for boosted trees."""
    if forest.family == "forest":
        return LeavesEngine(forest)
    return SumEngine(forest)


def split_features(forest: Forest, count: int = ORDER_FEATURES) -> np.ndarray:
    """The ``count + 1`` features the forest splits on most, heaviest first: each split
    weighs 2^-depth (a root splits every row's walk, a node at depth d about 2^-d of them)."""
    weights = np.zeros(forest.n_features)
    level, depth = forest.roots.astype(np.intp), 0
    while level.size:
        inner = level[forest.left[level] >= 0]
        weights += 0.5**depth * np.bincount(forest.feature[inner], minlength=forest.n_features)
        level = np.concatenate([forest.left[inner], forest.right[inner]]).astype(np.intp)
        depth += 1
    heaviest = np.argsort(-weights, kind="stable")
    return heaviest[: min(count + 1, forest.n_features)]


def branch_order(rows: np.ndarray, features: np.ndarray) -> np.ndarray:
    """A permutation of ``rows`` that puts rows taking the same branches next to each other:
    grouped by their side of the batch's median of the first of ``features`` (the most
    significant first; as many as leave about ``ROWS_PER_GROUP`` rows a group), sorted by the
    last within a group."""
    n_rows = len(rows)
    bits = min(len(features) - 1, max(1, (n_rows // ROWS_PER_GROUP).bit_length() - 1))
    columns = rows.T[features[:bits]]  # (bits, n_rows)
    middle = np.partition(columns, n_rows // 2, axis=1)[:, n_rows // 2 : n_rows // 2 + 1]
    halves = columns > middle  # a NaN is on neither side: any order is exact
    group = np.zeros(n_rows, dtype=np.int64)
    for half in halves:
        group <<= 1
        group |= half
    return np.lexsort((rows[:, features[bits]], group))


def in_branch_order(
    compute: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, features: np.ndarray
) -> np.ndarray:
    """``compute(rows)`` (split over the vCPUs), the rows walked in ``branch_order`` and
    the answers put back in the rows' own order (batches of ``ORDER_MIN_ROWS`` or more)."""
    if len(rows) < ORDER_MIN_ROWS or len(features) < 2:
        return split_rows(compute, rows)
    order = branch_order(rows, features)
    ordered = split_rows(compute, rows[order])
    out = np.empty_like(ordered)
    out[order] = ordered
    return out


def _float32(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows, dtype=np.float32)
