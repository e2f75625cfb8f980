"""The fast engines answer exactly what the original libraries answer, bit for bit: every
tree family, every batch size where an engine's code path may switch, rows on and around
every split threshold, missing values, zeros of both signs, and batches split across
threads."""

from __future__ import annotations

import numpy as np
import pytest

from tests.family_support import families
from tests.tree_support import FAST_FAMILIES, hard_rows, member
from tickerserve.members import row_split
from tickerserve.members.tree_engines import LIBXGBOOST_MIN_ROWS

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
