"""LightGBM members: native text models (``Booster.save_model``), never a pickle.

One-row requests take LightGBM's single-row fast path (a FastConfig prepared once per
booster); larger batches call ``Booster.predict`` with one thread.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

from tickerserve.errors import InvalidModel
from tickerserve.members import LIGHTGBM, expected_outputs
from tickerserve.safe_load import safe_load

if TYPE_CHECKING:
    from tickerserve.bundle import MemberSpec

logger = logging.getLogger(__name__)

CLASSIFIER_OBJECTIVES = frozenset({"binary", "multiclass", "multiclassova", "cross_entropy"})
REGRESSION_OBJECTIVES = frozenset(
    {"regression", "regression_l1", "huber", "fair", "poisson", "quantile", "mape", "gamma",
     "tweedie"}
)  # fmt: skip
_COLUMN = re.compile(r"^Column_\d+$")


def load_booster(data: bytes) -> lgb.Booster:
    """Bytes of a LightGBM text model -> Booster; anything else raises ``InvalidModel``."""
    try:
        return lgb.Booster(model_str=data.decode("utf-8"))
    except (lgb.basic.LightGBMError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidModel(f"not a LightGBM text model: {exc}") from None


def load_booster_safely(data: bytes, what: str) -> lgb.Booster:
    """``load_booster`` in this process once a forked child loaded the same bytes and
    predicted with them: LightGBM aborts the process on some malformed text, and may crash
    on a first prediction (see ``tickerserve.safe_load``)."""
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
    from lightgbm.basic import _LIB

    _LIB.LGBM_SetMaxThreads(ctypes.c_int(1))


def predict_probe_rows(booster: lgb.Booster) -> None:
    """Predict a row of zeros and a row of missing values, as requests will."""
    rows = np.zeros((2, booster.num_feature()))
    rows[1] = np.nan
    booster.predict(rows, num_threads=1)


def objective(model_text: bytes) -> str:
    """The objective's name from the model text header (``objective=multiclass num_class:5``)."""
    header = model_text[: model_text.find(b"\nTree=")]
    for line in header.decode("utf-8", "replace").splitlines():
        if line.startswith("objective="):
            return line.removeprefix("objective=").split(" ", 1)[0]
    return "unknown"


class LightGBMMember:
    """One LightGBM booster, checked against the task it serves."""

    kind = LIGHTGBM

    def __init__(self, booster: lgb.Booster, *, task: str, n_classes: int, name: str) -> None:
        self.booster = booster
        self.task = task
        self.n_features = booster.num_feature()
        trained = list(booster.feature_name())
        # Models trained on bare arrays carry Column_0..n: no names to check against.
        self.trained_names = None if all(_COLUMN.match(n) for n in trained) else trained
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
        return cls(booster, task=task, n_classes=n_classes, name=name)

    @property
    def fast_path(self) -> bool:
        """Whether one-row requests take the single-row fast path (else Booster.predict)."""
        return self._fast is not None

    def predict(self, rows: np.ndarray) -> np.ndarray:
        raw = self._fast.predict(rows) if self._fast is not None and rows.shape[0] == 1 else None
        if raw is None:
            # One thread: a request is small, and OpenMP's thread start-up costs more than it saves.
            raw = np.asarray(self.booster.predict(rows, num_threads=1))
        if self.task == "regression":
            return raw.reshape(-1, 1)
        if raw.ndim == 1:  # binary objective: probability of the second class
            return np.column_stack([1.0 - raw, raw])
        return raw


class SingleRow:
    """LightGBM's single-row fast path (``LGBM_BoosterPredictForMatSingleRowFast``).

    ``Booster.predict`` spends most of a one-row call on per-call setup; a FastConfig prepared
    once per booster skips it (about 4x less for a typical model). The same trees and the
    same outputs; a test compares both paths. Uses lightgbm's ctypes handles, so any
    surprise (another lightgbm build) falls back to ``Booster.predict``.
    """

    def __init__(self, booster: lgb.Booster, lib: Any, config: ctypes.c_void_p) -> None:
        self._booster = booster  # keeps the native handle alive as long as the config
        self._lib = lib
        self._config = config
        outputs = booster.num_model_per_iteration()
        self._shape = (1, outputs) if outputs > 1 else (1,)
        self._n_features = booster.num_feature()
        self._out = np.empty(outputs, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len = ctypes.c_int64()
        self._lock = threading.Lock()  # the config owns one output buffer

    @classmethod
    def create(cls, booster: lgb.Booster) -> SingleRow | None:
        try:
            from lightgbm.basic import _LIB

            config = ctypes.c_void_p()
            status = _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(0),  # C_API_PREDICT_NORMAL: probabilities / transformed values
                ctypes.c_int(0),  # from the first iteration
                ctypes.c_int(-1),  # through the last
                ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
                ctypes.c_int32(booster.num_feature()),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(config),
            )
        except (ImportError, AttributeError, TypeError, ctypes.ArgumentError) as exc:
            logger.warning("lightgbm single-row fast path unavailable: %s", exc)
            return None
        if status != 0 or not config.value:
            logger.warning("lightgbm single-row fast path unavailable: status %s", status)
            return None
        return cls(booster, _LIB, config)

    def predict(self, rows: np.ndarray) -> np.ndarray | None:
        """Raw output for a one-row matrix, shaped like ``Booster.predict``; None on failure."""
        row = rows[0]
        if row.shape != (self._n_features,):
            return None
        if row.dtype != np.float64 or not row.flags.c_contiguous:
            row = np.ascontiguousarray(row, dtype=np.float64)
        with self._lock:
            status = self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                self._config,
                ctypes.c_void_p(row.ctypes.data),
                ctypes.byref(self._out_len),
                self._out_ptr,
            )
            if status != 0:
                return None
            return self._out.reshape(self._shape).copy()

    def __del__(self) -> None:
        if self._config.value:
            self._lib.LGBM_FastConfigFree(self._config)
