"""What a seed's own metadata says about a model (metrics, training window, hyperparameters,
creation time), read leniently: seeds name these fields in many ways."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

import numpy as np

from tickerserve.storage.registry import utc_now

METRIC_HINTS = ("accuracy", "f1", "precision", "recall", "auc", "loss", "score", "sharpe",
                "return", "win_rate", "mcc", "kappa", "rmse")  # fmt: skip
# Short names count only as a whole word of the key ("validation_r2", not "layer2").
METRIC_WORDS = re.compile(r"(^|_)(mae|mse|r2|mape)($|_)")
START_KEYS = ("train_start", "training_start", "start_date", "data_start", "train_start_date",
              "training_date_start")  # fmt: skip
END_KEYS = ("train_end", "training_end", "end_date", "data_end", "train_end_date",
            "training_date_end")  # fmt: skip
ROWS_KEYS = ("n_samples", "rows", "training_samples", "n_train", "train_size", "n_rows")
CREATED_KEYS = ("created_at", "trained_at", "training_date", "timestamp", "date")
HYPER_KEYS = ("hyperparameters", "params", "model_params", "best_params")


def first(src: Any, keys: tuple[str, ...]) -> Any:
    """The value of the first of ``keys`` that ``src`` (a dict) has, else None."""
    if isinstance(src, dict):
        for key in keys:
            if key in src:
                return src[key]
    return None


def created_at(*sources: Any) -> str:
    for src in sources:
        value = first(src, CREATED_KEYS)
        if isinstance(value, str) and value:
            return value
    return utc_now()


def metrics(meta: dict[str, Any], notes: list[str]) -> dict[str, float]:
    """Finite numbers from ``meta["metrics"]`` and from top-level keys that look like metrics."""
    found: dict[str, float] = {}
    nested = meta.get("metrics")
    candidates = dict(nested) if isinstance(nested, dict) else {}
    for key, value in meta.items():
        name = str(key).lower()
        if any(h in name for h in METRIC_HINTS) or METRIC_WORDS.search(name):
            candidates.setdefault(key, value)
    for key, value in candidates.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            continue
        if math.isfinite(float(value)):
            found[str(key)] = float(value)
        else:
            notes.append(f"dropped metric {key}: not a finite number")
    return found


def training(meta: dict[str, Any]) -> dict[str, Any]:
    """Training window and size: ``start``, ``end``, ``rows`` (plus a nested ``training``)."""
    out: dict[str, Any] = {}
    for name, keys in (("start", START_KEYS), ("end", END_KEYS), ("rows", ROWS_KEYS)):
        value = first(meta, keys)
        if value is not None and scalar(value):
            out[name] = jsonable(value)
    nested = meta.get("training")
    if isinstance(nested, dict):
        out.update(scalars(nested))
    return out


def hyperparameters(meta: dict[str, Any], estimator: Any = None) -> dict[str, Any]:
    """The seed's recorded hyperparameters, else the estimator's own parameters."""
    for key in HYPER_KEYS:
        value = meta.get(key)
        if isinstance(value, dict):
            return scalars(value)
    if estimator is None:
        return {}
    get_params = getattr(estimator, "get_params", None)
    params = get_params() if callable(get_params) else dict(getattr(estimator, "params", {}) or {})
    return scalars(params)


def scalars(mapping: dict[Any, Any]) -> dict[str, Any]:
    """The entries of ``mapping`` a JSON document can hold as they are (finite numbers, text,
    booleans, dates, null), keys as text."""
    return {str(k): jsonable(v) for k, v in mapping.items() if scalar(v)}


def scalar(value: Any) -> bool:
    if isinstance(value, float | np.floating):
        return math.isfinite(float(value))
    return value is None or isinstance(value, str | int | bool | np.integer | date)


def jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
