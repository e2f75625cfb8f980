"""Feature names as seeds keep them: the full ordered list, the subset a model was trained on
(by index or by name), and ``--features FILE`` in JSON or plain text; every inconsistency
refused with the file or model it came from."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.feature_names import (
    all_ints,
    as_ints,
    as_names,
    read_names_file,
    selection,
)

FULL = ["a", "b", "c", "d"]


def refused(message: str):
    return pytest.raises(NotConvertible, match=f"^{re.escape(message)}$")


def test_integers_are_told_from_booleans_and_empty_lists():
    assert all_ints([0, 2]) and all_ints(np.array([1, 3])) and all_ints((np.int64(1),))
    assert not all_ints([]) and not all_ints([True, 1]) and not all_ints([1.0]) and not all_ints(3)


def test_names_and_indices_are_read_from_lists_tuples_and_arrays():
    assert as_names(np.array(["x", "y"]), "m") == ["x", "y"]
    assert as_names(("x",), "m") == ["x"]
    assert as_ints(np.array([2, 0]), "m") == [2, 0]
    with refused("m: feature names must be a non-empty list of strings"):
        as_names(["x", ""], "m")
    with refused("m: selected indices must be a non-empty list of integers"):
        as_ints([1, "2"], "m")


def test_the_selection_is_none_when_the_model_uses_every_feature_in_order():
    assert selection(FULL, None, None, label="m") is None
    assert selection(FULL, FULL, None, label="m") is None
    assert selection(FULL, None, [0, 1, 2, 3], label="m") is None


def test_the_selection_comes_from_indices_or_names_and_both_must_agree():
    assert selection(FULL, None, [3, 1], label="m") == [3, 1]
    assert selection(FULL, ["d", "b"], None, label="m") == [3, 1]
    assert selection(FULL, ["d", "b"], [3, 1], label="m") == [3, 1]
    with refused("m: the selected feature names disagree with the selected indices"):
        selection(FULL, ["b", "d"], [3, 1], label="m")


@pytest.mark.parametrize(
    ("full", "chosen", "indices", "message"),
    [
        (["a", "a"], None, None, "run-7: feature_names contains duplicates"),
        (FULL, None, [0, 4], "run-7: selected index 4 is outside the 4 feature names"),
        (FULL, None, [-1], "run-7: selected index -1 is outside the 4 feature names"),
        (FULL, ["a", "z"], None, "run-7: selected feature 'z' is not in feature_names"),
    ],
)
def test_an_impossible_selection_is_refused(full, chosen, indices, message: str):
    with refused(message):
        selection(full, chosen, indices, label="run-7")


@pytest.mark.parametrize(
    "text",
    [
        '["rsi_14", "iv_rank", "vix"]',
        '{"feature_names": ["rsi_14", "iv_rank", "vix"]}',
        '{"columns": ["rsi_14", "iv_rank", "vix"]}',
        "rsi_14\n  iv_rank\n\nvix\n",
    ],
)
def test_a_names_file_is_json_or_one_name_a_line(tmp_path: Path, text: str):
    path = tmp_path / "features.txt"
    path.write_text(text)
    assert read_names_file(path) == ["rsi_14", "iv_rank", "vix"]


def test_a_names_file_that_is_unreadable_duplicated_or_not_names_is_refused(tmp_path: Path):
    missing = tmp_path / "missing.json"
    with pytest.raises(NotConvertible, match=r"missing\.json: cannot read feature names \("):
        read_names_file(missing)
    duplicated = tmp_path / "dup.json"
    duplicated.write_text('["a", "b", "a"]')
    with refused(f"{duplicated}: feature names contain duplicates"):
        read_names_file(duplicated)
    numbers = tmp_path / "numbers.json"
    numbers.write_text("[1, 2]")
    with refused(f"{numbers}: feature names must be a non-empty list of strings"):
        read_names_file(numbers)
    other = tmp_path / "other.json"
    other.write_text('{"names": ["a"]}')
    with refused(f"{other}: feature names must be a non-empty list of strings"):
        read_names_file(other)
