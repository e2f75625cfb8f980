"""Preprocessors as the seed applies them: Bot_kilo's DataPreprocessor dict (imputer, scaler,
overflow clip), a bare scaler or an imputer-and-scaler pipeline, columns picked from a
preprocessor fitted on the full list, VecNormalize's statistics; anything else is refused with
its class named."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PowerTransformer, StandardScaler
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from tests.network_support import TradingEnv
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.preprocessors import from_preprocessor, from_vecnormalize

X = np.random.default_rng(0).normal(scale=7, size=(100, 6)) + 2


def seed_dict(**changes):
    imputer = SimpleImputer(strategy="median").fit(X)
    base = {
        "scaler": StandardScaler().fit(X),
        "imputer": imputer,
        "scaler_type": "standard",
        "imputer_strategy": "median",
        "feature_names": [f"feature_{i}" for i in range(6)],
        "is_fitted": True,
    }
    return base | changes


def test_the_seed_dict_becomes_imputer_scaler_and_the_overflow_clip():
    steps = from_preprocessor(seed_dict(), columns=None, width=6, label="preprocessor.pkl")
    assert [s.op for s in steps.steps] == ["fill_missing", "subtract", "divide", "clip_if_infinite"]
    assert steps.source == "SimpleImputer(median) + StandardScaler (seed 001 DataPreprocessor)"
    assert steps.fills_missing


def test_columns_pick_the_selection_from_a_full_preprocessor():
    steps = from_preprocessor(seed_dict(), columns=[1, 4], width=2, label="p")
    scaler = seed_dict()["scaler"]
    np.testing.assert_array_equal(steps.steps[1].values, scaler.mean_[[1, 4]])
    np.testing.assert_array_equal(steps.steps[2].values, scaler.scale_[[1, 4]])


def test_a_pipeline_and_a_bare_scaler_are_taken():
    pipeline = make_pipeline(SimpleImputer(), StandardScaler()).fit(X)
    assert [s.op for s in from_preprocessor(pipeline, columns=None, width=6, label="p").steps] == [
        "fill_missing",
        "subtract",
        "divide",
    ]
    bare = from_preprocessor(StandardScaler().fit(X), columns=None, width=6, label="p")
    assert [s.op for s in bare.steps] == ["subtract", "divide"] and not bare.fills_missing


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            PowerTransformer().fit(X),
            "the preprocessor is a PowerTransformer; a network's scaler "
            "must be one of StandardScaler, MinMaxScaler, RobustScaler",
        ),
        (seed_dict(imputer=KNNImputer().fit(X)), "the imputer is a KNNImputer"),
        (
            seed_dict(imputer=SimpleImputer(missing_values=0.0).fit(X)),
            "the SimpleImputer fills 0.0; only missing values",
        ),
        (seed_dict(is_fitted=False), "saved unfitted"),
        ({"mean": [0.0]}, r"the preprocessor dict holds no scaler \(mean\)"),
        (
            make_pipeline(SimpleImputer(), PowerTransformer()).fit(X),
            "pipeline step 'powertransformer' is a PowerTransformer",
        ),
    ],
)
def test_other_preprocessors_are_refused_with_their_class(obj, message):
    with pytest.raises(NotConvertible, match=message):
        from_preprocessor(obj, columns=None, width=6, label="p")


def test_a_preprocessor_of_another_width_is_refused():
    with pytest.raises(NotConvertible, match="fitted on 6 features, the model takes 4"):
        from_preprocessor(seed_dict(), columns=None, width=4, label="p")


def test_an_imputer_that_saw_no_values_in_a_column_is_refused():
    x = X.copy()
    x[:, 2] = np.nan
    imputer = SimpleImputer(keep_empty_features=True).fit(x)
    imputer.statistics_[2] = np.nan
    with pytest.raises(NotConvertible, match=r"saw no values in column\(s\) \[2\]"):
        from_preprocessor(seed_dict(imputer=imputer), columns=None, width=6, label="p")


def test_vecnormalize_becomes_its_own_formula():
    venv = VecNormalize(DummyVecEnv([lambda: TradingEnv(4, rows=3)]), clip_obs=5.0)
    venv.reset()
    for _ in range(20):
        venv.step(np.array([1]))
    steps = from_vecnormalize(venv, (3, 4), "model_vecnormalize.pkl")
    assert steps is not None and steps.source == "VecNormalize (epsilon 1e-08, clip_obs 5)"
    obs = np.random.default_rng(1).normal(scale=30, size=(5, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(steps.apply(obs).astype(np.float32), venv.normalize_obs(obs))


def test_vecnormalize_without_observation_normalization_is_no_step():
    venv = VecNormalize(DummyVecEnv([lambda: TradingEnv(4)]), norm_obs=False)
    assert from_vecnormalize(venv, (4,), "v") is None


def test_vecnormalize_of_another_shape_is_refused():
    venv = VecNormalize(DummyVecEnv([lambda: TradingEnv(4)]))
    with pytest.raises(
        NotConvertible, match=r"statistics have shape \(4,\), the observation \(5,\)"
    ):
        from_vecnormalize(venv, (5,), "v")
