"""LightGBM's single-row fast prediction path through its C API (ctypes).

Not used by tickerserve: the benchmark times it next to ``Booster.predict`` to show what a
one-row request could cost if the runtime kept a ``FastConfig`` per loaded booster
(``LGBM_BoosterPredictForMatSingleRowFastInit`` once, ``...SingleRowFast`` per request).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

C_API_PREDICT_NORMAL = 0
C_API_DTYPE_FLOAT64 = 1


class SingleRowFast:
    """Class probabilities for one float64 row, without ``Booster.predict``'s per-call setup."""

    def __init__(self, booster: Any, n_outputs: int) -> None:
        from lightgbm.basic import _LIB, _safe_call

        self._lib = _LIB
        self._booster = booster  # keeps the handle alive
        self.n_features = int(booster.num_feature())
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(C_API_PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(-1),  # all iterations
                ctypes.c_int(C_API_DTYPE_FLOAT64),
                ctypes.c_int32(self.n_features),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        self._out = np.empty(n_outputs, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len = ctypes.c_int64()

    def predict(self, row: np.ndarray) -> np.ndarray:
        """``row``: contiguous float64 of ``n_features`` values. Returns a fresh array."""
        self._lib.LGBM_BoosterPredictForMatSingleRowFast(
            self._config,
            row.ctypes.data_as(ctypes.c_void_p),
            ctypes.byref(self._out_len),
            self._out_ptr,
        )
        return self._out.copy()

    def __del__(self) -> None:
        if getattr(self, "_config", None) is not None and self._config.value:
            self._lib.LGBM_FastConfigFree(self._config)
