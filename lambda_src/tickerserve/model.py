"""A loaded model version: LightGBM boosters plus the metadata that maps outputs to labels.

Only native LightGBM text models are loaded (``Booster(model_str=...)``); nothing is unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from tickerserve.bundle import BundleMetadata
from tickerserve.errors import InvalidModel
from tickerserve.features import FeatureSchema


@dataclass(frozen=True)
class ModelKey:
    model: str
    version: str

    def __str__(self) -> str:
        return f"{self.model}@{self.version}"


class LoadedModel:
    """Boosters for one version, checked against their metadata, ready to predict."""

    def __init__(self, metadata: BundleMetadata, files: Mapping[str, bytes]) -> None:
        self.metadata = metadata
        self.key = ModelKey(metadata.model, metadata.version)
        self.classes = list(metadata.classes)
        self.used_features = metadata.used_features
        self.schema = FeatureSchema(metadata.feature_names, metadata.selected_features)
        self.size_bytes = metadata.artifact_bytes
        self._boosters = [_load_booster(files[m.artifact], m.artifact) for m in metadata.members]
        total = sum(m.weight for m in metadata.members)
        self._weights = [m.weight / total for m in metadata.members]
        self._check_shape()

    def _check_shape(self) -> None:
        for member, booster in zip(self.metadata.members, self._boosters, strict=True):
            n_features = booster.num_feature()
            if n_features != len(self.used_features):
                raise InvalidModel(
                    f"{self.key}: {member.artifact} expects {n_features} features but metadata "
                    f"lists {len(self.used_features)}"
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
        outputs = [_booster_proba(b, rows) for b in self._boosters]
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


def _load_booster(data: bytes, name: str) -> lgb.Booster:
    try:
        return lgb.Booster(model_str=data.decode("utf-8"))
    except (lgb.basic.LightGBMError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidModel(f"{name} is not a LightGBM text model: {exc}") from None


def _booster_proba(booster: lgb.Booster, rows: np.ndarray) -> np.ndarray:
    raw = np.asarray(booster.predict(rows, num_threads=1))
    if raw.ndim == 1:  # binary objective: probability of the second class
        return np.column_stack([1.0 - raw, raw])
    return raw
