"""Tree models for the engine and explanation tests: rows on and around the originals' own
split thresholds (read from the estimators, not from tickerserve's conversion), and a
family's member loaded as the function loads it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tests.family_support import families
from tickerserve.members.treelite import TreeliteMember
from tickerserve.serving.model import LoadedModel

# The tree families of tests.family_support that the fast engines serve.
FAST_FAMILIES = (
    "xgboost_classifier",
    "xgboost_binary",
    "xgboost_regressor",
    "random_forest_classifier",
    "random_forest_regressor",
    "extra_trees_classifier",
    "extra_trees_regressor",
    "gradient_boosting_classifier",
    "gradient_boosting_binary",
    "gradient_boosting_regressor",
)


def thresholds(estimator: Any) -> dict[int, np.ndarray]:
    """Feature -> the original estimator's own split thresholds."""
    found: dict[int, list[float]] = {}
    if hasattr(estimator, "get_booster"):
        doc = json.loads(estimator.get_booster().save_raw("json"))
        for tree in doc["learner"]["gradient_booster"]["model"]["trees"]:
            for left, feature, value in zip(
                tree["left_children"], tree["split_indices"], tree["split_conditions"],
                strict=True,
            ):  # fmt: skip
                if left != -1:
                    found.setdefault(int(feature), []).append(float(np.float32(value)))
    else:
        for tree in np.asarray(estimator.estimators_).ravel():
            inner = tree.tree_.children_left >= 0
            for feature, value in zip(
                tree.tree_.feature[inner], tree.tree_.threshold[inner], strict=True
            ):
                found.setdefault(int(feature), []).append(float(value))
    # An infinite threshold (scikit-learn sends missing values one way) is no input value.
    return {f: np.unique(v)[np.isfinite(np.unique(v))] for f, v in found.items()}


def hard_rows(
    estimator: Any, n: int, n_features: int, *, missing: bool, seed: int = 0
) -> np.ndarray:
    """Rows whose values sit exactly on split thresholds, one float32 or float64 step either
    side, or anywhere; NaN, 0.0 and -0.0 among them (NaN only where the original takes it)."""
    rng = np.random.default_rng(seed)
    points = thresholds(estimator)
    out = rng.normal(scale=2.0, size=(n, n_features))
    for j, values in points.items():
        at = rng.choice(values, size=n)
        as32 = at.astype(np.float32)
        step = rng.integers(0, 5, size=n)
        near = np.select(
            [step == 1, step == 2, step == 3, step == 4],
            [np.nextafter(as32, np.float32(-np.inf)).astype(np.float64),
             np.nextafter(as32, np.float32(np.inf)).astype(np.float64),
             np.nextafter(at, -np.inf), np.nextafter(at, np.inf)],
            at,
        )  # fmt: skip
        keep = rng.random(n) < 0.8
        out[keep, j] = near[keep]
    out[rng.random(out.shape) < 0.05] = 0.0
    out[rng.random(out.shape) < 0.05] = -0.0
    if missing:
        out[rng.random(out.shape) < 0.1] = np.nan
    return out


def loaded(name: str) -> LoadedModel:
    """The family's bundle, loaded as the function loads it."""
    bundle = families()[name].bundle(f"families/{name}")
    return LoadedModel(bundle.metadata, bundle.files)


def member(name: str) -> TreeliteMember:
    """The family's (only) tree member, as the function loads it."""
    found = loaded(name).members[0]
    assert isinstance(found, TreeliteMember)
    return found
