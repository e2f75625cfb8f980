"""Leaf ids -> the original library's margins, bit for bit (numpy only).

An engine that only finds each row's leaf in each tree (``tree_engines``) hands the ids
here, and the leaves are added in the original library's order and precision (see
``members.forest``): XGBoost in float32 from its base margin, scikit-learn's forests in
float64 from zero and then divided by the number of trees, gradient boosting in float64
from the init score.

``np.sum`` would not do: numpy adds pairwise when the summed axis is innermost (one row of
a regressor, say), which changes the last bits. Batches add tree by tree, one ``take`` and
one in-place add per tree (2-4x faster than a cumulative sum over a trees x rows array); a
few rows use a cumulative sum, which is sequential by definition and needs fewer calls.
"""

from __future__ import annotations

import numpy as np

from tickerserve.members.forest import Forest

SMALL_BATCH = 32  # rows: below, one cumulative sum beats a loop over the trees


class LeafSum:
    """The few arrays adding leaves needs: a leaf-value table, the base, the widths."""

    def __init__(self, forest: Forest) -> None:
        self.family = forest.family
        self.width = forest.width
        self.n_trees = forest.n_trees
        if forest.family == "forest":
            self.table = np.ascontiguousarray(forest.value, dtype=np.float64)
        else:
            dtype = np.float32 if forest.family == "xgboost" else np.float64
            self.table = np.ascontiguousarray(forest.value[:, 0], dtype=dtype)
        self.base = np.asarray(forest.base, dtype=self.table.dtype)

    def margins(self, leaves: np.ndarray) -> np.ndarray:
        """(n_rows, n_trees) global leaf ids -> (n_rows, width) margins: float32 for
        XGBoost, float64 otherwise (forests: the averaged leaf vectors)."""
        n_rows = leaves.shape[0]
        ids = np.ascontiguousarray(leaves.T, dtype=np.intp)  # (n_trees, n_rows)
        if self.family == "forest":
            return self._forest(ids, n_rows)
        k = self.width
        rounds = self.n_trees // k
        if n_rows < SMALL_BATCH:
            parts = np.empty((rounds + 1, k, n_rows), dtype=self.table.dtype)
            parts[0] = self.base[:, None]
            parts[1:] = self.table[ids].reshape(rounds, k, n_rows)  # tree r*k + j -> column j
            return _in_order(parts.reshape(rounds + 1, -1)).reshape(k, n_rows).T
        total = np.empty((k, n_rows), dtype=self.table.dtype)
        total[:] = self.base[:, None]
        step = np.empty_like(total)
        for r in range(rounds):
            np.take(self.table, ids[r * k : (r + 1) * k], out=step)
            total += step
        return np.ascontiguousarray(total.T)

    def _forest(self, ids: np.ndarray, n_rows: int) -> np.ndarray:
        width = self.table.shape[1]
        if n_rows < SMALL_BATCH:
            parts = self.table[ids]  # (n_trees, n_rows, width)
            total = _in_order(parts.reshape(self.n_trees, -1)).reshape(n_rows, width)
            return total / self.n_trees
        total = np.zeros((n_rows, width))
        step = np.empty_like(total)
        for t in range(self.n_trees):
            np.take(self.table, ids[t], axis=0, out=step)
            total += step
        return total / self.n_trees


def _in_order(parts: np.ndarray) -> np.ndarray:
    """``((p0 + p1) + p2) + ...`` over axis 0 (in place: ``parts`` is scratch)."""
    if parts.shape[0] > 1:
        np.cumsum(parts, axis=0, out=parts)
    return parts[-1].copy()
