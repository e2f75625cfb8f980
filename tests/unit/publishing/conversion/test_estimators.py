"""One fitted estimator becomes one member: LightGBM as its text model, XGBoost and scikit-learn
trees as Treelite models with the recipe that reproduces them; the original's own answer and
split points come along for the checks, and anything else is refused with the supported list."""

from __future__ import annotations

import re

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from tests.family_support import families, rows
from tickerserve.members.kinds import MemberSpec
from tickerserve.members.loading import load_member
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.estimators import (
    SUPPORTED,
    convert_estimator,
    describe,
    family,
)

SINGLE = [name for name, f in families().items() if list(f.estimators) == ["model"]]


@pytest.mark.parametrize("name", SINGLE)
def test_a_converted_member_answers_what_the_original_answers(name: str):
    # Given a fitted estimator of every supported family
    original = families()[name]
    converted = convert_estimator(original.estimators["model"], stem="m", name="model")
    # When its bytes are loaded as the function loads them
    n_classes = len(original.labels or [])
    files = {converted.spec.artifact: converted.data}
    member = load_member(converted.spec, files, task=converted.task, n_classes=n_classes)
    # Then it answers what the original answers, and so does the reference it carries
    x = rows(50, missing=original.missing)
    expected = np.asarray(original.reference(x), dtype=np.float64).reshape(len(x), -1)
    np.testing.assert_allclose(member.predict(x), expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(converted.reference(x), expected, rtol=1e-12)
    assert converted.task == original.task
    assert converted.accepts_missing is original.missing
    assert converted.n_features == 12 and converted.splits  # every family splits on something
    assert converted.spec.estimator == type(original.estimators["model"]).__name__


def test_lightgbm_becomes_a_text_model_and_trees_a_treelite_model():
    lightgbm = convert_estimator(families()["lightgbm_classifier"].estimators["model"], stem="a")
    forest = convert_estimator(families()["random_forest_classifier"].estimators["model"], stem="b")
    assert (lightgbm.spec.artifact, lightgbm.spec.kind) == ("a.txt", "lightgbm")
    assert lightgbm.data.startswith(b"tree\nversion=")
    assert (forest.spec.artifact, forest.spec.kind) == ("b.treelite", "treelite")
    assert forest.spec.options["round_inputs"] == "float32"  # what scikit-learn does to X
    assert [int(c) for c in forest.classes or []] == [0, 1, 2, 3]


def test_xgboost_keeps_its_base_margin_and_float32_order():
    member = convert_estimator(families()["xgboost_binary"].estimators["model"], stem="x")
    options = member.spec.options
    assert (options["margin"], options["link"], options["margin_width"]) == (
        "float32_in_order", "sigmoid", 1,
    )  # fmt: skip
    assert len(options["base_margin"]) == 1


def test_a_raw_booster_gives_integer_classes_or_a_regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    binary = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, x[:, 0] > 0), 3)
    converted = convert_estimator(binary, stem="raw")
    assert (converted.task, converted.classes) == ("classification", [0, 1])
    regression = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, x[:, 0]), 3)
    assert convert_estimator(regression, stem="raw").task == "regression"


def test_classic_gradient_boosting_refuses_missing_values_as_the_original_does():
    member = convert_estimator(
        GradientBoostingRegressor(n_estimators=3).fit(np.eye(4), [0.0, 1.0, 2.0, 3.0]), stem="g"
    )
    assert member.accepts_missing is False


def test_the_estimators_hyperparameters_come_along():
    member = convert_estimator(
        RandomForestClassifier(n_estimators=3, max_depth=2).fit(np.eye(4), [0, 1, 0, 1]), stem="r"
    )
    assert (member.hyperparameters["n_estimators"], member.hyperparameters["max_depth"]) == (3, 2)


def test_unsupported_estimator_is_refused_with_the_supported_list():
    with pytest.raises(NotConvertible, match=r"sklearn\.StandardScaler cannot be served"):
        convert_estimator(StandardScaler().fit(np.ones((3, 2))), stem="m")


@pytest.mark.parametrize(
    "estimator", [RandomForestClassifier(), XGBClassifier(), lgb.LGBMClassifier()]
)
def test_an_unfitted_estimator_is_refused(estimator):
    name = type(estimator).__name__
    with pytest.raises(NotConvertible, match=f"^the {re.escape(name)} is not fitted$"):
        convert_estimator(estimator, stem="m")


def test_family_and_describe_name_what_is_supported():
    assert family(RandomForestClassifier()) == "sklearn"
    assert family(XGBClassifier()) == "xgboost"
    assert family(lgb.LGBMClassifier()) == "lightgbm"
    assert family(StandardScaler()) == ""
    assert family(MemberSpec("x")) == ""
    assert describe(StandardScaler()) == "sklearn.StandardScaler"
    assert "HistGradientBoostingRegressor" in SUPPORTED
