"""XGBoost's own predictor through its C API (``libxgboost``) and ctypes, for batches.

No other engine reaches XGBoost's batch speed: its predictor walks blocks of rows through
array-laid-out tree tops at about 10 ns per tree and row, where onnxruntime takes about 20.
So an XGBoost member that carries XGBoost's own model file (``Booster.save_raw("ubj")``,
written at publish time beside the Treelite model) answers batches here; one-row requests
stay on onnxruntime (a call here costs 0.3-0.6 ms of set-up). The library comes from the
``xgboost-cpu`` wheel (found beside the package, which is never imported: it imports scipy),
the only C library XGBoost publishes. It is XGBoost's arithmetic, so exact by construction;
the member still checks it against its own graph on probe rows before trusting it, in case
the layer's libxgboost reads an older model differently.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

_LIBRARY_NAMES = {"win32": "xgboost.dll", "darwin": "libxgboost.dylib"}
_VALUE, _MARGIN = 0, 1  # XGBoost's PredictionType: transformed outputs, margins


def _config(kind: int) -> bytes:
    return json.dumps(
        {"type": kind, "training": False, "iteration_begin": 0, "iteration_end": 0,
         "strict_shape": True, "missing": float("nan"), "cache_id": 0}
    ).encode()  # fmt: skip


_CONFIGS = {_VALUE: _config(_VALUE), _MARGIN: _config(_MARGIN)}


class XGBoostError(Exception):
    """An error libxgboost reported (its own message), or no libxgboost at all."""


@functools.cache
def library() -> Any:
    """``libxgboost`` from the installed xgboost (or xgboost-cpu) wheel, loaded once."""
    spec = importlib.util.find_spec("xgboost")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    name = _LIBRARY_NAMES.get(sys.platform, "libxgboost.so")
    found = next((Path(f) / "lib" / name for f in folders if (Path(f) / "lib" / name).is_file()),
                 None)  # fmt: skip
    if found is None:
        raise XGBoostError(f"XGBoost's library {name} is not installed")
    lib = ctypes.cdll.LoadLibrary(str(found))
    lib.XGBGetLastError.restype = ctypes.c_char_p
    return lib


def available() -> bool:
    """Whether this process can load libxgboost."""
    try:
        library()
    except (XGBoostError, OSError):
        return False
    return True


def _check(status: int) -> None:
    if status != 0:
        message = library().XGBGetLastError() or b"unknown error"
        raise XGBoostError(message.decode("utf-8", "replace"))


class NativeBooster:
    """An XGBoost booster held by its C handle (freed with the object)."""

    def __init__(self, model: bytes, threads: int = 1) -> None:
        lib = self._lib = library()
        self.handle = ctypes.c_void_p()
        _check(lib.XGBoosterCreate(None, ctypes.c_uint64(0), ctypes.byref(self.handle)))
        buffer = ctypes.create_string_buffer(bytes(model), len(model))
        _check(lib.XGBoosterLoadModelFromBuffer(self.handle, buffer, ctypes.c_uint64(len(model))))
        self.set_threads(threads)
        features = ctypes.c_uint64()
        _check(lib.XGBoosterGetNumFeature(self.handle, ctypes.byref(features)))
        self.n_features = int(features.value)

    def set_threads(self, threads: int) -> None:
        _check(self._lib.XGBoosterSetParam(self.handle, b"nthread", str(threads).encode()))

    def margins(self, rows: np.ndarray) -> np.ndarray:
        """(n_rows, n_margins) float32 margins, XGBoost's ``predict(output_margin=True)``."""
        return self._predict(rows, _MARGIN)

    def values(self, rows: np.ndarray) -> np.ndarray:
        """(n_rows, n_outputs) float32 outputs after the objective's own transformation
        (probabilities of the positive class or of every class, values)."""
        return self._predict(rows, _VALUE)

    def _predict(self, rows: np.ndarray, kind: int) -> np.ndarray:
        data = np.ascontiguousarray(rows, dtype=np.float32)
        interface = json.dumps(
            {"data": [data.ctypes.data, True], "shape": list(data.shape), "typestr": "<f4",
             "version": 3}
        ).encode()  # fmt: skip
        shape = ctypes.POINTER(ctypes.c_uint64)()
        dims = ctypes.c_uint64()
        out = ctypes.POINTER(ctypes.c_float)()
        _check(
            self._lib.XGBoosterPredictFromDense(
                self.handle, interface, _CONFIGS[kind], None, ctypes.byref(shape),
                ctypes.byref(dims), ctypes.byref(out),
            )
        )  # fmt: skip
        sizes = [int(shape[i]) for i in range(dims.value)]
        count = int(np.prod(sizes))
        values = np.ctypeslib.as_array(out, shape=(count,)).copy() if count else np.empty(0)
        return values.astype(np.float32, copy=False).reshape(len(data), -1)

    def __del__(self) -> None:
        handle = getattr(self, "handle", None)
        if handle is not None and handle.value:
            self._lib.XGBoosterFree(handle)


def load_booster(model: bytes) -> NativeBooster:
    """Bytes of ``Booster.save_raw()`` (UBJSON or JSON) -> booster, on one thread."""
    return NativeBooster(model)


def predict_probe_row(booster: NativeBooster) -> None:
    """One prediction of a row of zeros and one of missing values (in a probe child)."""
    rows = np.zeros((2, booster.n_features), dtype=np.float32)
    rows[1] = np.nan
    booster.margins(rows)
