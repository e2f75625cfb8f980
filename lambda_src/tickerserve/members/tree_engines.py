"""Rows -> a tree ensemble's margins as its original library computes them, fast.

One engine per family, each the fastest exact one measured against the library's own
vectorized predict (1,000 rows, 100 and 500 trees; bench section 6):

- RandomForest / ExtraTrees: onnxruntime finds the leaves (``leaves_graph``), ``LeafSum``
  adds them as scikit-learn does (about 1.5x ``predict_proba``);
- GradientBoosting: onnxruntime adds the leaves itself in float64 (``sum_graph``; 1.0-1.25x);
- XGBoost: onnxruntime adds the leaves in float32 (``sum_graph``): exact, the fastest for
  small requests, but 0.4-0.9x XGBoost's own predictor on batches; so a member that carries
  XGBoost's model file answers batches of ``LIBXGBOOST_MIN_ROWS`` rows or more with XGBoost's
  own library (``xgboost_api``; see ``members.treelite``).

Every engine takes rows as given (float64 or float32) and compares their float32 values, as
both libraries do. Batches are split across the function's vCPUs by rows (``row_split``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from tickerserve.members.forest import Forest
from tickerserve.members.leaf_sum import LeafSum
from tickerserve.members.onnx_engine import OnnxSession
from tickerserve.members.row_split import split_rows
from tickerserve.members.tree_graphs import leaves_graph, sum_graph

LIBXGBOOST_MIN_ROWS = 64  # below, one libxgboost call costs more than onnxruntime's walk


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

    def margins(self, rows: np.ndarray) -> np.ndarray:
        return split_rows(self._margins, _float32(rows))

    def _margins(self, rows: np.ndarray) -> np.ndarray:
        local = self._session.run(rows).astype(np.intp)
        local += self._roots
        return self._sum.margins(local)


class SumEngine:
    """onnxruntime adds the leaves itself (XGBoost in float32, GradientBoosting in float64)."""

    name = "onnxruntime sums"

    def __init__(self, forest: Forest) -> None:
        self._session = OnnxSession(sum_graph(forest))

    def margins(self, rows: np.ndarray) -> np.ndarray:
        return split_rows(self._session.run, _float32(rows))


def build_engine(forest: Forest) -> TreeEngine:
    """The family's onnxruntime engine: leaves for forests, sums for boosted trees."""
    if forest.family == "forest":
        return LeavesEngine(forest)
    return SumEngine(forest)


def _float32(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows, dtype=np.float32)
