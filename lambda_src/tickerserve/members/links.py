"""The logistic and softmax links of scikit-learn's classifiers, without scipy.

scikit-learn turns margins into probabilities with ``scipy.special.expit`` (binary) and its
own ``extmath.softmax`` (``scipy.special.softmax`` computes it the same way); importing scipy
costs a cold start 200+ ms and the layer 104 MiB, so both are written here with the same
arithmetic, and they answer the same bits (tests/unit/members/test_links.py).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np


def _c_exp() -> Callable[[float], float] | None:
    """The C library's ``exp``, which scipy's ``expit`` calls (numpy's own SIMD ``exp`` may
    differ from it in the last bit)."""
    try:
        exp = ctypes.CDLL("libm.so.6").exp
    except (OSError, AttributeError):  # not glibc: numpy's exp (within one ulp)
        return None
    exp.restype, exp.argtypes = ctypes.c_double, [ctypes.c_double]
    return exp


_EXP = _c_exp()


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-x)) elementwise, in float64.

    As ``scipy.special.expit`` computes it, bit for bit, wherever exp(-x) is finite; below
    x = -709.78, where exp(-x) overflows and scipy answers 0, the answer is exp(x) (a
    subnormal number, the true value to double precision). Never a NaN or a warning for a
    finite or infinite input.
    """
    values = np.asarray(x, dtype=np.float64)
    if _EXP is None:
        with np.errstate(over="ignore"):
            exps = np.exp(-values)
    else:
        flat = (-values).ravel().tolist()
        exps = np.fromiter(map(_EXP, flat), dtype=np.float64, count=len(flat))
        exps = exps.reshape(values.shape)
    out = 1.0 / (1.0 + exps)
    overflowed = np.isposinf(exps) & np.isfinite(values)
    if overflowed.any():
        out[overflowed] = np.exp(values[overflowed])
    return np.asarray(out)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along ``axis`` (``scipy.special.softmax``): the
    shift by the largest value keeps every exp at most 1, so no score overflows."""
    values = np.asarray(x, dtype=np.float64)
    shifted = np.exp(values - values.max(axis=axis, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=axis, keepdims=True))
