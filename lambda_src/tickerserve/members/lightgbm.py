"""LightGBM members: native text models (``Booster.save_model``), never a pickle.

Loaded and run through LightGBM's C API (``lib_lightgbm``, shipped in the lightgbm package)
with ctypes, not through the ``lightgbm`` Python package: importing that package also imports
scipy.sparse and narwhals for sparse matrices and data frames that a function fed numpy rows
never sees (about 0.15 s of every cold start, measured under Python 3.13 on the layer). The
C API is LightGBM's documented interface, the one its Python package wraps, so nothing here
depends on that package's private attributes. One-row requests take the single-row fast path
(a FastConfig prepared once per booster); larger batches one ``PredictForMat`` call.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tickerserve.errors import InvalidModel
from tickerserve.members.kinds import LIGHTGBM, MARGIN, VALUE, Contributions, expected_outputs
from tickerserve.members.row_split import threads_for
from tickerserve.members.safe_load import safe_load

if TYPE_CHECKING:
    from tickerserve.members.kinds import MemberSpec

logger = logging.getLogger(__name__)

CLASSIFIER_OBJECTIVES = frozenset({"binary", "multiclass", "multiclassova", "cross_entropy"})
REGRESSION_OBJECTIVES = frozenset(
    {"regression", "regression_l1", "huber", "fair", "poisson", "quantile", "mape", "gamma",
     "tweedie"}
)  # fmt: skip
_COLUMN = re.compile(r"Column_[0-9]+")
# c_api.h constants.
_DTYPE_FLOAT64 = 1
_ROW_MAJOR = 1
_PREDICT_NORMAL = 0  # probabilities (classifiers), transformed values (regressors)
_PREDICT_RAW_SCORE = 1  # the raw scores before the objective's transformation
_PREDICT_CONTRIB = 3  # TreeSHAP contributions (plus the expected value), raw-score space
# Regression objectives whose raw score is the answer itself (the others go through a log or
# a square root): their explanations are in value space, the others' in margin space.
IDENTITY_OBJECTIVES = frozenset(
    {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}
)  # The fast path runs one thread: a row is small, and OpenMP start-up costs more than it saves.
_PREDICT_PARAMETERS = b"num_threads=1"
_LIBRARY_NAMES = {"darwin": "lib_lightgbm.dylib", "win32": "lib_lightgbm.dll"}
# A batch's rows per thread: LightGBM's OpenMP team starts in microseconds, a row of a few
# hundred trees takes tens of them (issue 20: a 1,000-item batch splits across the vCPUs).
LIGHTGBM_ROWS_PER_THREAD = 16


class LightGBMUnavailable(InvalidModel):
    """LightGBM's native library is not installed where this process can load it."""


@functools.cache
def library() -> Any:
    """``lib_lightgbm`` from the installed lightgbm package, loaded once (without importing
    the package: ``find_spec`` of a top-level package only locates it)."""
    spec = importlib.util.find_spec("lightgbm")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    name = _LIBRARY_NAMES.get(sys.platform, "lib_lightgbm.so")
    candidates = [Path(folder) / sub / name for folder in folders for sub in ("lib", "bin", "")]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise LightGBMUnavailable(f"LightGBM's library {name} is not installed (pip lightgbm)")
    lib = ctypes.cdll.LoadLibrary(str(found))
    lib.LGBM_GetLastError.restype = ctypes.c_char_p
    return lib


def _call(status: int) -> None:
    if status != 0:
        message = library().LGBM_GetLastError()
        raise InvalidModel(message.decode("utf-8", "replace") if message else "LightGBM error")


class NativeBooster:
    """A LightGBM booster held by its C API handle (freed with the object), with the few
    ``lightgbm.Booster`` methods serving uses, under the same names."""

    def __init__(self, handle: ctypes.c_void_p) -> None:
        self.handle = handle
        self._lib = library()
        self._num_feature = self._count(self._lib.LGBM_BoosterGetNumFeature)
        self._outputs = self._count(self._lib.LGBM_BoosterNumModelPerIteration)

    @classmethod
    def from_string(cls, model_text: str) -> NativeBooster:
        handle = ctypes.c_void_p()
        iterations = ctypes.c_int()
        _call(
            library().LGBM_BoosterLoadModelFromString(
                ctypes.c_char_p(model_text.encode("utf-8")),
                ctypes.byref(iterations),
                ctypes.byref(handle),
            )
        )
        return cls(handle)

    def _count(self, function: Any) -> int:
        value = ctypes.c_int()
        _call(function(self.handle, ctypes.byref(value)))
        return value.value

    def num_feature(self) -> int:
        return self._num_feature

    def num_trees(self) -> int:
        """Trees in the model (rounds x outputs per round)."""
        return self._count(self._lib.LGBM_BoosterNumberOfTotalModel)

    def num_model_per_iteration(self) -> int:
        """Outputs per row: 1 for binary and regression objectives, else the class count."""
        return self._outputs

    def feature_name(self) -> list[str]:
        """The names the booster was trained with (``Column_0``... for bare arrays)."""
        size = 256
        while True:
            buffers = [ctypes.create_string_buffer(size) for _ in range(self._num_feature)]
            pointers = (ctypes.c_char_p * self._num_feature)(
                *(ctypes.cast(b, ctypes.c_char_p) for b in buffers)
            )
            count, needed = ctypes.c_int(), ctypes.c_size_t()
            _call(
                self._lib.LGBM_BoosterGetFeatureNames(
                    self.handle,
                    ctypes.c_int(self._num_feature),
                    ctypes.byref(count),
                    ctypes.c_size_t(size),
                    ctypes.byref(needed),
                    pointers,
                )
            )
            if needed.value <= size:
                return [b.value.decode("utf-8") for b in buffers[: count.value]]
            size = needed.value  # a longer name than the buffers held: ask again

    def predict(
        self, rows: np.ndarray, num_threads: int = 1, *, raw_score: bool = False
    ) -> np.ndarray:
        """Outputs for a 2-D float matrix: (n_rows,) for one output, else (n_rows, outputs);
        ``raw_score``: before the objective's transformation (the margins explanations add up
        to). One thread by default: a request is small, and OpenMP's start-up costs more. More
        threads split the rows (each row is still one thread's, whole: the same answer)."""
        kind = _PREDICT_RAW_SCORE if raw_score else _PREDICT_NORMAL
        out = self._predict(rows, kind, self._outputs, num_threads)
        return out if self._outputs == 1 else out.reshape(len(rows), -1)

    def contributions(self, rows: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """LightGBM's own TreeSHAP: (n_rows, outputs, n_features + 1), per output the
        features' contributions then the expected value, in raw-score space."""
        width = self._outputs * (self._num_feature + 1)
        out = self._predict(rows, _PREDICT_CONTRIB, width, num_threads)
        return out.reshape(len(rows), self._outputs, self._num_feature + 1)

    def _predict(self, rows: np.ndarray, kind: int, width: int, num_threads: int) -> np.ndarray:
        data = np.ascontiguousarray(rows, dtype=np.float64)
        n_rows, n_columns = data.shape
        out = np.empty(n_rows * width, dtype=np.float64)
        written = ctypes.c_int64()
        _call(
            self._lib.LGBM_BoosterPredictForMat(
                self.handle,
                ctypes.c_void_p(data.ctypes.data),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(n_rows),
                ctypes.c_int32(n_columns),
                ctypes.c_int(_ROW_MAJOR),
                ctypes.c_int(kind),
                ctypes.c_int(0),  # from the first iteration
                ctypes.c_int(-1),  # through the last
                ctypes.c_char_p(f"num_threads={num_threads}".encode()),
                ctypes.byref(written),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        if written.value != out.size:
            raise InvalidModel(f"LightGBM wrote {written.value} outputs, expected {out.size}")
        return out

    def __del__(self) -> None:
        if self.handle.value:
            self._lib.LGBM_BoosterFree(self.handle)


def load_booster(data: bytes) -> NativeBooster:
    """Bytes of a LightGBM text model -> booster; anything else raises ``InvalidModel``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidModel(f"not a LightGBM text model: {exc}") from None
    if "\x00" in text:  # the C API reads up to the first NUL: refuse rather than truncate
        raise InvalidModel("not a LightGBM text model: it contains NUL bytes")
    try:
        return NativeBooster.from_string(text)
    except LightGBMUnavailable:
        raise
    except InvalidModel as exc:
        raise InvalidModel(f"not a LightGBM text model: {exc.message}") from None


def load_booster_safely(data: bytes, what: str) -> NativeBooster:
    """``load_booster`` in this process once a forked child loaded the same bytes and
    predicted with them: LightGBM aborts the process on some malformed text, and may crash
    on a first prediction (see ``tickerserve.members.safe_load``)."""
    return safe_load(
        load_booster,
        data,
        what=what,
        check=predict_probe_rows,
        child_setup=lightgbm_single_threaded,
    )


def lightgbm_single_threaded() -> None:
    """Cap LightGBM at one thread (in a probe child): it reuses the thread count of its last
    call, which may have started an OpenMP team in the parent, and a child that opens a
    multi-threaded region after a fork hangs."""
    library().LGBM_SetMaxThreads(ctypes.c_int(1))


def predict_probe_rows(booster: NativeBooster) -> None:
    """Predict a row of zeros and a row of missing values, as requests will."""
    rows = np.zeros((2, booster.num_feature()))
    rows[1] = np.nan
    booster.predict(rows)


def objective(model_text: bytes) -> str:
    """The objective's name from the model text header (``objective=multiclass num_class:5``)."""
    return objective_line(model_text).split(" ", 1)[0] or "unknown"


def objective_line(model_text: bytes) -> str:
    """The objective with its options (``regression sqrt``), or '' when the header has none."""
    header = model_text[: model_text.find(b"\nTree=")]
    for line in header.decode("utf-8", "replace").splitlines():
        if line.startswith("objective="):
            return line.removeprefix("objective=").strip()
    return ""


class LightGBMMember:
    """One LightGBM booster, checked against the task it serves."""

    kind = LIGHTGBM

    def __init__(
        self, booster: NativeBooster, *, task: str, n_classes: int, name: str,
        objective: str = "",
    ) -> None:  # fmt: skip
        self.booster = booster
        self.task = task
        words = objective.split()
        # A regressor whose raw score is its value explains in value space; log links
        # (poisson, gamma, tweedie), a square root, and every classifier in margin space.
        self.space = (
            VALUE
            if task == "regression" and words[:1] and words[0] in IDENTITY_OBJECTIVES
            and "sqrt" not in words
            else MARGIN
        )  # fmt: skip
        self.n_features = booster.num_feature()
        trained = booster.feature_name()
        # Models trained on bare arrays carry Column_0..n: no names to check against.
        self.trained_names = None if all(_COLUMN.fullmatch(n) for n in trained) else trained
        raw_outputs = booster.num_model_per_iteration()
        expected = 1 if task == "regression" or n_classes == 2 else n_classes
        if raw_outputs != expected:
            what = "one value" if task == "regression" else f"{n_classes} classes"
            raise InvalidModel(f"{name} has {raw_outputs} outputs per row but serves {what}")
        self.n_outputs = expected_outputs(task, n_classes)
        self._fast = SingleRow.create(booster)

    @classmethod
    def from_bytes(
        cls, data: bytes, spec: MemberSpec, *, task: str, n_classes: int
    ) -> LightGBMMember:
        name = spec.artifact
        try:
            booster = load_booster_safely(data, name)
        except LightGBMUnavailable:
            raise
        except InvalidModel as exc:
            if exc.message.startswith(name):  # the probe's verdict names the file already
                raise
            raise InvalidModel(f"{name} is {exc.message}") from None
        found = objective(data)
        allowed = CLASSIFIER_OBJECTIVES if task == "classification" else REGRESSION_OBJECTIVES
        if found not in allowed:
            if task == "classification":
                raise InvalidModel(
                    f"{name} has objective {found!r}; only classifiers "
                    f"({', '.join(sorted(CLASSIFIER_OBJECTIVES))}) give probabilities"
                )
            raise InvalidModel(
                f"{name} has objective {found!r}; a regression member needs one of "
                f"{', '.join(sorted(REGRESSION_OBJECTIVES))}"
            )
        return cls(booster, task=task, n_classes=n_classes, name=name,
                   objective=objective_line(data))  # fmt: skip

    @property
    def fast_path(self) -> bool:
        """Whether one-row requests take the single-row fast path (else PredictForMat)."""
        return self._fast is not None

    def predict(self, rows: np.ndarray) -> np.ndarray:
        raw = self._fast.predict(rows) if self._fast is not None and rows.shape[0] == 1 else None
        if raw is None:
            threads = threads_for(len(rows), LIGHTGBM_ROWS_PER_THREAD)
            raw = self.booster.predict(rows, num_threads=threads)
        if self.task == "regression":
            return raw.reshape(-1, 1)
        if raw.ndim == 1:  # binary objective: probability of the second class
            return np.column_stack([1.0 - raw, raw])
        return raw

    def explain(self, rows: np.ndarray) -> Contributions:
        """LightGBM's own TreeSHAP (``C_API_PREDICT_CONTRIB``) in raw-score space: margins
        (log-odds, raw class scores, a log link's log) or a regressor's value. A batch's rows
        are split over the vCPUs. (A single row's rounds are not: LightGBM prepares each
        prediction's range of rounds in the booster itself, so two ranges explained at once
        on one booster would overwrite each other's.)"""
        raw = self.booster.contributions(rows, num_threads=threads_for(len(rows), 1))
        return Contributions(self.space, raw[0, :, -1].copy(), raw[:, :, :-1])


class SingleRow:
    """LightGBM's single-row fast path (``LGBM_BoosterPredictForMatSingleRowFast``).

    A matrix prediction spends most of a one-row call on per-call setup; a FastConfig prepared
    once per booster skips it (about 4x less for a typical model). The same trees and the
    same outputs; a test compares both paths. Any failure to prepare it falls back to the
    matrix call.
    """

    def __init__(self, booster: NativeBooster, config: ctypes.c_void_p) -> None:
        self._booster = booster  # keeps the native handle alive as long as the config
        self._lib = booster._lib
        self._config = config
        outputs = booster.num_model_per_iteration()
        self._shape = (1, outputs) if outputs > 1 else (1,)
        self._n_features = booster.num_feature()
        self._out = np.empty(outputs, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len = ctypes.c_int64()
        self._out_len_ref = ctypes.byref(self._out_len)
        # The row is copied into a buffer of our own: its address is taken once, not per call
        # (``ndarray.ctypes`` costs a microsecond), and any dtype or layout is converted there.
        self._in = np.empty(self._n_features, dtype=np.float64)
        self._in_ptr = ctypes.c_void_p(self._in.ctypes.data)
        self._lock = threading.Lock()  # the config owns one output buffer, we one input buffer

    @classmethod
    def create(cls, booster: NativeBooster) -> SingleRow | None:
        config = ctypes.c_void_p()
        try:
            status = booster._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster.handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),  # from the first iteration
                ctypes.c_int(-1),  # through the last
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(booster.num_feature()),
                ctypes.c_char_p(_PREDICT_PARAMETERS),
                ctypes.byref(config),
            )
        except (AttributeError, TypeError, ctypes.ArgumentError) as exc:
            logger.warning("lightgbm single-row fast path unavailable: %s", exc)
            return None
        if status != 0 or not config.value:
            logger.warning("lightgbm single-row fast path unavailable: status %s", status)
            return None
        return cls(booster, config)

    def predict(self, rows: np.ndarray) -> np.ndarray | None:
        """Raw output for a one-row matrix, shaped like the matrix call's; None on failure."""
        row = rows[0]
        if row.shape != (self._n_features,):
            return None
        with self._lock:
            np.copyto(self._in, row, casting="unsafe")  # as np.asarray(row, np.float64)
            status = self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                self._config, self._in_ptr, self._out_len_ref, self._out_ptr
            )
            if status != 0:
                return None
            return self._out.reshape(self._shape).copy()

    def __del__(self) -> None:
        if self._config.value:
            self._lib.LGBM_FastConfigFree(self._config)
