"""Windows: a request's features as rows, oldest first (a sequence model's window, or a policy's
2-D observation), aligned into one flat float64 vector of ``rows x used features``.

Each row is an object by feature name or a list in ``feature_names`` order, checked exactly as
a tree model's single row is (``FeatureSchema``: missing or unknown names, wrong counts,
non-numbers and nulls where the model refuses them are 400s naming the features, here with the
row's index). A window of another length is a 400 ``wrong_window_length`` naming the length
the model takes (``wrong_observation_shape`` for an observation).

Capture keeps a window's last row as the record's features (what drift is judged on) and a
digest of the whole window (``window_digest``): a record stays a few KiB at any window length.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

from tickerserve.errors import BadRequest, TickerserveError
from tickerserve.members.network import WINDOW
from tickerserve.serving.features import FeatureSchema

_NUMBERS = frozenset({float, int})


class WindowSchema:
    """The input contract of a model that takes ``rows`` rows of features per request."""

    def __init__(self, rows: int, row: FeatureSchema, *, input_kind: str = WINDOW) -> None:
        self.rows = rows
        self.row_schema = row
        self.input_kind = input_kind
        self.feature_names = row.feature_names
        self.used_names = row.used_names  # the names of one row's values
        self.missing = row.missing
        self.selected = row.selected
        self._width = len(row.used_names)
        self._full = len(row.feature_names)
        used = row.used_names
        self._pick = operator.itemgetter(*used) if len(used) > 1 else (lambda r: (r[used[0]],))
        self._input = ("rows", rows, row._input)

    def same_input(self, other: object) -> bool:
        """Whether ``other`` makes the same vector (or error) of any request's features."""
        return other is self or getattr(other, "_input", None) == self._input

    def row(self, features: Any) -> np.ndarray:
        """The window as one flat float64 vector: its rows one after the other."""
        if not isinstance(features, list) or (features and not _rows(features)):
            raise BadRequest(self._shape_hint(), code="invalid_features")
        if len(features) != self.rows:
            what = "a window" if self.input_kind == WINDOW else "an observation"
            code = "wrong_window_length" if self.input_kind == WINDOW else "wrong_observation_shape"
            raise BadRequest(
                f"this model takes {what} of {self.rows} rows (oldest first), got {len(features)}",
                code=code,
            )
        fast = self._fast(features)
        if fast is not None:
            return fast
        out = np.empty((self.rows, self._width))
        for index, item in enumerate(features):
            try:
                out[index] = self.row_schema.row(item)
            except TickerserveError as exc:
                raise type(exc)(
                    f"row {index}: {exc.message}", code=exc.code, features=exc.features
                ) from None
        return out.ravel()

    def _fast(self, features: list[Any]) -> np.ndarray | None:
        """Every row an object naming exactly the used features, or a full list, and every
        value a plain finite number: one C-level pass; anything else takes the checked path."""
        first = features[0]
        try:
            if type(first) is dict:
                width = self._width
                if any(type(r) is not dict or len(r) != width for r in features):
                    return None
                values: Sequence[Any] = list(map(self._pick, features))
            else:
                if any(type(r) is not list or len(r) != self._full for r in features):
                    return None
                values = features
            if not _NUMBERS.issuperset(map(type, chain.from_iterable(values))):
                return None
            matrix = np.array(values, dtype=np.float64)
        except (KeyError, OverflowError, ValueError):
            return None
        if type(first) is list and self.selected is not None:
            matrix = matrix[:, self.selected]
        if not np.isfinite(matrix).all():
            return None
        return matrix.ravel()

    def _shape_hint(self) -> str:
        what = "a window" if self.input_kind == WINDOW else "an observation"
        return (
            f"features must be {what}: a list of {self.rows} rows, oldest first, each an "
            f"object of name -> number or a list of {self._full} numbers in feature_names order"
        )

    def last_row(self, vector: np.ndarray) -> np.ndarray:
        """The window's newest row (what capture records as the features)."""
        return vector[-self._width :]

    def last_rows(self, matrix: np.ndarray) -> np.ndarray:
        """Each window's newest row, for a matrix of windows (one flat window a row)."""
        return matrix[:, -self._width :]

    def captured(self, vector: np.ndarray, given: Any = None) -> dict[str, Any]:
        """The features a capture record keeps: the newest row, by name (NaN: null)."""
        return dict(zip(self.used_names, self.last_row(vector).tolist(), strict=True))


def _rows(features: list[Any]) -> bool:
    return all(type(r) is dict or type(r) is list for r in features)


def window_digest(vector: np.ndarray) -> str:
    """sha256 of the window as the model used it: float64 little-endian, rows oldest first,
    each row's used features in order (missing values are NaN). A client can compute it from
    its own data to find the record of a window."""
    return hashlib.sha256(np.ascontiguousarray(vector, dtype="<f8").tobytes()).hexdigest()


def sliding_windows(rows: np.ndarray, length: int) -> np.ndarray:
    """Every window of ``length`` consecutive rows of ``rows`` (time order), flat: what a
    reference table of rows becomes for a windowed model (window ``i`` ends at row
    ``i + length - 1``)."""
    n, width = rows.shape
    if n < length:
        return np.empty((0, length * width))
    view = np.lib.stride_tricks.sliding_window_view(rows, (length, width))[:, 0]
    return view.reshape(n - length + 1, length * width).copy()
