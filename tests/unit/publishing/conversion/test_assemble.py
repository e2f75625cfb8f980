"""Assembling converted members into one bundle: loaded exactly as the function loads it and
compared with the originals on probe rows, member by member and combined; anything that would
answer differently is refused before a byte is written."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tests.family_support import families, rows
from tickerserve.members import treelite as treelite_member
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.assemble import PLACEHOLDER_VERSION, assemble
from tickerserve.publishing.conversion.estimators import convert_estimator
from tickerserve.publishing.conversion.linear import convert_linear
from tickerserve.publishing.demo import FEATURES
from tickerserve.serving.model import LoadedModel


def members_of(name: str):
    family = families()[name]
    weights = family.weights or {}
    return [
        convert_estimator(e, stem=n, name=n, weight=weights.get(n, 1.0))
        for n, e in family.estimators.items()
    ]


@pytest.mark.parametrize("name", ["weighted_classifier", "stack_regressor", "xgboost_classifier"])
def test_an_assembled_bundle_answers_what_the_original_combination_answers(name: str):
    family = families()[name]
    assembled = assemble(
        members_of(name),
        model="x/y",
        feature_names=list(FEATURES),
        method="weighted_average" if family.weights else "single",
        stacking=None if family.meta is None else convert_linear(family.meta),
        labels=family.labels,
    )
    meta = assembled.bundle.metadata
    assert meta.version == PLACEHOLDER_VERSION
    assert assembled.probe_rows == 256
    assert assembled.max_abs_diff <= 1e-6
    assert meta.source["probe"] == {"rows": 256, "max_abs_diff": assembled.max_abs_diff}
    assert set(assembled.member_diffs) == set(family.estimators)
    x = rows(40, missing=family.missing)
    mine = LoadedModel(meta, assembled.bundle.files).predict(x).outputs
    np.testing.assert_allclose(
        mine.reshape(len(x), -1), np.reshape(family.reference(x), (len(x), -1)), rtol=1e-6,
        atol=1e-9,
    )  # fmt: skip


def test_the_bundle_says_how_it_was_built():
    assembled = assemble(
        members_of("stack_regressor"),
        model="vol/SPY",
        feature_names=list(FEATURES),
        stacking=convert_linear(families()["stack_regressor"].meta),
        metrics={"rmse": 0.01},
    )
    meta = assembled.bundle.metadata
    assert (meta.method, meta.task, meta.classes) == ("stacking", "regression", [])
    assert assembled.estimator == "XGBRegressor+LGBMRegressor+Ridge"
    assert set(meta.hyperparameters) == {"xgb_model", "lgbm_model"}
    assert meta.metrics == {"rmse": 0.01}
    assert sorted(meta.artifacts) == [
        "lgbm_model.txt",
        "xgb_model.treelite",
        "xgb_model.xgboost.ubj",  # XGBoost's own, too
    ]


def test_selected_features_assemble_a_model_over_the_subset():
    # a model trained on the first six of twelve names
    x = rows(200, missing=False)[:, :6]
    y = (x[:, 0] > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, y)
    member = convert_estimator(model, stem="m")
    assembled = assemble(
        [member], model="x/y", feature_names=list(FEATURES), selected_features=list(range(6)),
        labels=["DOWN", "UP"],
    )  # fmt: skip
    assert assembled.bundle.metadata.used_features == list(FEATURES[:6])
    assert assembled.bundle.metadata.classes == ["DOWN", "UP"]


def test_nothing_to_assemble_or_a_mix_of_tasks_is_refused():
    with pytest.raises(NotConvertible, match=r"^no members to assemble$"):
        assemble([], model="x/y", feature_names=list(FEATURES))
    mixed = members_of("lightgbm_classifier") + members_of("lightgbm_regressor")
    with pytest.raises(NotConvertible, match=r"^members mix classifiers and regressors$"):
        assemble(mixed, model="x/y", feature_names=list(FEATURES))


def test_two_members_stored_under_one_name_are_refused():
    one = convert_estimator(families()["random_forest_classifier"].estimators["model"], stem="m")
    two = convert_estimator(families()["lightgbm_classifier"].estimators["model"], stem="m")
    two.spec = one.spec
    with pytest.raises(NotConvertible, match=r"^two members would both be stored as m\.treelite$"):
        assemble([one, two], model="x/y", feature_names=list(FEATURES), method="weighted_average")


def test_meta_learner_width_must_match_the_members():
    family = families()["stack_regressor"]
    members = [convert_estimator(e, stem=n, name=n) for n, e in family.estimators.items()]
    meta = LogisticRegression().fit(np.random.default_rng(0).normal(size=(20, 3)), [0, 1] * 10)
    with pytest.raises(
        NotConvertible, match=r"^the meta-learner takes 3 inputs but the members give 2$"
    ):
        assemble(members, model="x/y", feature_names=list(FEATURES), stacking=convert_linear(meta))


def test_feature_names_must_match_the_trained_ones():
    family = families()["lightgbm_classifier"]
    member = convert_estimator(family.estimators["model"], stem="m")
    swapped = [FEATURES[1], FEATURES[0], *FEATURES[2:]]
    member.trained_names = list(FEATURES)
    with pytest.raises(NotConvertible, match="feature 0 is 'rsi_14' in the model but 'iv_rank'"):
        assemble([member], model="x/y", feature_names=swapped)


def test_a_conversion_that_changes_answers_is_refused(monkeypatch):
    # Given a Treelite member that answers 1e-5 off
    original = treelite_member.TreeliteMember.predict
    monkeypatch.setattr(
        treelite_member.TreeliteMember, "predict", lambda self, x: original(self, x) + 1e-5
    )
    family = families()["random_forest_regressor"]
    member = convert_estimator(family.estimators["model"], stem="m", name="rf")
    # When assembled / Then refused with the measured difference
    with pytest.raises(NotConvertible, match=r"member rf \(RandomForestRegressor\) does not match"):
        assemble([member], model="x/y", feature_names=list(FEATURES))
