"""Treelite's C API through ctypes: restore a serialized model and predict with GTIL, without
importing the ``treelite`` Python package.

That package imports ``scipy.sparse`` for its public ``gtil`` module (about 170 ms of a cold
start on a Lambda-sized CPU) and frontends the function never uses. The shared library it
wraps is all serving needs: ``libtreelite.so`` from the same wheel (found beside the package
without running its ``__init__``), called exactly as the package calls it.
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

_LIBRARY_NAMES = {"win32": "treelite.dll", "darwin": "libtreelite.dylib"}


class TreeliteError(Exception):
    """An error the Treelite library reported (its own message)."""


@functools.cache
def library() -> Any:
    """``libtreelite`` from the installed ``treelite`` wheel, loaded once."""
    spec = importlib.util.find_spec("treelite")
    if spec is None or not spec.submodule_search_locations:
        raise TreeliteError("the treelite package is not installed")
    name = _LIBRARY_NAMES.get(sys.platform, "libtreelite.so")
    path = Path(next(iter(spec.submodule_search_locations))) / "lib" / name
    lib = ctypes.cdll.LoadLibrary(str(path))
    lib.TreeliteGetLastError.restype = ctypes.c_char_p
    return lib


def check(status: int) -> None:
    """Raise the library's last error when a call did not return 0."""
    if status != 0:
        message = library().TreeliteGetLastError() or b"unknown error"
        raise TreeliteError(message.decode("utf-8", "replace"))


class _BufferFrame(ctypes.Structure):
    """The array Treelite hands out for a header or tree field (its ``PyBufferFrame``)."""

    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("format", ctypes.c_char_p),
        ("itemsize", ctypes.c_size_t),
        ("nitem", ctypes.c_size_t),
    ]


# struct format of a field's items -> numpy type (Treelite's own table).
_FORMATS = {b"=l": "<i4", b"=Q": "<u8", b"=L": "<u4", b"=B": "u1", b"=b": "i1", b"=f": "<f4",
            b"=d": "<f8", b"=c": "S1"}  # fmt: skip


def _array(frame: _BufferFrame) -> np.ndarray:
    """A copy of a field's items (the model owns the buffer)."""
    dtype = _FORMATS.get(frame.format or b"")
    if dtype is None:
        raise TreeliteError(f"unknown field format {frame.format!r}")
    size = int(frame.nitem) * int(frame.itemsize)
    data = ctypes.string_at(frame.buf, size) if frame.buf and size else b""
    return np.frombuffer(data, dtype=dtype).copy()


class NativeModel:
    """A restored Treelite model (owns its native handle)."""

    def __init__(self, handle: ctypes.c_void_p) -> None:
        self.handle: ctypes.c_void_p | None = handle
        self._free = library().TreeliteFreeModel

    @classmethod
    def deserialize_bytes(cls, data: bytes) -> NativeModel:
        """The model ``Model.serialize_bytes()`` wrote (``TreeliteDeserializeModelFromBytes``)."""
        handle = ctypes.c_void_p()
        buffer = ctypes.create_string_buffer(data, len(data))
        check(
            library().TreeliteDeserializeModelFromBytes(
                ctypes.pointer(buffer), ctypes.c_size_t(len(data)), ctypes.byref(handle)
            )
        )
        return cls(handle)

    def __del__(self) -> None:
        handle, self.handle = getattr(self, "handle", None), None
        if handle is not None and handle.value:
            self._free(handle)

    def _size(self, function: str) -> int:
        out = ctypes.c_size_t()
        check(getattr(library(), function)(self.handle, ctypes.byref(out)))
        return int(out.value)

    def _text(self, function: str) -> str:
        out = ctypes.c_char_p()
        check(getattr(library(), function)(self.handle, ctypes.byref(out)))
        return (out.value or b"").decode()

    @property
    def num_tree(self) -> int:
        return self._size("TreeliteQueryNumTree")

    @property
    def num_feature(self) -> int:
        return self._size("TreeliteQueryNumFeature")

    @property
    def input_type(self) -> str:
        return self._text("TreeliteGetInputType")

    @property
    def output_type(self) -> str:
        return self._text("TreeliteGetOutputType")

    def header_field(self, name: str) -> np.ndarray:
        """A model-level field (``num_class``, ``base_scores``, ...; see Treelite's model
        spec), as a numpy array."""
        frame = _BufferFrame()
        check(library().TreeliteGetHeaderField(self.handle, name.encode(), ctypes.byref(frame)))
        return _array(frame)

    def tree_field(self, tree: int, name: str) -> np.ndarray:
        """One tree's field (``cleft``, ``threshold``, ``sum_hess``, ...), as a numpy array."""
        frame = _BufferFrame()
        check(
            library().TreeliteGetTreeField(
                self.handle, ctypes.c_uint64(tree), name.encode(), ctypes.byref(frame)
            )
        )
        return _array(frame)


class Predictor:
    """A prepared GTIL call (``TreeliteGTILPredict``) on one thread: the configuration is
    parsed once per model instead of on every call, which costs more than walking 100 trees.

    ``predict_type`` is ``raw`` (margins summed over trees) or ``score_per_tree``.
    """

    def __init__(self, model: NativeModel, predict_type: str) -> None:
        lib = library()
        self._model = model  # keeps the native model alive as long as we use it
        self._lib = lib
        config = json.dumps({"predict_type": predict_type, "nthread": 1})
        self._config: ctypes.c_void_p | None = ctypes.c_void_p()
        check(lib.TreeliteGTILParseConfig(config.encode(), ctypes.byref(self._config)))
        shape_ptr = ctypes.POINTER(ctypes.c_uint64)()
        ndim = ctypes.c_uint64()
        check(
            lib.TreeliteGTILGetOutputShape(
                model.handle, ctypes.c_uint64(1), self._config, ctypes.byref(shape_ptr),
                ctypes.byref(ndim),
            )
        )  # fmt: skip
        shape = [int(v) for v in np.ctypeslib.as_array(shape_ptr, shape=(ndim.value,))]
        self._tail = tuple(shape[1:])
        self._out_type = np.float32 if model.output_type == "float32" else np.float64
        self._in_type = model.input_type.encode()

    def __del__(self) -> None:
        config, self._config = getattr(self, "_config", None), None
        if config is not None and config.value:
            self._lib.TreeliteGTILDeleteConfig(config)

    def predict(self, data: np.ndarray) -> np.ndarray:
        """Outputs for C-contiguous ``data`` of the model's input type."""
        n_rows = data.shape[0]
        out = np.empty((n_rows, *self._tail), dtype=self._out_type)
        check(
            self._lib.TreeliteGTILPredict(
                self._model.handle,
                ctypes.c_void_p(data.ctypes.data),
                ctypes.c_char_p(self._in_type),
                ctypes.c_uint64(n_rows),
                ctypes.c_void_p(out.ctypes.data),
                self._config,
            )
        )
        return out
