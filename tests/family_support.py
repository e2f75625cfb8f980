"""Every model family the seeds bring, trained small on generated data once per process, and
converted into bundles with the publisher's converters.

Keys: ``{family}_{task}``: lightgbm, xgboost, random_forest, extra_trees, gradient_boosting,
hist_gradient_boosting (``_classifier``, ``_binary`` where it matters, ``_regressor``), plus
``stack_regressor`` (seed 003: XGBoost + LightGBM under a Ridge) and ``weighted_classifier``
(seed 002: RandomForest + GradientBoosting with weights).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Ridge

from tickerserve.publishing.conversion.assemble import assemble
from tickerserve.publishing.conversion.estimators import convert_estimator
from tickerserve.publishing.conversion.linear import convert_linear
from tickerserve.publishing.demo import FEATURES, STRATEGIES
from tickerserve.storage.bundle import Bundle

N_ROWS = 240
TREES = 12


@dataclass(frozen=True)
class Family:
    """A trained original and how to ask it (the answer tickerserve must reproduce)."""

    name: str
    estimators: dict[str, Any]  # member name -> fitted estimator
    reference: Callable[[np.ndarray], np.ndarray]  # probabilities (n, k) or values (n,)
    labels: list[str] | None  # class labels in output order (classifiers)
    missing: bool  # whether the original accepts NaN
    weights: dict[str, float] | None = None
    meta: Any = None

    @property
    def task(self) -> str:
        return "classification" if self.labels is not None else "regression"

    def bundle(self, model: str) -> Bundle:
        members = [
            convert_estimator(e, stem=n, name=n, weight=(self.weights or {}).get(n, 1.0))
            for n, e in self.estimators.items()
        ]
        assembled = assemble(
            members,
            model=model,
            feature_names=list(FEATURES),
            method="weighted_average" if self.weights else "single",
            stacking=None if self.meta is None else convert_linear(self.meta),
            labels=self.labels,
        )
        return assembled.bundle


def data(seed: int, n_classes: int, *, missing: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, class labels (0..k-1) and a regression target with a learnable signal."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_ROWS, len(FEATURES)))
    logits = x @ rng.normal(size=(len(FEATURES), n_classes))
    y = (logits + rng.normal(scale=0.5, size=logits.shape)).argmax(axis=1)
    value = 0.01 * (x[:, 0] - 0.5 * x[:, 3] + np.sin(x[:, 5])) + rng.normal(
        scale=0.002, size=N_ROWS
    )
    if missing:
        x[rng.random(x.shape) < 0.03] = np.nan
    return x, y, value


def _quiet(fn: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def _classifier(name: str, est: Any, labels: list[str], missing: bool = True) -> Family:
    return Family(name, {"model": est}, lambda r: _quiet(lambda: est.predict_proba(r)), labels,
                  missing)  # fmt: skip


def _regressor(name: str, est: Any, missing: bool = True) -> Family:
    return Family(name, {"model": est}, lambda r: _quiet(lambda: est.predict(r)), None, missing)


@functools.cache
def families() -> dict[str, Family]:
    x, y, value = data(1, 4, missing=True)
    x2, y2, _ = data(2, 2, missing=True)
    dense, y_dense, value_dense = data(3, 3, missing=False)  # classic GB refuses NaN
    labels4, labels2, labels3 = STRATEGIES[:4], STRATEGIES[:2], STRATEGIES[:3]
    lgb_params: dict[str, Any] = {
        "n_estimators": TREES,
        "num_leaves": 7,
        "verbose": -1,
        "n_jobs": 1,
    }
    xgb_params = {"n_estimators": TREES, "max_depth": 4, "n_jobs": 1, "random_state": 0}
    forest = {"n_estimators": TREES, "max_depth": 6, "n_jobs": 1, "random_state": 0}
    boost = {"n_estimators": TREES, "max_depth": 3, "random_state": 0}
    hist = {"max_iter": TREES, "random_state": 0}
    out = [
        _classifier("lightgbm_classifier", lgb.LGBMClassifier(**lgb_params).fit(x, y), labels4),
        _regressor("lightgbm_regressor", lgb.LGBMRegressor(**lgb_params).fit(x, value)),
        _classifier("xgboost_classifier", xgb.XGBClassifier(**xgb_params).fit(x, y), labels4),
        _classifier("xgboost_binary", xgb.XGBClassifier(**xgb_params).fit(x2, y2), labels2),
        _regressor("xgboost_regressor", xgb.XGBRegressor(**xgb_params).fit(x, value)),
        _classifier(
            "random_forest_classifier", RandomForestClassifier(**forest).fit(x, y), labels4
        ),
        _regressor("random_forest_regressor", RandomForestRegressor(**forest).fit(x, value)),
        _classifier("extra_trees_classifier", ExtraTreesClassifier(**forest).fit(x2, y2), labels2),
        _regressor("extra_trees_regressor", ExtraTreesRegressor(**forest).fit(x, value)),
        _classifier(
            "gradient_boosting_classifier",
            GradientBoostingClassifier(**boost).fit(dense, y_dense),
            labels3,
            missing=False,
        ),
        _classifier(
            "gradient_boosting_binary",
            GradientBoostingClassifier(**boost).fit(dense, y_dense > 0),
            labels2,
            missing=False,
        ),
        _regressor(
            "gradient_boosting_regressor",
            GradientBoostingRegressor(**boost).fit(dense, value_dense),
            missing=False,
        ),
        _classifier(
            "hist_gradient_boosting_classifier",
            HistGradientBoostingClassifier(**hist).fit(x, y),
            labels4,
        ),
        _regressor(
            "hist_gradient_boosting_regressor", HistGradientBoostingRegressor(**hist).fit(x, value)
        ),
        _stack(x, value),
        _weighted(dense, y_dense, labels3),
    ]
    return {f.name: f for f in out}


def _stack(x: np.ndarray, value: np.ndarray) -> Family:
    """Seed 003: XGBoost and LightGBM regressors under a Ridge over their predictions."""
    booster = xgb.XGBRegressor(n_estimators=TREES, max_depth=4, n_jobs=1, random_state=1).fit(
        x, value
    )
    light = lgb.LGBMRegressor(n_estimators=TREES, num_leaves=7, verbose=-1, n_jobs=1).fit(x, value)

    def members(rows: np.ndarray) -> np.ndarray:
        return np.column_stack([booster.predict(rows), _quiet(lambda: light.predict(rows))])

    meta = Ridge(alpha=1.0).fit(members(x), value)
    return Family(
        "stack_regressor",
        {"xgb_model": booster, "lgbm_model": light},
        lambda rows: meta.predict(members(rows)),
        None,
        True,
        meta=meta,
    )


def _weighted(x: np.ndarray, y: np.ndarray, labels: list[str]) -> Family:
    """Seed 002: RandomForest and GradientBoosting classifiers, probabilities weighted."""
    rf = RandomForestClassifier(n_estimators=TREES, max_depth=6, n_jobs=1, random_state=2).fit(x, y)
    gb = GradientBoostingClassifier(n_estimators=TREES, max_depth=3, random_state=2).fit(x, y)
    weights = {"rf": 0.473, "gb": 0.527}

    def reference(rows: np.ndarray) -> np.ndarray:
        return weights["rf"] * rf.predict_proba(rows) + weights["gb"] * gb.predict_proba(rows)

    return Family(
        "weighted_classifier", {"rf": rf, "gb": gb}, reference, labels, False, weights=weights
    )


def rows(n: int, *, missing: bool, seed: int = 5) -> np.ndarray:
    """Request rows: wider than the training data, with gaps where the family accepts them."""
    rng = np.random.default_rng(seed)
    out = rng.normal(scale=1.5, size=(n, len(FEATURES)))
    if missing:
        out[rng.random(out.shape) < 0.1] = np.nan
    return out


# Where each family's explanation adds up (``serving.explanations``): boosted classifiers
# before their link, forests in probabilities, regressors in their value.
SPACES = {
    "lightgbm_classifier": "margin", "lightgbm_regressor": "value",
    "xgboost_classifier": "margin", "xgboost_binary": "margin", "xgboost_regressor": "value",
    "random_forest_classifier": "probability", "random_forest_regressor": "value",
    "extra_trees_classifier": "probability", "extra_trees_regressor": "value",
    "gradient_boosting_classifier": "margin", "gradient_boosting_binary": "margin",
    "gradient_boosting_regressor": "value",
}  # fmt: skip


def original_output(name: str, x: np.ndarray, space: str) -> np.ndarray:
    """(n_rows, columns) the original estimator's output in ``space``: its probabilities or
    values (or the family's combined answer), or its own margins (LightGBM's raw score,
    XGBoost's output margin, scikit-learn's decision function)."""
    family = families()[name]
    estimator = next(iter(family.estimators.values()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if space != "margin":
            return np.asarray(family.reference(x), dtype=np.float64).reshape(len(x), -1)
        if name.startswith("lightgbm"):
            raw = estimator.predict(x, raw_score=True)
        elif name.startswith("xgboost"):
            raw = estimator.predict(x, output_margin=True)
        else:
            raw = estimator.decision_function(x)
    return np.asarray(raw, dtype=np.float64).reshape(len(x), -1)
