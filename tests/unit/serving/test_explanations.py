"""An answer's explanation: for every family, base plus all contributions is the original
library's own output in the space the answer names; the top k come largest first; and a
model with no exact explanation is refused with the reason."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shap

from tests.family_support import SPACES, families, original_output, rows
from tests.tree_support import loaded
from tickerserve.errors import BadRequest
from tickerserve.serving.explanations import DEFAULT_TOP, explain_rows, top_count


@pytest.mark.parametrize("name", sorted(SPACES))
def test_base_plus_contributions_is_the_originals_output_in_the_named_space(name):
    # Given a family's model as the function loads it, and rows to explain
    model = loaded(name)
    x = rows(25, missing=families()[name].missing)
    outputs = model.predict(x).outputs
    # When every row is explained (for its predicted class)
    explained = explain_rows(model, x, outputs)
    space = SPACES[name]
    original = original_output(name, x, space)
    for row, (explanation, answer) in enumerate(
        zip(explained, np.atleast_1d(outputs), strict=True)
    ):
        assert explanation.space == space
        best = int(np.argmax(answer)) if model.task == "classification" else 0
        if original.shape[1] == 1 and model.task == "classification" and space == "margin":
            # a binary model's one margin is the positive class's log-odds
            expected = original[row, 0] if best == 1 else -original[row, 0]
        else:
            expected = original[row, best]
        # Then base + all contributions is that output: exact to double precision, except
        # XGBoost's margin, which XGBoost itself adds up in float32
        tolerance = 1e-6 * max(1.0, abs(expected)) if name.startswith("xgboost") else 1e-9
        assert abs(explanation.base + explanation.contributions.sum() - expected) <= tolerance
        assert abs(explanation.output - expected) <= tolerance


@pytest.mark.parametrize("name", ["lightgbm_classifier", "lightgbm_regressor"])
def test_lightgbm_contributions_are_shaps(name):
    # LightGBM members explain through LightGBM's own C API; shap.TreeExplainer on a LightGBM
    # model reports the same computation (LightGBM's pred_contrib), so they agree exactly.
    model = loaded(name)
    estimator = families()[name].estimators["model"]
    x = rows(10, missing=True)
    parts = model.explain(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(shap.TreeExplainer(estimator).shap_values(x))
    expected = expected[:, :, None] if expected.ndim == 2 else expected
    np.testing.assert_allclose(parts.values.transpose(0, 2, 1), expected, rtol=0, atol=1e-9)


def test_the_top_k_come_largest_first_by_name():
    model = loaded("random_forest_classifier")
    x = rows(1, missing=False)
    explanation = explain_rows(model, x, model.predict(x).outputs)[0]
    names = model.used_features
    answer = explanation.to_answer(names, 3)
    assert list(answer) == ["space", "base", "output", "contributions"]
    shown = list(answer["contributions"].values())
    assert len(shown) == 3
    assert [abs(v) for v in shown] == sorted((abs(v) for v in shown), reverse=True)
    largest = np.sort(np.abs(explanation.contributions))[::-1][:3]
    np.testing.assert_array_equal(np.abs(shown), largest)
    everything = explanation.to_answer(names, 100)["contributions"]
    assert set(everything) == set(names)
    assert answer["output"] == pytest.approx(answer["base"] + sum(everything.values()))


def test_the_stack_is_explained_in_value_space_through_its_linear_meta_learner():
    # Seed 003: XGBoost and LightGBM regressors under a Ridge: linear in both members' values
    model = loaded("stack_regressor")
    x = rows(10, missing=True)
    explained = explain_rows(model, x, model.predict(x).outputs)
    expected = families()["stack_regressor"].reference(x)
    for explanation, value in zip(explained, expected, strict=True):
        assert explanation.space == "value"
        assert explanation.output == pytest.approx(value, abs=1e-6 * max(1.0, abs(value)))


def test_a_weighted_average_over_a_margin_space_member_is_refused_with_the_reason():
    # Seed 002: RandomForest (probabilities) + GradientBoosting (log-odds) probabilities
    model = loaded("weighted_classifier")
    x = rows(2, missing=False)
    with pytest.raises(BadRequest) as caught:
        explain_rows(model, x, model.predict(x).outputs)
    assert caught.value.code == "explain_unsupported"
    assert "GradientBoostingClassifier" in caught.value.message
    assert "margin space" in caught.value.message


def test_a_model_served_by_treelites_walker_is_refused_with_the_reason():
    model = loaded("hist_gradient_boosting_classifier")
    x = rows(1, missing=True)
    with pytest.raises(BadRequest) as caught:
        explain_rows(model, x, model.predict(x).outputs)
    assert caught.value.code == "explain_unsupported"
    assert "HistGradientBoosting" in caught.value.message


@pytest.mark.parametrize(("asked", "expected"), [(True, DEFAULT_TOP), (3, 3), (1, 1),
                                                  (False, None), (None, None)])  # fmt: skip
def test_explain_asks_for_the_top_k(asked, expected):
    assert top_count(asked) == expected


@pytest.mark.parametrize("asked", [0, -2, 1.5, "yes", [3]])
def test_explain_must_be_a_flag_or_a_count(asked):
    with pytest.raises(BadRequest) as caught:
        top_count(asked)
    assert caught.value.code == "invalid_field"
