"""Preprocessing that a network's original applied before its first layer, as JSON steps.

A seed's feature preprocessor (a scikit-learn ``SimpleImputer`` and ``StandardScaler``,
``MinMaxScaler`` or ``RobustScaler``) or its VecNormalize statistics are converted on the
publisher's machine into a list of element-wise steps, stored as ``preprocessing.json`` in the
version folder (sha256-chained like every artifact) and applied here in float64 numpy, in the
same operations and order as the original, so the network sees the same numbers:

```
{"steps": [{"op": "fill_missing", "values": [...]},   # SimpleImputer: NaN -> its statistic
           {"op": "subtract", "values": [...]},       # StandardScaler: x -= mean_
           {"op": "divide", "values": [...]},         #                 x /= scale_
           {"op": "multiply", "values": [...]},       # MinMaxScaler:   x *= scale_
           {"op": "add", "values": [...]},            #                 x += min_
           {"op": "clip", "low": -10.0, "high": 10.0},  # VecNormalize's clip_obs
           {"op": "clip_if_infinite", "low": -1e6, "high": 1e6}],
 "source": "what it was converted from"}
```

``values`` (and a clip's bounds) are a number, one number per feature of a row (broadcast over
a window's rows) or one per element of the whole input. ``clip_if_infinite`` is the seed's
DataPreprocessor: when scaling overflowed anywhere in the input, all of it is clipped.

A member whose steps are each one element-wise operation runs them as ONNX nodes in front of
its graph (``graph_prefix``). Otherwise it compiles them once when it loads
(``Preprocessing.compiled``): the value and clip steps run back to back in one array, and a
leading ``fill_missing`` and trailing ``clip_if_infinite`` steps cost one finiteness check of
the result (a NaN stays NaN through every other step, so a finite result had nothing to fill
nor clip). The numbers are exactly ``apply``'s, cast to the network's input type.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Overflow in the compiled steps (``Compiled``), which run without ``np.errstate``: the original
# overflowed too, and the result is clipped or refused as it was; numpy's warning is no news.
warnings.filterwarnings(
    "ignore", "overflow encountered", RuntimeWarning, module=re.escape(__name__) + r"\Z"
)

FILE_NAME = "preprocessing.json"
VALUE_OPS = ("fill_missing", "subtract", "divide", "multiply", "add")
CLIP_OPS = ("clip", "clip_if_infinite")
OPS = VALUE_OPS + CLIP_OPS


def _nothing() -> np.ndarray:
    """The fields an op does not use."""
    return np.zeros(0)


@dataclass(frozen=True, eq=False)
class Step:
    """One element-wise operation; ``values`` or ``low``/``high`` broadcast to the input."""

    op: str
    values: np.ndarray = field(default_factory=_nothing)
    low: np.ndarray = field(default_factory=_nothing)
    high: np.ndarray = field(default_factory=_nothing)

    def to_dict(self) -> dict[str, Any]:
        if self.op in VALUE_OPS:
            return {"op": self.op, "values": self.values.tolist()}
        return {"op": self.op, "low": self.low.tolist(), "high": self.high.tolist()}


@dataclass(frozen=True)
class Preprocessing:
    """The steps, in order, and what they were converted from."""

    steps: tuple[Step, ...]
    source: str = ""

    @property
    def fills_missing(self) -> bool:
        """Whether a missing value (NaN) becomes a number before the network sees it."""
        return bool(self.steps) and self.steps[0].op == "fill_missing"

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The steps over ``x`` (rows, *shape), in float64; ``x`` itself is left alone (the
        first step writes a new array, the others work in it)."""
        out = np.asarray(x, dtype=np.float64)
        fresh = False  # whether ``out`` is ours to change in place
        with np.errstate(over="ignore"):  # an overflow is the original's too (and clipped)
            for step in self.steps:
                out = _apply(step, out, fresh)
                fresh = True
        return out if fresh else out.copy()

    def compiled(self, dtype: type[np.floating[Any]]) -> Compiled:
        """The steps as the member runs them on every request (see ``Compiled``)."""
        return Compiled(self, dtype)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Inputs that the affine steps map to ``z`` (fills and clips ignored): where to draw
        check inputs so they land where the network was trained."""
        out = np.array(z, dtype=np.float64)
        for step in reversed(self.steps):
            if step.op == "subtract":
                out += step.values
            elif step.op == "divide":
                out *= step.values
            elif step.op == "multiply":
                out /= step.values
            elif step.op == "add":
                out -= step.values
        return out

    def to_json(self) -> bytes:
        body = {"steps": [s.to_dict() for s in self.steps], "source": self.source}
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, shape: Sequence[int]) -> Preprocessing:
        """Parse and check against the input ``shape`` (without the batch); ``ValueError``."""
        raw = json.loads(data)
        if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list):
            raise ValueError("preprocessing must be an object with a list of steps")
        steps = tuple(_step(item, tuple(shape)) for item in raw["steps"])
        if any(s.op == "fill_missing" for s in steps[1:]):
            raise ValueError("fill_missing can only be the first step")
        return cls(steps, str(raw.get("source", "")))


_UFUNCS = {"subtract": np.subtract, "divide": np.divide, "multiply": np.multiply, "add": np.add}
# The ufunc ``np.clip`` ends in for float bounds (``numpy._core._methods._clip``), called
# directly: the same numbers without the Python wrapper (half a microsecond a request).
_CLIP: Any = getattr(getattr(getattr(np, "_core", None), "umath", None), "clip", None) or np.clip

Op = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]  # (x, out) -> x after the step


class Compiled:
    """``apply(x)`` cast to ``dtype``, the network's input type, in the fewest numpy calls:
    each value or clip step one call, the first into a new array, the others in it, the last
    straight into the result (computed in float64, then cast: the same numbers as ``apply``
    then ``astype``). A leading ``fill_missing`` and trailing ``clip_if_infinite`` steps change
    nothing when the other steps' result is finite (a NaN stays NaN through each of them, so
    there was none to fill; nothing overflowed, so nothing to clip): they cost one
    ``isfinite`` of the result, and only a result that is not finite runs ``apply`` itself.
    Steps in any other order (no converter writes them) always run ``apply``."""

    def __init__(self, preprocessing: Preprocessing, dtype: type[np.floating[Any]]) -> None:
        self.preprocessing = preprocessing
        self.dtype = dtype
        steps = list(preprocessing.steps)
        self._guard = False  # whether a result that is not finite must run ``apply`` instead
        if steps and steps[0].op == "fill_missing":
            steps, self._guard = steps[1:], True
        while steps and steps[-1].op == "clip_if_infinite":
            steps, self._guard = steps[:-1], True
        # Steps in any other order: only ``apply`` runs them
        self._whole = any(step.op == "clip_if_infinite" for step in steps)
        ops = [] if self._whole else [_op(step) for step in steps]
        # Split once: the steps before the last (the first into a new array, the others in it)
        # and the last, which writes the result.
        self._head: tuple[Op, ...] = tuple(ops[:-1])
        self._last: Op | None = ops[-1] if ops else None

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The network's input for ``x`` (rows, *shape), written into ``out`` when given (a
        buffer the session reads); ``x`` itself is left alone."""
        target = np.empty(x.shape, dtype=self.dtype) if out is None else out
        if x.dtype != np.float64:
            x = x.astype(np.float64)
        # No ``np.errstate`` here (a microsecond or two a request): an overflow (an input near
        # float's range) is the original's too, the numbers stay apply's, and numpy's warning
        # about it is filtered at the top of this module.
        last = self._last
        if last is not None:
            work = x
            for op in self._head:  # the first writes a new array, the others work in it
                work = op(work, None if work is x else work)
            last(work, target)
        elif self._whole:
            np.copyto(target, self.preprocessing.apply(x))
            return target
        else:
            np.copyto(target, x)
        if self._guard and not np.isfinite(target).all():
            np.copyto(target, self.preprocessing.apply(x))
        return target


def _op(step: Step) -> Op:
    """One value or clip step as a call, the same operation ``_apply`` makes."""
    if step.op == "clip":
        low, high = step.low, step.high
        return lambda x, out: _CLIP(x, low, high, out=out)
    ufunc, values = _UFUNCS[step.op], step.values
    return lambda x, out: ufunc(x, values, out=out)


def _apply(step: Step, out: np.ndarray, fresh: bool) -> np.ndarray:
    """One step over ``out``: in place when ``fresh`` (the array is the steps' own), else
    into a new array."""
    op = step.op
    ufunc = _UFUNCS.get(op)
    if ufunc is not None:  # the same operation as scikit-learn's in-place x -= mean_ etc.
        return ufunc(out, step.values, out=out if fresh else None)
    if op == "fill_missing":
        missing = np.isnan(out)
        return np.where(missing, step.values, out) if missing.any() else out.copy()
    if op == "clip":
        return np.clip(out, step.low, step.high, out=out if fresh else None)
    # clip_if_infinite: per input (window or observation), as the seed did
    out = out if fresh else out.copy()
    infinite = np.isinf(out).reshape(len(out), -1).any(axis=1)
    if infinite.any():
        out[infinite] = np.clip(out[infinite], step.low, step.high)
    return out


def _step(item: Any, shape: tuple[int, ...]) -> Step:
    if not isinstance(item, dict) or item.get("op") not in OPS:
        raise ValueError(f"each step needs an op, one of {', '.join(OPS)}")
    op = str(item["op"])
    if op in VALUE_OPS:
        values = _broadcastable(item.get("values"), shape, op)
        if op == "divide" and (values == 0).any():
            raise ValueError("divide by zero in preprocessing")
        return Step(op, values=values)
    low = _broadcastable(item.get("low"), shape, op)
    high = _broadcastable(item.get("high"), shape, op)
    if (np.broadcast_to(low, shape) > np.broadcast_to(high, shape)).any():
        raise ValueError(f"{op}: low above high")
    return Step(op, low=low, high=high)


def _broadcastable(raw: Any, shape: tuple[int, ...], op: str) -> np.ndarray:
    try:
        values = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: values must be numbers") from None
    if values.dtype != np.float64 or not all(math.isfinite(v) for v in values.ravel().tolist()):
        raise ValueError(f"{op}: values must be finite numbers")
    # One number, one per feature of a row (the last axis), or one per element.
    if values.shape not in ((), shape[-1:], shape):
        raise ValueError(f"{op}: {values.shape} values do not fit an input of shape {shape}")
    return values
