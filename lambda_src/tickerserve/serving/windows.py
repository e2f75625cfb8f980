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
import struct
from collections.abc import Iterable
from itertools import chain
from typing import Any

import numpy as np

from tickerserve.errors import BadRequest, TickerserveError
from tickerserve.members.network import WINDOW
from tickerserve.serving.features import FeatureSchema

_NUMBERS = frozenset({float, int})
_DICT, _LIST = {dict}, {list}
_ROWS = frozenset({dict, list})
_FEW_SPOTS = 64  # zeros and ones looked up one by one, fewer than a pass over every value


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
        # The fast path's shapes and packers: a window as sent, as float64 in native order
        self._width_set, self._full_set = {self._width}, {self._full}
        self._named_shape, self._listed_shape = (rows, self._width), (rows, self._full)
        self._pack_named = struct.Struct(f"{rows * self._width}d").pack_into
        self._pack_listed = struct.Struct(f"{rows * self._full}d").pack_into

    def same_input(self, other: object) -> bool:
        """Whether ``other`` makes the same vector (or error) of any request's features."""
        return other is self or getattr(other, "_input", None) == self._input

    def row(self, features: Any) -> np.ndarray:
        """The window as one flat float64 vector: its rows one after the other."""
        kinds = set(map(type, features)) if isinstance(features, list) else None
        if kinds is None or not kinds <= _ROWS:  # each row an object or a list
            raise BadRequest(self._shape_hint(), code="invalid_features")
        if len(features) != self.rows:
            what = "a window" if self.input_kind == WINDOW else "an observation"
            code = "wrong_window_length" if self.input_kind == WINDOW else "wrong_observation_shape"
            raise BadRequest(
                f"this model takes {what} of {self.rows} rows (oldest first), got {len(features)}",
                code=code,
            )
        fast = self._fast(features, kinds)
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

    def _fast(self, features: list[Any], kinds: set[type]) -> np.ndarray | None:
        """Every row an object naming exactly the used features, or a full list, and every
        value a plain finite number (a float or an int, not a bool): the window in one C-level
        pass; anything else takes the checked path, which names what is wrong.

        ``struct`` packs the values straight into the matrix and refuses every value that is
        not a number (strings, numeric ones included, nulls, lists, ints beyond float range)
        but takes a bool as 1.0 or 0.0: so only where a value came out as 0 or 1 are the
        values' types looked at, in C too."""
        try:
            if kinds == _DICT:
                if set(map(len, features)) != self._width_set:
                    return None
                values: Iterable[Any] = chain.from_iterable(map(self._pick, features))
                pack, shape = self._pack_named, self._named_shape
            elif kinds == _LIST:
                if set(map(len, features)) != self._full_set:
                    return None
                values = chain.from_iterable(features)
                pack, shape = self._pack_listed, self._listed_shape
            else:
                return None
            matrix = np.empty(shape)
            pack(matrix, 0, *values)  # type: ignore[arg-type]  # an ndarray is a writable buffer
        except (KeyError, struct.error, OverflowError, TypeError, ValueError):
            return None  # a missing name, a non-number: the checked path says which
        if not np.isfinite(matrix).all():
            return None
        # A bool became 1.0 or 0.0: only a window holding a 0 or a 1 has its types looked at.
        size = matrix.size
        spots = 2 * size - np.count_nonzero(matrix) - np.count_nonzero(matrix - 1.0)
        if spots and not self._plain(features, kinds, matrix, int(spots)):
            return None
        if kinds == _LIST and self.selected is not None:
            matrix = matrix[:, self.selected]
        return matrix.ravel()

    def _plain(self, features: list[Any], kinds: set[type], matrix: np.ndarray, spots: int) -> bool:
        """Whether every value that came out as 0 or 1 (``spots`` of them) is a float or an
        int, not a bool: a few such values looked up where they are, many by every value's
        type in C."""
        rows = map(self._pick, features) if kinds == _DICT else features
        if spots > _FEW_SPOTS:
            return _NUMBERS.issuperset(map(type, chain.from_iterable(rows)))
        rows = list(rows)
        width = matrix.shape[1]
        where = np.flatnonzero((matrix == 0.0) | (matrix == 1.0)).tolist()
        return all(type(rows[i // width][i % width]) in _NUMBERS for i in where)

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
