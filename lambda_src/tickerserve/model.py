"""A loaded model version: LightGBM boosters plus the metadata that maps outputs to labels.

Only native LightGBM text models are loaded (``Booster(model_str=...)``); nothing is unpickled.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from tickerserve.bundle import BundleMetadata
from tickerserve.errors import InvalidModel
from tickerserve.features import FeatureSchema

logger = logging.getLogger(__name__)

CLASSIFIER_OBJECTIVES = frozenset({"binary", "multiclass", "multiclassova", "cross_entropy"})
_COLUMN = re.compile(r"^Column_\d+$")


@dataclass(frozen=True)
class ModelKey:
    model: str
    version: str

    def __str__(self) -> str:
        return f"{self.model}@{self.version}"


class LoadedModel:
    """Boosters for one version, checked against their metadata, ready to predict."""

    def __init__(
        self,
        metadata: BundleMetadata,
        files: Mapping[str, bytes],
        *,
        metadata_sha256: str | None = None,
    ) -> None:
        self.metadata = metadata
        self.metadata_sha256 = metadata_sha256  # the digest of the metadata.json it came from
        self.key = ModelKey(metadata.model, metadata.version)
        self.classes = list(metadata.classes)
        self.used_features = metadata.used_features
        self.schema = FeatureSchema(metadata.feature_names, metadata.selected_features)
        self.size_bytes = metadata.artifact_bytes
        self._boosters = [_load_booster(files[m.artifact], m.artifact) for m in metadata.members]
        total = sum(m.weight for m in metadata.members)
        self._weights = [m.weight / total for m in metadata.members]
        self._check_shape(files)
        self._fast = [_SingleRow.create(b) for b in self._boosters]

    def _check_shape(self, files: Mapping[str, bytes]) -> None:
        for member, booster in zip(self.metadata.members, self._boosters, strict=True):
            n_features = booster.num_feature()
            if n_features != len(self.used_features):
                raise InvalidModel(
                    f"{self.key}: {member.artifact} expects {n_features} features but metadata "
                    f"lists {len(self.used_features)}"
                )
            trained = booster.feature_name()
            # Models trained on bare arrays carry Column_0..n; named ones must match by order,
            # or name -> value requests would feed values into the wrong inputs.
            if not all(_COLUMN.match(n) for n in trained) and trained != [
                n.replace(" ", "_") for n in self.used_features
            ]:
                raise InvalidModel(
                    f"{self.key}: {member.artifact} was trained on features "
                    f"{trained[:5]}... but metadata lists {self.used_features[:5]}... "
                    "(names or order differ)"
                )
            objective = _objective(files[member.artifact])
            if objective not in CLASSIFIER_OBJECTIVES:
                raise InvalidModel(
                    f"{self.key}: {member.artifact} has objective {objective!r}; only "
                    f"classifiers ({', '.join(sorted(CLASSIFIER_OBJECTIVES))}) give probabilities"
                )
            n_outputs = booster.num_model_per_iteration()
            expected = 1 if len(self.classes) == 2 else len(self.classes)
            if n_outputs != expected:
                raise InvalidModel(
                    f"{self.key}: {member.artifact} has {n_outputs} outputs per row but metadata "
                    f"lists {len(self.classes)} classes"
                )

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n_rows, n_classes), columns in ``classes`` order."""
        outputs = [
            _booster_proba(b, f, rows) for b, f in zip(self._boosters, self._fast, strict=True)
        ]
        if self.metadata.method == "stacking":
            stacking = self.metadata.stacking
            assert stacking is not None  # guaranteed by BundleMetadata.validate
            logits = np.hstack(outputs) @ np.asarray(stacking.coefficients).T
            logits += np.asarray(stacking.intercept)
            logits -= logits.max(axis=1, keepdims=True)
            exp = np.exp(logits)
            return np.asarray(exp / exp.sum(axis=1, keepdims=True))
        if len(outputs) == 1:
            return outputs[0]
        return np.asarray(sum(w * o for w, o in zip(self._weights, outputs, strict=True)))


def _objective(model_text: bytes) -> str:
    """The objective's name from the model text header (``objective=multiclass num_class:5``)."""
    header = model_text[: model_text.find(b"\nTree=")]
    for line in header.decode("utf-8", "replace").splitlines():
        if line.startswith("objective="):
            return line.removeprefix("objective=").split(" ", 1)[0]
    return "unknown"


def _load_booster(data: bytes, name: str) -> lgb.Booster:
    try:
        return lgb.Booster(model_str=data.decode("utf-8"))
    except (lgb.basic.LightGBMError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidModel(f"{name} is not a LightGBM text model: {exc}") from None


def _booster_proba(booster: lgb.Booster, fast: _SingleRow | None, rows: np.ndarray) -> np.ndarray:
    raw = fast.predict(rows) if fast is not None and rows.shape[0] == 1 else None
    if raw is None:
        # One thread: a request is small, and OpenMP's thread start-up costs more than it saves.
        raw = np.asarray(booster.predict(rows, num_threads=1))
    if raw.ndim == 1:  # binary objective: probability of the second class
        return np.column_stack([1.0 - raw, raw])
    return raw


class _SingleRow:
    """LightGBM's single-row fast path (``LGBM_BoosterPredictForMatSingleRowFast``).

    ``Booster.predict`` spends most of a one-row call on per-call setup; a FastConfig prepared
    once per booster skips it (about 4x less for a typical model). The same trees and the
    same probabilities; a test compares both paths. Uses lightgbm's ctypes handles, so any
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
    def create(cls, booster: lgb.Booster) -> _SingleRow | None:
        try:
            from lightgbm.basic import _LIB

            config = ctypes.c_void_p()
            status = _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(0),  # C_API_PREDICT_NORMAL: probabilities
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
        return cls(booster, _LIB, config) if status == 0 and config.value else None

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
