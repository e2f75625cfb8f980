"""A network's preprocessing as JSON steps (``members.preprocessing``), on the publisher's
machine: each step is the original's own operation, in its order, so the function's float64
numpy gives the numbers the original gave.

- seed 001's ``preprocessor.pkl``: Bot_kilo's ``DataPreprocessor.save_preprocessor`` dict
  (``scaler``, ``imputer``, ``scaler_type``, ``imputer_strategy``, ``feature_names``,
  ``is_fitted``), applied as its ``transform`` does: the ``SimpleImputer`` fills missing
  values, the scaler scales, and where scaling overflowed the input is clipped to +-1e6. A bare
  fitted scaler, or a ``Pipeline`` of an imputer and a scaler, is taken too.
- scalers: ``StandardScaler`` (``x -= mean_; x /= scale_``), ``MinMaxScaler``
  (``x *= scale_; x += min_``, clipped when ``clip``), ``RobustScaler`` (``x -= center_;
  x /= scale_``); anything else is refused, its class named.
- VecNormalize statistics (``model_vecnormalize.pkl``): ``clip((obs - mean) /
  sqrt(var + epsilon), -clip_obs, clip_obs)``, exactly ``VecNormalize._normalize_obs``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tickerserve.members.preprocessing import Preprocessing, Step
from tickerserve.publishing.conversion import NotConvertible

SCALERS = ("StandardScaler", "MinMaxScaler", "RobustScaler")
SEED_OVERFLOW_CLIP = 1e6  # DataPreprocessor.transform: np.clip(X_scaled, -1e6, 1e6) on inf


def from_preprocessor(
    obj: Any, *, columns: Sequence[int] | None, width: int, label: object
) -> Preprocessing:
    """Steps for a seed's feature preprocessor. ``columns`` picks the model's features out of
    a preprocessor fitted on the full list (None: it was fitted on the model's own features);
    ``width`` is the number of features the model takes."""
    imputer, scaler, seed_class = _parts(obj, label)
    fitted = _n_features(scaler if scaler is not None else imputer)
    if columns is not None and fitted != width:
        if max(columns, default=-1) >= fitted:
            raise NotConvertible(
                f"{label}: the preprocessor was fitted on {fitted} features, fewer than the "
                "feature list the model selects from"
            )
    elif fitted != width:
        raise NotConvertible(
            f"{label}: the preprocessor was fitted on {fitted} features, the model takes {width}"
        )
    pick = list(columns) if columns is not None and fitted != width else list(range(width))
    steps: list[Step] = []
    names: list[str] = []
    if imputer is not None:
        steps.append(_imputer_step(imputer, pick, label))
        names.append(f"{type(imputer).__name__}({getattr(imputer, 'strategy', '')})")
    if scaler is not None:
        steps.extend(_scaler_steps(scaler, pick, label))
        names.append(type(scaler).__name__)
    if seed_class:
        # DataPreprocessor.transform: inf after scaling -> everything clipped to +-1e6.
        limit = np.asarray(SEED_OVERFLOW_CLIP)
        steps.append(Step("clip_if_infinite", low=-limit, high=limit))
    source = " + ".join(names) + (" (seed 001 DataPreprocessor)" if seed_class else "")
    return Preprocessing(tuple(steps), source)


def _parts(obj: Any, label: object) -> tuple[Any, Any, bool]:
    """(imputer or None, scaler or None, whether it is seed 001's DataPreprocessor dict)."""
    if isinstance(obj, dict):
        scaler, imputer = obj.get("scaler"), obj.get("imputer")
        if scaler is None and imputer is None:
            keys = ", ".join(sorted(map(str, obj))[:10])
            raise NotConvertible(f"{label}: the preprocessor dict holds no scaler ({keys})")
        if obj.get("is_fitted") is False:
            raise NotConvertible(f"{label}: the preprocessor was saved unfitted (is_fitted)")
        _check_scaler(scaler, label)
        _check_imputer(imputer, label)
        return imputer, scaler, "scaler_type" in obj or "imputer_strategy" in obj
    name = type(obj).__name__
    if name == "Pipeline":
        imputer = scaler = None
        for step_name, step in obj.steps:
            kind = type(step).__name__
            if kind == "SimpleImputer" and imputer is None and scaler is None:
                imputer = step
            elif kind in SCALERS and scaler is None:
                scaler = step
            elif step is not None and step != "passthrough":
                raise NotConvertible(
                    f"{label}: pipeline step {step_name!r} is a {kind}; a network's preprocessor "
                    f"may hold a SimpleImputer and one of {', '.join(SCALERS)}"
                )
        _check_imputer(imputer, label)
        return imputer, scaler, False
    _check_scaler(obj, label)
    return None, obj, False


def _check_scaler(scaler: Any, label: object) -> None:
    if scaler is not None and type(scaler).__name__ not in SCALERS:
        raise NotConvertible(
            f"{label}: the preprocessor is a {type(scaler).__name__}; a network's scaler must "
            f"be one of {', '.join(SCALERS)} (scikit-learn)"
        )


def _check_imputer(imputer: Any, label: object) -> None:
    if imputer is None:
        return
    if type(imputer).__name__ != "SimpleImputer":
        raise NotConvertible(
            f"{label}: the imputer is a {type(imputer).__name__}; only SimpleImputer is converted"
        )
    marker = getattr(imputer, "missing_values", np.nan)
    if not (isinstance(marker, float) and math.isnan(marker)):
        raise NotConvertible(
            f"{label}: the SimpleImputer fills {marker!r}; only missing values (NaN) are converted"
        )
    if getattr(imputer, "add_indicator", False):
        raise NotConvertible(f"{label}: a SimpleImputer with add_indicator adds columns")


def _n_features(fitted: Any) -> int:
    count = getattr(fitted, "n_features_in_", None)
    if count is None:
        raise NotConvertible(f"the preprocessor's {type(fitted).__name__} is not fitted")
    return int(count)


def _imputer_step(imputer: Any, pick: list[int], label: object) -> Step:
    statistics = np.asarray(imputer.statistics_, dtype=np.float64)
    if not np.isfinite(statistics[pick]).all():
        empty = [i for i in pick if not np.isfinite(statistics[i])]
        # scikit-learn drops such columns from its output: the widths would not line up.
        raise NotConvertible(
            f"{label}: the SimpleImputer saw no values in column(s) {empty[:10]} when fitted"
        )
    return Step("fill_missing", values=statistics[pick])


def _scaler_steps(scaler: Any, pick: list[int], label: object) -> list[Step]:
    name = type(scaler).__name__
    if name == "StandardScaler":
        steps = []
        if scaler.with_mean:
            steps.append(Step("subtract", values=_vector(scaler.mean_, pick, label)))
        if scaler.with_std:
            steps.append(Step("divide", values=_vector(scaler.scale_, pick, label)))
        return steps
    if name == "MinMaxScaler":
        steps = [
            Step("multiply", values=_vector(scaler.scale_, pick, label)),
            Step("add", values=_vector(scaler.min_, pick, label)),
        ]
        if getattr(scaler, "clip", False):
            low, high = (np.asarray(float(v)) for v in scaler.feature_range)
            steps.append(Step("clip", low=low, high=high))
        return steps
    steps = []  # RobustScaler
    if scaler.with_centering:
        steps.append(Step("subtract", values=_vector(scaler.center_, pick, label)))
    if scaler.with_scaling:
        steps.append(Step("divide", values=_vector(scaler.scale_, pick, label)))
    return steps


def _vector(values: Any, pick: list[int], label: object) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)[pick]
    if not np.isfinite(out).all():
        raise NotConvertible(f"{label}: the scaler holds non-finite statistics")
    return out


def from_vecnormalize(stats: Any, shape: Sequence[int], label: object) -> Preprocessing | None:
    """Steps for a VecNormalize's observation statistics (None when it does not normalize
    observations)."""
    if not getattr(stats, "norm_obs", False):
        return None
    rms = stats.obs_rms
    if isinstance(rms, dict):
        raise NotConvertible(f"{label}: VecNormalize of dict observations is not converted")
    mean = np.asarray(rms.mean, dtype=np.float64)
    var = np.asarray(rms.var, dtype=np.float64)
    if mean.shape != tuple(shape) or var.shape != tuple(shape):
        raise NotConvertible(
            f"{label}: the statistics have shape {mean.shape}, the observation {tuple(shape)}"
        )
    epsilon, clip = float(stats.epsilon), float(stats.clip_obs)
    # The divisor as VecNormalize computes it on every call: np.sqrt(var + epsilon), float64.
    divisor = np.sqrt(var + epsilon)
    if not (np.isfinite(mean).all() and np.isfinite(divisor).all() and (divisor > 0).all()):
        raise NotConvertible(f"{label}: the VecNormalize statistics are not finite")
    return Preprocessing(
        (
            Step("subtract", values=mean),
            Step("divide", values=divisor),
            Step("clip", low=np.asarray(-clip), high=np.asarray(clip)),
        ),
        f"VecNormalize (epsilon {epsilon:g}, clip_obs {clip:g})",
    )
