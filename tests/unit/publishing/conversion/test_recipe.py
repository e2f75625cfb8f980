"""Recipes: what each seed pickled recognised as a model (single, seed 002's weighted ensemble,
seed 003's stack), its feature names and labels resolved, and the conversion's checked bundle
answering what the seed's own prediction code answers."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.preprocessing import LabelEncoder

from tests.seed_layouts import (
    FEATURES,
    SELECTED,
    VOL_FEATURES,
    ensemble_predict,
    originals,
    quiet,
    stack_predict,
)
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.recipe import (
    Recipe,
    convert,
    convert_pickle,
    from_pickle,
)
from tickerserve.serving.model import LoadedModel


def answers(converted, x: np.ndarray) -> np.ndarray:
    bundle = converted.bundle
    return LoadedModel(bundle.metadata, bundle.files).predict(x).outputs


def test_a_bare_estimator_is_a_single_model():
    model = originals().registry["1.0.0"]
    recipe = from_pickle(model, label="m.joblib")
    assert (recipe.members, recipe.method) == ({"model": model}, "single")


def test_seed_003s_dict_is_a_stack_in_the_order_the_meta_learner_sees():
    artifact = originals().stacks["model_90pct.pkl"]
    recipe = from_pickle(artifact, label="model_90pct.pkl")
    assert list(recipe.members) == ["xgb_model", "lgbm_model"]
    assert (recipe.method, recipe.meta_learner) == ("stacking", artifact["meta_model"])
    assert recipe.own_names == VOL_FEATURES
    converted = convert(recipe, model="vol/SPY", label="model_90pct.pkl")
    x = np.random.default_rng(1).normal(size=(30, len(VOL_FEATURES)))
    np.testing.assert_allclose(
        answers(converted, x).reshape(-1), stack_predict(artifact, x), rtol=1e-6
    )
    assert converted.estimator == "XGBRegressor+LGBMRegressor+Ridge"
    assert converted.bundle.metadata.method == "stacking"
    assert converted.summary()["task"] == "regression"


def test_seed_002s_dict_is_a_weighted_ensemble_with_its_metrics():
    artifact = originals().ensembles["AAPL_d1_20250121.pkl"]
    recipe = from_pickle(artifact, label="AAPL_d1_20250121.pkl")
    assert (recipe.method, recipe.weights) == ("weighted_average", {"rf": 0.473, "gb": 0.527})
    assert recipe.metrics["ensemble_accuracy"] == 0.601
    assert recipe.metrics["rf_valid_accuracy"] == 0.587
    assert recipe.source == {"symbol": "AAPL", "timeframe": "d1", "timestamp": "20250121"}
    converted = convert(recipe, model="stocks/AAPL_d1", label="AAPL_d1_20250121.pkl")
    assert converted.bundle.metadata.classes == ["bearish", "bullish", "neutral"]
    x = np.random.default_rng(2).normal(size=(30, len(FEATURES)))
    np.testing.assert_allclose(answers(converted, x), ensemble_predict(artifact, x), rtol=1e-6)


def test_weights_of_members_not_in_the_pickle_are_left_out_with_a_note():
    artifact = dict(originals().ensembles["AAPL_d1_20250121.pkl"])
    artifact["weights"] = {"rf": 0.4, "gb": 0.4, "arima": 0.2}
    recipe = from_pickle(artifact, label="a.pkl")
    assert recipe.notes == [
        "weights of members not in the pickle (arima) are left out; the pickled members' "
        "weights are renormalised"
    ]
    without = dict(artifact)
    del without["weights"]
    recipe = from_pickle(without, label="a.pkl")
    assert recipe.weights == {"rf": 1.0, "gb": 1.0}
    assert recipe.notes == ["no weights: the members are averaged equally"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": {}}, "a.pkl: 'models' is empty"),
        ({"weights": [0.5, 0.5]}, "a.pkl: 'weights' must map member names to numbers"),
        ({"weights": {"rf": 1.0}}, "a.pkl: 'weights' has no weight for member 'gb'"),
        ({"weights": {"rf": 1.0, "gb": 0}}, "a.pkl: the weight of 'gb' must be a positive number"),
        ({"weights": {"rf": 1.0, "gb": True}}, "a.pkl: the weight of 'gb' must be a positive"),
    ],
)
def test_a_weighted_ensemble_that_cannot_be_averaged_is_refused(change: dict, message: str):
    artifact = {**originals().ensembles["AAPL_d1_20250121.pkl"], **change}
    with pytest.raises(NotConvertible, match=f"^{re.escape(message)}"):
        from_pickle(artifact, label="a.pkl")


def test_a_dict_without_a_model_or_a_stack_without_members_is_refused():
    with pytest.raises(NotConvertible) as caught:
        from_pickle({"scaler": 1, "notes": "x"}, label="x.pkl")
    assert caught.value.message == (
        "x.pkl: the pickled dict holds no model (keys: notes, scaler); expected 'model', "
        "'models' + 'weights' (seed 002) or 'xgb_model' / 'lgbm_model' / 'meta_model' (seed 003)"
    )
    with pytest.raises(NotConvertible, match=r"^x\.pkl: the stack has a meta_model but no member"):
        from_pickle({"meta_model": object()}, label="x.pkl")


def test_a_seed_001_dict_uses_the_selected_subset_of_the_full_feature_list():
    # Given a LightGBM model trained on five of twelve features, and an encoder of its labels
    model = originals().runs["20240815_102314"]
    encoder = LabelEncoder().fit(["bearish", "bullish", "neutral"])
    artifact = {
        "model": model, "feature_names": list(FEATURES), "selected_features": SELECTED,
        "label_encoder": encoder, "created_at": "2024-08-15T10:23:14",
    }  # fmt: skip
    recipe = from_pickle(artifact, label="run")
    assert (recipe.own_names, recipe.indices) == (list(FEATURES), SELECTED)
    converted = convert(recipe, model="crypto/BTCEUR", label="run")
    meta = converted.bundle.metadata
    assert meta.feature_names == list(FEATURES)
    assert meta.selected_features == SELECTED
    assert meta.classes == ["bearish", "bullish", "neutral"]
    assert meta.created_at == "2024-08-15T10:23:14"
    x = np.random.default_rng(3).normal(size=(20, len(FEATURES)))
    expected = quiet(lambda: model.predict_proba(x[:, SELECTED]))
    np.testing.assert_allclose(answers(converted, x[:, SELECTED]), expected, rtol=1e-9)


def test_a_model_without_any_feature_names_is_named_by_position():
    x = np.random.default_rng(4).normal(size=(100, 3))
    bare = lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(x, x[:, 0])
    converted = convert(Recipe({"model": bare}), model="x/y", label="bare.pkl")
    assert converted.bundle.metadata.feature_names == ["feature_0", "feature_1", "feature_2"]
    assert converted.warnings == [
        "no feature names (the seed lists none and the estimator was fitted on arrays): named "
        "feature_0 ... feature_2; requests send them by those names or as a list of 3 values "
        "in training order (--features FILE names them)"
    ]
    converted = convert(Recipe({"model": bare}), model="x/y", fallback_names=["p", "q", "r"])
    assert converted.bundle.metadata.feature_names == ["p", "q", "r"]
    assert converted.warnings == []


def test_a_pickle_file_is_converted_with_its_sha256_as_the_source(tmp_path: Path):
    artifact = originals().stacks["model_100pct.pkl"]
    path = tmp_path / "model_100pct.pkl"
    path.write_bytes(pickle.dumps(artifact))
    seen: list[Recipe] = []
    converted = convert_pickle(path, model="vol/SPY", adjust=seen.append)
    assert len(seen) == 1 and seen[0].method == "stacking"
    source = converted.bundle.metadata.source
    assert list(source["files"]) == ["model_100pct.pkl"]
    assert re.fullmatch(r"[0-9a-f]{64}", source["files"]["model_100pct.pkl"])
    assert (source["kind"], converted.kind) == ("seed", "seed")


def test_a_refusal_is_prefixed_with_the_label_once():
    with pytest.raises(NotConvertible) as caught:
        convert(Recipe({"model": object()}), model="x/y", label="odd.pkl")
    assert caught.value.message.startswith("odd.pkl: builtins.object cannot be served: ")
