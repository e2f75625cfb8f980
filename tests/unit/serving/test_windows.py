"""Windows: a request's rows (objects by name or lists in order, oldest first) become the flat
vector the network takes; every mistake is a 400 naming the row and the features, a window of
another length names the length the model takes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickerserve.errors import BadRequest
from tickerserve.serving.features import FeatureSchema
from tickerserve.serving.windows import WindowSchema, sliding_windows, window_digest

NAMES = ["a", "b", "c", "d"]


def schema(
    rows: int = 3, *, selected: list[int] | None = None, missing: bool = True, kind: str = "window"
) -> WindowSchema:
    return WindowSchema(rows, FeatureSchema(NAMES, selected, missing=missing), input_kind=kind)


def test_rows_by_name_and_as_lists_give_the_same_vector_oldest_first():
    window = [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]
    by_name = [dict(zip(NAMES, row, strict=True)) for row in window]
    s = schema()
    np.testing.assert_array_equal(s.row(window), np.arange(1.0, 13.0))
    np.testing.assert_array_equal(s.row(by_name), np.arange(1.0, 13.0))


def test_selected_features_are_taken_from_full_rows_and_named_rows():
    s = schema(selected=[1, 3])
    window = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    np.testing.assert_array_equal(s.row(window), [2, 4, 6, 8, 10, 12])
    named = [{"b": 2, "d": 4}, {"b": 6, "d": 8, "a": 0}, {"d": 12, "b": 10}]
    np.testing.assert_array_equal(s.row(named), [2, 4, 6, 8, 10, 12])
    assert s.used_names == ["b", "d"]


def test_a_window_of_another_length_names_the_length_the_model_takes():
    with pytest.raises(BadRequest) as caught:
        schema(5).row([[1, 2, 3, 4]] * 4)
    assert caught.value.code == "wrong_window_length"
    assert caught.value.message == "this model takes a window of 5 rows (oldest first), got 4"


def test_an_observation_of_another_shape_says_observation():
    with pytest.raises(BadRequest) as caught:
        schema(2, kind="observation").row([[1, 2, 3, 4]])
    assert caught.value.code == "wrong_observation_shape"
    assert caught.value.message == "this model takes an observation of 2 rows (oldest first), got 1"


@pytest.mark.parametrize("features", [{"a": 1}, [1.0, 2.0, 3.0, 4.0], [[1, 2, 3, 4], 5, [1]]])
def test_features_that_are_not_rows_are_refused_with_the_shape_expected(features):
    with pytest.raises(BadRequest) as caught:
        schema().row(features)
    assert caught.value.code == "invalid_features"
    assert caught.value.message == (
        "features must be a window: a list of 3 rows, oldest first, each an object of "
        "name -> number or a list of 4 numbers in feature_names order"
    )


@pytest.mark.parametrize(
    ("row", "code", "message", "features"),
    [
        ({"a": 1, "b": 2, "c": 3}, "missing_features", "row 1: missing 1 feature(s): d", ["d"]),
        (
            {"a": 1, "b": 2, "c": 3, "d": 4, "zz": 5},
            "unknown_features",
            "row 1: unknown feature(s): zz",
            ["zz"],
        ),
        (
            [1, 2, 3],
            "wrong_feature_count",
            "row 1: expected 4 feature values in feature_names order, got 3",
            None,
        ),
        (
            [1, True, 3, 4],
            "invalid_feature_values",
            "row 1: feature value(s) must be finite numbers or null: b",
            ["b"],
        ),
        (
            [1, 2, "x", 4],
            "invalid_feature_values",
            "row 1: feature value(s) must be finite numbers or null: c",
            ["c"],
        ),
        (
            [1, 2, 10**400, 4],
            "invalid_feature_values",
            "row 1: feature value(s) must be finite numbers or null: c",
            ["c"],
        ),
    ],
)
def test_a_bad_row_is_named_with_its_index(row, code, message, features):
    window = [[0, 0, 0, 0], row, [0, 0, 0, 0]]
    with pytest.raises(BadRequest) as caught:
        schema().row(window)
    assert (caught.value.code, caught.value.message) == (code, message)
    assert caught.value.features == features


def test_null_is_missing_unless_the_model_refuses_missing_values():
    window = [[1, None, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]
    assert np.isnan(schema().row(window)[1])
    with pytest.raises(BadRequest) as caught:
        schema(missing=False).row(window)
    assert caught.value.code == "missing_values_not_allowed"
    assert caught.value.message == "row 0: this model does not accept missing values (null): b"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-1000, 1000)
            ),
            min_size=4,
            max_size=4,
        ),
        min_size=3,
        max_size=3,
    ),
    st.booleans(),
)
def test_the_fast_path_and_the_checked_path_agree(window, named):
    # A window the fast path takes, and the same window forced through row-by-row checks
    s = schema(selected=[0, 2])
    rows = [dict(zip(NAMES, r, strict=True)) for r in window] if named else window
    fast = s.row(rows)
    checked = np.concatenate([s.row_schema.row(r) for r in rows])
    np.testing.assert_array_equal(fast, checked)


# Values a window may hold besides plain numbers; the other values are never 0 or 1, so
# nothing but the bad value itself makes the fast path look at the values' types.
ODD_VALUES = [True, False, "1.5", "0", None, float("nan"), float("inf"), -float("inf"), 10**400,
              [1.0], {"v": 1.0}]  # fmt: skip


def checked(s: WindowSchema, rows: list) -> np.ndarray:
    """The window through the row-by-row checks (what the fast path must agree with)."""
    out = []
    for index, row in enumerate(rows):
        try:
            out.append(s.row_schema.row(row))
        except BadRequest as exc:
            message = f"row {index}: {exc.message}"
            raise BadRequest(message, code=exc.code, features=exc.features) from None
    return np.concatenate(out)


def outcome(call) -> tuple:
    """The vector's bytes (NaN equal to NaN), or the error."""
    try:
        return ("ok", call().tobytes())
    except BadRequest as exc:
        return (exc.code, exc.message, exc.features)


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
@pytest.mark.parametrize("named", [False, True], ids=["lists", "named"])
@pytest.mark.parametrize("missing", [True, False], ids=["nulls", "no-nulls"])
def test_a_bad_value_among_plain_floats_is_refused_as_row_by_row(value, named, missing):
    s = schema(missing=missing)
    window = [[2.5, -3.25, 7.0, 11.5], [4.5, 6.5, -8.5, 9.5], [0.25, 0.5, 2.0, 3.0]]
    window[2][1] = value
    rows = [dict(zip(NAMES, r, strict=True)) for r in window] if named else window
    got, want = outcome(lambda: s.row(rows)), outcome(lambda: checked(s, rows))
    assert got == want
    if value is None and missing:  # a null the model takes is a missing value
        assert got[0] == "ok" and np.isnan(np.frombuffer(got[1])[9])
    else:
        assert got[0] == "missing_values_not_allowed" if value is None else "invalid_feature_values"
        assert got[1].startswith("row 2: ") and got[2] == ["b"]


def test_a_bool_where_the_model_takes_no_value_is_still_refused():
    # Full lists: a value the model does not use must still be a number (or null)
    s = schema(selected=[0, 2])
    window = [[2.5, -3.25, 7.0, 11.5], [4.5, 6.5, -8.5, True], [0.25, 0.5, 2.0, 3.0]]
    with pytest.raises(BadRequest) as caught:
        s.row(window)
    assert (caught.value.code, caught.value.message) == (
        "invalid_feature_values",
        "row 1: feature value(s) must be finite numbers or null: d",
    )


def test_zeros_ones_and_large_numbers_are_taken_exactly():
    # 0 and 1 (as ints or floats) are numbers, not bools; a finite 1e300 is a number too
    s = schema()
    window = [[0, 1, 0.0, 1.0], [1e300, -1e300, 2**70, -(2**53) - 1], [5e-324, 1, 0, 3]]
    np.testing.assert_array_equal(s.row(window), [float(v) for row in window for v in row])


@pytest.mark.parametrize("zeros", [3, 79], ids=["a few zeros", "mostly zeros"])
@pytest.mark.parametrize("named", [False, True], ids=["lists", "named"])
def test_a_bool_among_integer_zeros_and_ones_is_refused(zeros, named):
    # Given 20 rows of flags (0 and 1 as numbers), few or many, and one False among them
    values = [2.5] * (80 - zeros) + [0] * zeros
    values[-7] = False  # row 18, feature b
    window = [values[i : i + 4] for i in range(0, 80, 4)]
    rows = [dict(zip(NAMES, r, strict=True)) for r in window] if named else window
    with pytest.raises(BadRequest) as caught:
        schema(20).row(rows)
    assert (caught.value.code, caught.value.message, caught.value.features) == (
        "invalid_feature_values",
        "row 18: feature value(s) must be finite numbers or null: b",
        ["b"],
    )
    # and without the bool, the same window is its numbers
    values[-7] = 1
    window = [values[i : i + 4] for i in range(0, 80, 4)]
    np.testing.assert_array_equal(schema(20).row(window), [float(v) for v in values])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.floats(width=32),
                st.integers(-3, 3),
                st.sampled_from(ODD_VALUES),
            ),
            min_size=4,
            max_size=4,
        ),
        min_size=3,
        max_size=3,
    ),
    st.booleans(),
    st.booleans(),
)
def test_any_window_gets_the_vector_or_the_error_of_the_row_by_row_checks(window, named, missing):
    s = schema(selected=[0, 2], missing=missing)
    rows = [dict(zip(NAMES, r, strict=True)) for r in window] if named else window
    assert outcome(lambda: s.row(rows)) == outcome(lambda: checked(s, rows))


def test_captured_features_are_the_newest_row_by_name():
    s = schema(selected=[0, 3])
    vector = s.row([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, None, 12]])
    assert s.captured(vector) == {"a": 9.0, "d": 12.0}
    np.testing.assert_array_equal(s.last_row(vector), [9.0, 12.0])
    # and for a batch of windows, each one's newest row (what request warnings check)
    other = s.row([[0, 0, 0, 0], [0, 0, 0, 0], [-1, 0, 0, -4]])
    np.testing.assert_array_equal(s.last_rows(np.vstack([vector, other])), [[9, 12], [-1, -4]])


def test_the_digest_is_sha256_of_the_window_as_float64_little_endian():
    vector = schema().row([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    want = hashlib.sha256(np.arange(1.0, 13.0).astype("<f8").tobytes()).hexdigest()
    assert window_digest(vector) == want


def test_same_input_compares_rows_names_and_selection():
    assert schema().same_input(schema())
    assert not schema().same_input(schema(4))
    assert not schema().same_input(schema(selected=[0]))
    assert not schema().same_input(FeatureSchema(NAMES, None))


def test_sliding_windows_end_at_each_row():
    rows = np.arange(12.0).reshape(6, 2)
    windows = sliding_windows(rows, 3)
    assert windows.shape == (4, 6)
    np.testing.assert_array_equal(windows[0], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(windows[-1], rows[-3:].ravel())
    assert sliding_windows(rows, 7).shape == (0, 14)
