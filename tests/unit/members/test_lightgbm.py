"""LightGBM members through the C API: the text model in, LightGBM's own answers out (one row
through the fast path or many), and every file that is not a model of the right task refused
with a message naming the file."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from tests.support import DemoModels
from tickerserve.errors import InvalidModel
from tickerserve.members.kinds import MemberSpec
from tickerserve.members.lightgbm import (
    LightGBMMember,
    NativeBooster,
    load_booster,
    objective,
)
from tickerserve.publishing.demo import train_booster, training_data


def rows(n_features: int, n_rows: int = 40, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=2.0, size=(n_rows, n_features))
    x[rng.random(x.shape) < 0.2] = np.nan
    return x


def trained(objective_name: str, *, names: list[str] | None = None) -> bytes:
    """A small booster of ``objective_name`` on generated data, as its text model."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 4))
    params = {"objective": objective_name, "verbose": -1, "num_leaves": 7, "min_data_in_leaf": 5}
    if objective_name == "regression":
        y = x[:, 0] * 0.3 + rng.normal(scale=0.1, size=300)
    else:
        y = (x[:, 0] > 0).astype(int)
    data = lgb.Dataset(x, y, feature_name=names or "auto")
    return lgb.train(params, data, num_boost_round=5).model_to_string().encode()


def test_a_member_answers_what_lightgbm_itself_answers_one_row_or_many(models: DemoModels):
    text = models.universal.files["model.txt"]
    member = LightGBMMember.from_bytes(
        text, MemberSpec("model.txt"), task="classification", n_classes=5
    )
    x = rows(member.n_features)
    expected = lgb.Booster(model_str=text.decode()).predict(x)
    assert member.fast_path
    np.testing.assert_array_equal(member.predict(x), expected)
    singles = np.vstack([member.predict(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(singles, expected)
    assert (member.n_features, member.n_outputs, member.trained_names) == (12, 5, None)


def test_a_single_row_of_any_layout_or_dtype_answers_as_the_float64_row(models: DemoModels):
    text = models.universal.files["model.txt"]
    member = LightGBMMember.from_bytes(
        text, MemberSpec("model.txt"), task="classification", n_classes=5
    )
    x = rows(member.n_features)
    expected = lgb.Booster(model_str=text.decode()).predict(x[:3])
    wide = np.asfortranarray(np.hstack([x, x]))  # a row of it is a strided view
    for i in range(3):
        strided = wide[i : i + 1, : member.n_features]
        assert not strided.flags.c_contiguous
        np.testing.assert_array_equal(member.predict(strided), expected[i : i + 1])
        # float32 and integer rows are read as their float64 values, as the matrix call does
        as_float32 = x[i : i + 1].astype(np.float32)
        np.testing.assert_array_equal(
            member.predict(as_float32), member.predict(as_float32.astype(np.float64))
        )
    integers = np.arange(member.n_features).reshape(1, -1)
    np.testing.assert_array_equal(
        member.predict(integers), member.predict(integers.astype(np.float64))
    )


def test_a_binary_classifier_answers_both_class_probabilities(models: DemoModels):
    text = models.binary.files["model.txt"]
    member = LightGBMMember.from_bytes(
        text, MemberSpec("model.txt"), task="classification", n_classes=2
    )
    x = rows(member.n_features)
    p = np.asarray(lgb.Booster(model_str=text.decode()).predict(x))
    np.testing.assert_array_equal(member.predict(x), np.column_stack([1 - p, p]))
    assert member.n_outputs == 2


def test_a_regressor_answers_one_column_of_values():
    text = trained("regression")
    member = LightGBMMember.from_bytes(text, MemberSpec("m.txt"), task="regression", n_classes=0)
    x = rows(4)
    expected = np.asarray(lgb.Booster(model_str=text.decode()).predict(x))
    np.testing.assert_array_equal(member.predict(x), expected.reshape(-1, 1))
    np.testing.assert_array_equal(member.predict(x[:1]), expected[:1].reshape(-1, 1))


def test_trained_feature_names_are_kept_however_long():
    names = ["rsi_14", "x" * 300, "iv_rank", "volume_z"]
    member = LightGBMMember.from_bytes(
        trained("binary", names=names), MemberSpec("m.txt"), task="classification", n_classes=2
    )
    assert member.trained_names == names


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not a LightGBM text model: 'utf-8' codec can't decode byte 0xff"),
        (b"tree\x00version=v4", "not a LightGBM text model: it contains NUL bytes"),
        (b"hello", "not a LightGBM text model: Model file doesn't specify the number of classes"),
    ],
)
def test_bytes_that_are_no_text_model_are_an_invalid_model(data: bytes, message: str):
    with pytest.raises(InvalidModel) as caught:
        load_booster(data)
    assert caught.value.message.startswith(message)
    assert caught.value.code == "invalid_model"


def test_the_loaded_booster_reports_its_shape(models: DemoModels):
    booster = load_booster(models.smh.files["model.txt"])
    assert isinstance(booster, NativeBooster)
    assert (booster.num_feature(), booster.num_model_per_iteration()) == (6, 4)
    assert booster.feature_name() == [f"Column_{i}" for i in range(6)]
    assert booster.predict(np.zeros((3, 6))).shape == (3, 4)


def test_the_objective_is_read_from_the_header(models: DemoModels):
    assert objective(models.smh.files["model.txt"]) == "multiclass"
    assert objective(models.binary.files["model.txt"]) == "binary"
    assert objective(trained("regression")) == "regression"
    assert objective(b"version=v4\nnum_class=1\n\nTree=0\n") == "unknown"


def test_a_garbled_file_is_refused_naming_it(models: DemoModels):
    with pytest.raises(InvalidModel, match=r"^etfs/x/model\.txt is not a LightGBM text model: "):
        LightGBMMember.from_bytes(
            b"hello", MemberSpec("etfs/x/model.txt"), task="classification", n_classes=3
        )


def test_a_classifier_cannot_serve_as_a_regressor_nor_the_reverse(models: DemoModels):
    with pytest.raises(InvalidModel) as caught:
        LightGBMMember.from_bytes(
            models.smh.files["model.txt"], MemberSpec("model.txt"), task="regression", n_classes=0
        )
    assert caught.value.message == (
        "model.txt has objective 'multiclass'; a regression member needs one of fair, gamma, "
        "huber, mape, poisson, quantile, regression, regression_l1, tweedie"
    )
    with pytest.raises(InvalidModel, match=r"^m\.txt has objective 'regression'; only classif"):
        LightGBMMember.from_bytes(
            trained("regression"), MemberSpec("m.txt"), task="classification", n_classes=2
        )


def test_a_classifier_with_another_number_of_classes_is_refused(models: DemoModels):
    with pytest.raises(InvalidModel, match=r"^model\.txt has 4 outputs per row but serves 3 clas"):
        LightGBMMember.from_bytes(
            models.smh.files["model.txt"],
            MemberSpec("model.txt"),
            task="classification",
            n_classes=3,
        )


def test_rows_of_the_wrong_width_leave_the_fast_path_and_are_refused_by_lightgbm():
    x, y = training_data(5, 200, 4, 3)
    booster = train_booster(x, y, 3, seed=1)
    text = booster.model_to_string().encode()
    member = LightGBMMember.from_bytes(text, MemberSpec("m"), task="classification", n_classes=3)
    with pytest.raises(InvalidModel, match=r"number of features in data \(5\) is not the same"):
        member.predict(np.zeros((1, 5)))


def test_a_batch_split_across_vcpus_is_lightgbms_own_answer(models: DemoModels, monkeypatch):
    from tickerserve.members import row_split

    text = models.universal.files["model.txt"]
    member = LightGBMMember.from_bytes(
        text, MemberSpec("model.txt"), task="classification", n_classes=5
    )
    x = rows(member.n_features, n_rows=200)
    expected = lgb.Booster(model_str=text.decode()).predict(x)
    monkeypatch.setattr(row_split, "vcpus", lambda: 4)
    assert row_split.threads_for(len(x), 16) == 4
    np.testing.assert_array_equal(member.predict(x), expected)


def test_raw_scores_and_trees_are_lightgbms(models: DemoModels):
    text = models.universal.files["model.txt"]
    booster = NativeBooster.from_string(text.decode())
    theirs = lgb.Booster(model_str=text.decode())
    x = rows(booster.num_feature())
    np.testing.assert_array_equal(
        booster.predict(x, raw_score=True), theirs.predict(x, raw_score=True)
    )
    assert booster.num_trees() == theirs.num_trees()


def test_explanations_are_lightgbms_own_contributions_in_margin_space(models: DemoModels):
    text = models.universal.files["model.txt"]
    member = LightGBMMember.from_bytes(
        text, MemberSpec("model.txt"), task="classification", n_classes=5
    )
    x = rows(member.n_features, n_rows=300)
    whole = lgb.Booster(model_str=text.decode()).predict(x, pred_contrib=True)
    parts = member.explain(x)
    assert parts.space == "margin"
    n = len(x)
    base = np.broadcast_to(parts.base[None, :, None], (n, 5, 1))
    mine = np.concatenate([parts.values, base], axis=2)
    np.testing.assert_array_equal(mine.reshape(n, -1), whole)
    raw = lgb.Booster(model_str=text.decode()).predict(x, raw_score=True)
    np.testing.assert_allclose(parts.output, raw, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "space"), [("regression", "value"), ("poisson", "margin"), ("binary", "margin")]
)
def test_a_regressor_explains_in_value_space_unless_its_link_is_not_the_identity(name, space):
    task = "classification" if name == "binary" else "regression"
    member = LightGBMMember.from_bytes(trained(name), MemberSpec("model.txt"), task=task,
                                       n_classes=2 if task == "classification" else 0)  # fmt: skip
    assert member.space == space
