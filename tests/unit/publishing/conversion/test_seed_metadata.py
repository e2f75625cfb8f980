"""A seed's own metadata read leniently: metrics under any of their usual names (finite numbers
only), the training window, hyperparameters and when the model was made."""

from __future__ import annotations

import math
import re
from datetime import date

import numpy as np
from lightgbm import LGBMClassifier

from tickerserve.publishing.conversion import seed_metadata


def test_metrics_come_from_the_metrics_block_and_from_keys_that_look_like_metrics():
    notes: list[str] = []
    meta = {
        "metrics": {"accuracy": 0.61, "f1_macro": np.float32(0.5)},
        "validation_r2": 0.43,
        "val_rmse": 0.011,
        "layer2": 7,  # r2 only as a whole word
        "sharpe_ratio": 1.2,
        "win_rate": True,  # a boolean is no metric
        "test_loss": math.nan,
        "symbol": "SPY",
    }
    found = seed_metadata.metrics(meta, notes)
    assert found == {"accuracy": 0.61, "f1_macro": 0.5, "validation_r2": 0.43,
                     "val_rmse": 0.011, "sharpe_ratio": 1.2}  # fmt: skip
    assert notes == ["dropped metric test_loss: not a finite number"]


def test_the_training_window_is_found_under_the_seeds_names():
    meta = {
        "training_date_start": "2010-03-31",
        "train_end": date(2024, 5, 31),
        "n_samples": np.int64(3566),
        "training": {"split": 0.9, "bad": math.inf},
    }
    assert seed_metadata.training(meta) == {
        "start": "2010-03-31", "end": "2024-05-31", "rows": 3566, "split": 0.9,
    }  # fmt: skip
    assert seed_metadata.training({}) == {}


def test_hyperparameters_are_the_recorded_ones_else_the_estimators_own():
    assert seed_metadata.hyperparameters({"params": {"num_leaves": 31, "cb": print}}) == {
        "num_leaves": 31
    }
    own = seed_metadata.hyperparameters({}, LGBMClassifier(num_leaves=7, learning_rate=0.05))
    assert (own["num_leaves"], own["learning_rate"]) == (7, 0.05)
    assert seed_metadata.hyperparameters({}) == {}


def test_created_at_is_the_first_source_that_says_so_else_now():
    assert seed_metadata.created_at({}, {"trained_at": "2025-11-18T10:00:00"}) == (
        "2025-11-18T10:00:00"
    )
    assert seed_metadata.created_at({"timestamp": ""}, {"date": "2025-01-01"}) == "2025-01-01"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", seed_metadata.created_at({}))


def test_values_become_plain_json():
    assert seed_metadata.jsonable(np.float64(1.5)) == 1.5
    assert seed_metadata.jsonable(date(2025, 1, 2)) == "2025-01-02"
    assert seed_metadata.jsonable(math.nan) is None
    assert seed_metadata.first({"b": 2, "a": 1}, ("a", "b")) == 1
    assert seed_metadata.first(["a"], ("a",)) is None
