"""Small LightGBM strategy models trained on generated market-like data.

Used by the tests, the benchmarks and ``make serve``; never by the Lambda handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np

from tickerserve.members.kinds import MemberSpec
from tickerserve.storage.bundle import Bundle, BundleMetadata, make_bundle
from tickerserve.storage.registry import utc_now

STRATEGIES = ["IRON_CONDOR", "BULL_PUT_SPREAD", "BEAR_CALL_SPREAD", "LONG_STRADDLE", "NO_TRADE"]
FEATURES = [
    "rsi_14",
    "iv_rank",
    "iv_percentile",
    "hv_20",
    "atr_pct",
    "ret_5d",
    "ret_20d",
    "volume_z",
    "skew_25d",
    "term_slope",
    "put_call_ratio",
    "vix_level",
]
DEMO_ETFS = ["SMH", "SPY", "QQQ", "XLF"]
DEMO_STOCKS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN"]
DEFAULT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 10,
    "verbose": -1,
    "num_threads": 1,
    "deterministic": True,
}


def training_data(
    seed: int, n_rows: int, n_features: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features with a learnable, noisy relation to the class label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, n_features))
    weights = rng.normal(size=(n_features, n_classes))
    logits = x @ weights + rng.normal(scale=0.5, size=(n_rows, n_classes))
    y = logits.argmax(axis=1)
    x[rng.random(x.shape) < 0.02] = np.nan  # real feature pipelines have gaps
    return x, y


def train_booster(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, rounds: int = 20, seed: int = 0
) -> lgb.Booster:
    params = dict(DEFAULT_PARAMS, seed=seed)
    if n_classes == 2:
        params.update(objective="binary")
    else:
        params.update(objective="multiclass", num_class=n_classes)
    return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=rounds)


def booster_bundle(
    model: str,
    version: str,
    boosters: Sequence[lgb.Booster],
    *,
    feature_names: list[str],
    classes: list[str],
    selected_features: list[int] | None = None,
    weights: Sequence[float] | None = None,
    asset_class: str | None = None,
    metrics: dict[str, float] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> Bundle:
    """A native bundle from trained boosters: one member, or a weighted-average ensemble."""
    names = (
        ["model.txt"] if len(boosters) == 1 else [f"model_{i}.txt" for i in range(len(boosters))]
    )
    weights = list(weights) if weights is not None else [1.0] * len(boosters)
    files = {n: b.model_to_string().encode() for n, b in zip(names, boosters, strict=True)}
    metadata = BundleMetadata(
        model=model,
        version=version,
        feature_names=list(feature_names),
        classes=list(classes),
        artifacts={},
        members=[MemberSpec(n, w) for n, w in zip(names, weights, strict=True)],
        method="single" if len(boosters) == 1 else "weighted_average",
        selected_features=selected_features,
        model_type="lightgbm" if len(boosters) == 1 else "lightgbm_ensemble",
        created_at=utc_now(),
        asset_class=asset_class,
        metrics=dict(metrics or {}),
        hyperparameters=dict(hyperparameters or {}),
        training=dict(training or {}),
        source=dict(source or {}),
    )
    return make_bundle(metadata, files)


def demo_bundle(
    model: str,
    version: str = "1.0.0",
    *,
    seed: int = 0,
    n_classes: int = 4,
    n_features: int = len(FEATURES),
    selected_features: list[int] | None = None,
    rows: int = 400,
    rounds: int = 20,
    asset_class: str | None = None,
) -> Bundle:
    """Train a small model on generated data and wrap it as a bundle."""
    names = (FEATURES * (n_features // len(FEATURES) + 1))[:n_features]
    names = [n if i < len(FEATURES) else f"{n}_{i}" for i, n in enumerate(names)]
    used = len(selected_features) if selected_features is not None else n_features
    x, y = training_data(seed, rows, used, n_classes)
    booster = train_booster(x, y, n_classes, rounds=rounds, seed=seed)
    accuracy = float((_proba(booster, x).argmax(axis=1) == y).mean())
    return booster_bundle(
        model,
        version,
        [booster],
        feature_names=names,
        classes=STRATEGIES[:n_classes],
        selected_features=selected_features,
        asset_class=asset_class,
        metrics={"accuracy": round(accuracy, 4), "rows": float(rows)},
        hyperparameters={**DEFAULT_PARAMS, "num_boost_round": rounds},
        training={"start": "2020-01-02", "end": "2025-12-31", "rows": rows, "generated": True},
    )


def _proba(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    raw = np.asarray(booster.predict(x))
    return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw
