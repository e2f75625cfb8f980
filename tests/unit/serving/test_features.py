"""A request's features become the model's row: by name in any order or as a list in
``feature_names`` order, missing values as NaN where the model accepts them, and every client
mistake a 400 that names the offending features."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickerserve.errors import BadRequest
from tickerserve.serving.features import FeatureSchema

NAMES = ["a", "b", "c", "d"]


def refused(schema: FeatureSchema, features: object, code: str) -> BadRequest:
    """The 400 ``schema`` refuses ``features`` with (its code checked here, the rest by the
    caller)."""
    with pytest.raises(BadRequest) as caught:
        schema.row(features)
    assert (caught.value.status, caught.value.code) == (400, code)
    return caught.value


def test_named_features_in_any_order_make_the_row_in_the_models_order():
    schema = FeatureSchema(NAMES, None)
    row = schema.row({"d": 4, "b": 2.5, "a": 1, "c": -3})
    assert row.dtype == np.float64
    assert row.tolist() == [1.0, 2.5, -3.0, 4.0]
    assert schema.row([1, 2.5, -3, 4]).tolist() == row.tolist()


def test_selected_features_take_only_the_used_columns():
    schema = FeatureSchema(NAMES, [3, 1])
    assert schema.used_names == ["d", "b"]
    assert schema.row({"b": 2.0, "d": 4.0}).tolist() == [4.0, 2.0]
    # a list still carries every feature, in feature_names order
    assert schema.row([1.0, 2.0, 3.0, 4.0]).tolist() == [4.0, 2.0]
    # names the model knows but does not use are accepted and ignored
    assert schema.row({"a": 9.0, "b": 2.0, "d": 4.0}).tolist() == [4.0, 2.0]


def test_null_is_a_missing_value_where_the_model_accepts_it():
    row = FeatureSchema(NAMES, None).row({"a": None, "b": 1, "c": 2, "d": 3})
    assert math.isnan(row[0]) and row[1:].tolist() == [1.0, 2.0, 3.0]


def test_null_is_refused_where_the_model_refuses_missing_values():
    schema = FeatureSchema(NAMES, None, missing=False)
    error = refused(schema, {"a": None, "b": 1, "c": None, "d": 3}, "missing_values_not_allowed")
    assert error.code == "missing_values_not_allowed"
    assert error.message == "this model does not accept missing values (null): a, c"
    assert error.features == ["a", "c"]


def test_an_unused_null_in_a_list_is_fine_even_without_missing_values():
    schema = FeatureSchema(NAMES, [0, 2], missing=False)
    assert schema.row([1.0, None, 3.0, None]).tolist() == [1.0, 3.0]
    assert refused(schema, [None, 2.0, 3.0, 4.0], "missing_values_not_allowed").features == ["a"]


def test_missing_names_are_listed():
    error = refused(FeatureSchema(NAMES, None), {"a": 1, "c": 2}, "missing_features")
    assert (error.code, error.message, error.features) == (
        "missing_features",
        "missing 2 feature(s): b, d",
        ["b", "d"],
    )


def test_unknown_names_are_listed():
    error = refused(
        FeatureSchema(NAMES, None), {"a": 1, "b": 2, "c": 3, "d": 4, "zz": 5}, "unknown_features"
    )
    assert (error.code, error.message, error.features) == (
        "unknown_features",
        "unknown feature(s): zz",
        ["zz"],
    )


def test_a_list_of_the_wrong_length_says_how_many_were_expected():
    error = refused(FeatureSchema(NAMES, [0]), [1.0, 2.0], "wrong_feature_count")
    assert error.code == "wrong_feature_count"
    assert error.message == "expected 4 feature values in feature_names order, got 2"


@pytest.mark.parametrize("bad", ["1.0", True, math.inf, -math.inf, math.nan, [1.0], 10**400])
def test_values_that_are_not_finite_numbers_are_refused_by_name(bad: object):
    error = refused(
        FeatureSchema(NAMES, None), {"a": 1, "b": bad, "c": 3, "d": 4}, "invalid_feature_values"
    )
    assert error.code == "invalid_feature_values"
    assert error.message == "feature value(s) must be finite numbers or null: b"
    assert error.features == ["b"]


def test_features_that_are_neither_an_object_nor_a_list_are_refused():
    error = refused(FeatureSchema(NAMES, None), "1,2,3,4", "invalid_features")
    assert error.code == "invalid_features"


def test_long_lists_of_offenders_are_cut_to_twenty_names_with_the_total():
    names = [f"f{i}" for i in range(30)]
    error = refused(FeatureSchema(names, None), {}, "missing_features")
    assert error.message.endswith(", f19, … (30 in all)")
    assert error.features == names[:20]


def test_schemas_with_the_same_names_selection_and_missing_rule_make_the_same_rows():
    one = FeatureSchema(list(NAMES), [0, 1])
    assert one.same_input(FeatureSchema(list(NAMES), [0, 1]))
    assert not one.same_input(FeatureSchema(list(NAMES), [1, 0]))
    assert not one.same_input(FeatureSchema(list(NAMES), [0, 1], missing=False))
    assert not one.same_input(FeatureSchema([*NAMES, "e"], [0, 1]))


# -- a batch's rows at once -----------------------------------------------------------------
_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(10**400),
    max_value=10**400), st.none(), st.booleans(), st.text(max_size=2),
)  # fmt: skip


def _features(names: list[str]) -> st.SearchStrategy[object]:
    by_name = st.dictionaries(st.sampled_from([*names, "zz"]), _VALUES, max_size=len(names) + 1)
    complete = st.fixed_dictionaries(dict.fromkeys(names, _VALUES))
    plain = st.fixed_dictionaries({n: st.floats(-1e6, 1e6) for n in names})
    as_list = st.lists(_VALUES, min_size=len(names) - 1, max_size=len(names) + 1)
    return st.one_of(plain, plain, complete, by_name, as_list, st.integers())


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    missing=st.booleans(),
    selected=st.sampled_from([None, [2, 0], [3]]),  # [3]: one used feature
)
def test_a_batch_of_rows_is_the_same_rows_and_errors_as_one_by_one(data, missing, selected):
    schema = FeatureSchema(NAMES, selected, missing=missing)
    many = data.draw(st.lists(_features(NAMES), min_size=1, max_size=8))
    matrix, kept, errors = schema.rows(many)
    # Then every request is either a row (in order) or the very error ``row`` gives it
    assert sorted([*kept, *errors]) == list(range(len(many)))
    assert matrix.shape == (len(kept), len(schema.used_names))
    for position, i in enumerate(kept):
        np.testing.assert_array_equal(matrix[position], schema.row(many[i]))
    for i, error in errors.items():
        with pytest.raises(BadRequest) as caught:
            schema.row(many[i])
        assert (caught.value.code, caught.value.message) == (error.code, error.message)


def test_a_batch_of_plain_rows_is_one_matrix():
    schema = FeatureSchema(NAMES, None)
    many = [
        {"a": 1, "b": 2.0, "c": 3, "d": 4.5},
        [5.0, 6, 7, 8],
        {"d": 0.0, "c": 0, "b": 0, "a": 0},
    ]
    matrix, kept, errors = schema.rows(many)
    np.testing.assert_array_equal(matrix, [[1, 2, 3, 4.5], [5, 6, 7, 8], [0, 0, 0, 0]])
    assert (kept, errors) == ([0, 1, 2], {})
