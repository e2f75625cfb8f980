"""The fast engines answer exactly what the original libraries answer, bit for bit: every
tree family, every batch size where an engine's code path may switch, rows on and around
every split threshold, missing values, zeros of both signs, batches split across threads,
and batches walked in another row order than they came in."""

from __future__ import annotations

import numpy as np
import pytest

from tests.family_support import families
from tests.tree_support import FAST_FAMILIES, hard_rows, member
from tickerserve.members import row_split, tree_engines
from tickerserve.members.forest import Forest
from tickerserve.members.tree_engines import LIBXGBOOST_MIN_ROWS, branch_order, split_features

# 1, a few, around numpy's and onnxruntime's switch points, and a whole batch.
BATCH_SIZES = (1, 2, 7, 31, 32, 33, 63, 64, 65, 127, 129, 1000)


@pytest.mark.parametrize("name", FAST_FAMILIES)
def test_every_batch_size_answers_the_original_bit_for_bit(name):
    # Given a tree family's original estimator and its member as the function loads it
    family = families()[name]
    estimator = next(iter(family.estimators.values()))
    loaded = member(name)
    rows = hard_rows(estimator, 1000, loaded.n_features, missing=family.missing)
    # Then every batch size answers the original's own predict to the last bit
    for size in BATCH_SIZES:
        theirs = np.asarray(family.reference(rows[:size]), dtype=np.float64)
        mine = loaded.predict(rows[:size])
        np.testing.assert_array_equal(mine, theirs.reshape(mine.shape), err_msg=f"{size} rows")


@pytest.mark.parametrize("name", FAST_FAMILIES)
def test_the_fast_engine_serves_the_family(name):
    # XGBoost batches go to XGBoost's own library, forests to the leaf graph, boosting to
    # onnxruntime's sums; none is left on Treelite's slower walker.
    expected = {"xgboost": "libxgboost", "random": "onnxruntime leaves",
                "extra": "onnxruntime leaves", "gradient": "onnxruntime sums"}  # fmt: skip
    assert member(name).engine_name == expected[name.split("_")[0]]


@pytest.mark.parametrize("name", ["xgboost_classifier", "random_forest_classifier",
                                  "gradient_boosting_classifier"])  # fmt: skip
def test_batches_split_across_vcpus_answer_the_same_bits(name, monkeypatch):
    # Given a function with four vCPUs, splitting batches from 16 rows a thread
    family = families()[name]
    loaded = member(name)
    rows = hard_rows(next(iter(family.estimators.values())), 500, loaded.n_features,
                     missing=family.missing, seed=3)  # fmt: skip
    one_thread = loaded.predict(rows)
    monkeypatch.setattr(row_split, "vcpus", lambda: 4)
    monkeypatch.setattr(row_split, "MIN_ROWS_PER_THREAD", 16)
    assert row_split.threads_for(len(rows)) == 4
    # Then the split batch is the very same answer (rows are split, never a row's trees)
    np.testing.assert_array_equal(loaded.predict(rows), one_thread)


def test_xgboost_small_requests_and_batches_take_different_engines_with_the_same_answer():
    # Given an XGBoost member: onnxruntime below LIBXGBOOST_MIN_ROWS rows, libxgboost above
    family = families()["xgboost_classifier"]
    loaded = member("xgboost_classifier")
    rows = hard_rows(family.estimators["model"], LIBXGBOOST_MIN_ROWS, loaded.n_features,
                     missing=True, seed=4)  # fmt: skip
    batch = loaded.predict(rows)
    one_by_one = np.vstack([loaded.predict(rows[i : i + 1]) for i in range(len(rows))])
    # Then both paths agree with each other and with XGBoost
    np.testing.assert_array_equal(batch, one_by_one)
    np.testing.assert_array_equal(batch, family.reference(rows))


def _two_trees() -> Forest:
    """Tree 0 splits feature 2 at its root, feature 1 below it on the left, then feature 0 on
    both sides of that; tree 1 splits feature 1 at its root. Feature 3 is never split on."""
    left = [1, 3, -1, 5, 7, -1, -1, -1, -1, 10, -1, -1]
    right = [2, 4, -1, 6, 8, -1, -1, -1, -1, 11, -1, -1]
    feature = [2, 1, -1, 0, 0, -1, -1, -1, -1, 1, -1, -1]
    n = len(left)
    return Forest(
        family="boosting", n_features=4, width=1,
        left=np.asarray(left, np.int32), right=np.asarray(right, np.int32),
        feature=np.asarray(feature, np.int32), threshold=np.zeros(n), strict=False,
        default_left=np.zeros(n, bool), value=np.zeros((n, 1)), cover=np.ones(n),
        roots=np.asarray([0, 9], np.int32), base=np.zeros(1),
    )  # fmt: skip


def test_the_features_split_on_nearest_the_roots_come_first():
    # A split weighs what it splits of a row's walk (a root 1, a node d levels down 2^-d):
    # feature 1 (a root and one level down) 1.5, feature 2 (a root) 1, feature 0 (twice, two
    # levels down) 0.5, though split on most often; a feature no tree splits on comes last
    assert split_features(_two_trees(), count=3).tolist() == [1, 2, 0, 3]
    assert split_features(_two_trees(), count=1).tolist() == [1, 2]


def test_branch_order_groups_rows_by_their_side_of_the_heaviest_features():
    # Given 1,024 rows and three features, heaviest first
    rows = np.random.default_rng(5).normal(size=(1024, 3)).astype(np.float32)
    order = branch_order(rows, np.asarray([0, 1, 2]))
    # Then every row comes once, grouped by its side of the first two features' medians
    # (the first the most significant), and sorted by the third within a group
    assert sorted(order.tolist()) == list(range(1024))
    walked = rows[order]
    medians = np.sort(rows[:, :2], axis=0)[512]
    group = (walked[:, 0] > medians[0]) * 2 + (walked[:, 1] > medians[1])
    assert np.all(np.diff(group) >= 0)
    for g in range(4):
        assert np.all(np.diff(walked[group == g, 2]) >= 0)


@pytest.mark.parametrize("name", ["random_forest_classifier", "gradient_boosting_classifier",
                                  "gradient_boosting_regressor"])  # fmt: skip
def test_a_batch_walked_in_branch_order_answers_every_row_the_same_bits(name, monkeypatch):
    # Given a batch big enough to be walked in branch order, missing values included
    family = families()[name]
    loaded = member(name)
    rows = hard_rows(next(iter(family.estimators.values())), 1000, loaded.n_features,
                     missing=family.missing, seed=6)  # fmt: skip
    assert len(rows) >= tree_engines.ORDER_MIN_ROWS
    ordered = loaded.predict(rows)
    # Then each row's answer is the one it gets in the rows' own order, in any order
    shuffled = np.random.default_rng(6).permutation(len(rows))
    np.testing.assert_array_equal(loaded.predict(rows[shuffled]), ordered[shuffled])
    monkeypatch.setattr(tree_engines, "ORDER_MIN_ROWS", len(rows) + 1)
    np.testing.assert_array_equal(loaded.predict(rows), ordered)
