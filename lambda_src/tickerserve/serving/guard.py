"""Request warnings: where a row is unlike the answering version's reference sample (issue 21).

A version with feature ranges (``baselines.ranges``: from its baseline, kept in its metadata or
beside it) gets a ``Guard``: the ranges as arrays aligned to the features the model uses, so
checking a row costs three numpy calls and a byte comparison (well under a microsecond for
tens of features), and Python work happens only for a row with something to say. A warning::

    {"feature": "rsi_14", "code": "out_of_range", "value": 140.2, "range": [18.2, 83.9]}
    {"feature": "iv_rank", "code": "unexpected_missing", "value": null, "range": [0.01, 0.99]}

``out_of_range``: the value is outside ``[lo, hi]``; ``unexpected_missing``: it is missing
(null) where the reference had no missing value. Warnings come in the model's feature order.
A feature the ranges do not cover is never warned about.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tickerserve.baselines.ranges import Ranges
from tickerserve.contract import WARNINGS

RowWarning = dict[str, Any]

# ``np.clip``'s own ufunc: the public function adds about a microsecond of Python per call.
_clip = getattr(np, "_core", np).umath.clip
_fmax = np.fmax
OUT_OF_RANGE = WARNINGS.out_of_range
UNEXPECTED_MISSING = WARNINGS.unexpected_missing


class Guard:
    """One version's ranges, aligned to the features its model consumes."""

    __slots__ = ("_floor", "_hi", "_lo", "_missing_ok", "_names", "_ranges", "quantiles")

    def __init__(self, used_names: Sequence[str], ranges: Ranges) -> None:
        n = len(used_names)
        lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
        missing_ok = np.ones(n, dtype=bool)
        shown: list[list[float] | None] = [None] * n
        for i, name in enumerate(used_names):
            known = ranges.features.get(name)
            if known is None:
                continue
            if known.lo is not None and known.hi is not None:
                lo[i], hi[i] = known.lo, known.hi
                shown[i] = [known.lo, known.hi]
            missing_ok[i] = known.missing_share > 0.0
        self._names = list(used_names)
        self._lo, self._hi = lo, hi
        self._missing_ok: list[bool] = missing_ok.tolist()
        self._ranges = shown
        # ``fmax(x, floor)`` turns a missing value (NaN) into ``floor`` where none was expected,
        # a change the byte comparison sees; where one was, the floor is NaN and fmax keeps x.
        self._floor = np.where(missing_ok, np.nan, lo)
        self.quantiles = ranges.quantiles

    @classmethod
    def of(cls, used_names: Sequence[str], ranges: Ranges | None) -> Guard | None:
        """A guard when the ranges cover any used feature, else None (nothing to check)."""
        if ranges is None or not any(name in ranges.features for name in used_names):
            return None
        return cls(used_names, ranges)

    def check(self, row: np.ndarray) -> list[RowWarning]:
        """The warnings of one aligned row (float64, the model's used features in order)."""
        # Clipping changes every value out of range, and every unexpected NaN (made the
        # floor first); an expected NaN stays NaN, with the same bytes. Equal bytes: nothing.
        if _clip(_fmax(row, self._floor), self._lo, self._hi).tobytes() == row.tobytes():
            return []
        return self._explain(row)

    def check_rows(self, rows: np.ndarray) -> list[list[RowWarning]]:
        """The warnings of each row of an aligned matrix (rows x used features)."""
        clipped = _clip(_fmax(rows, self._floor), self._lo, self._hi)
        if clipped.tobytes() == rows.tobytes():
            return [[] for _ in range(rows.shape[0])]
        # NaN != NaN: a row with an expected missing value is looked at too (and passes).
        changed = (clipped != rows).any(axis=1).tolist()
        return [self._explain(rows[i]) if flag else [] for i, flag in enumerate(changed)]

    def _explain(self, row: np.ndarray) -> list[RowWarning]:
        """Each feature of ``row`` outside its range or unexpectedly missing (the slow path)."""
        out: list[RowWarning] = []
        inside = (row >= self._lo) & (row <= self._hi)  # NaN is inside nothing
        values = row.tolist()
        for i in np.flatnonzero(~inside).tolist():
            value = values[i]
            if value != value:  # missing
                if self._missing_ok[i]:
                    continue
                code, value = UNEXPECTED_MISSING, None
            else:
                code = OUT_OF_RANGE
            shown = self._ranges[i]
            out.append(
                {
                    "feature": self._names[i],
                    "code": code,
                    "value": value,
                    "range": None if shown is None else list(shown),
                }
            )
        return out
