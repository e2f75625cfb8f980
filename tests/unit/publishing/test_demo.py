"""The demo models ``make serve``, the tests and the benchmarks use: trained on generated data,
reproducible from their seed, and valid bundles the function serves."""

from __future__ import annotations

import numpy as np

from tickerserve.publishing.demo import (
    FEATURES,
    STRATEGIES,
    booster_bundle,
    demo_bundle,
    train_booster,
    training_data,
)
from tickerserve.serving.model import LoadedModel


def test_the_same_seed_gives_the_same_model_and_another_seed_another():
    one = demo_bundle("etfs/SMH", seed=3, rows=200, rounds=5)
    again = demo_bundle("etfs/SMH", seed=3, rows=200, rounds=5)
    other = demo_bundle("etfs/SMH", seed=4, rows=200, rounds=5)
    assert one.files["model.txt"] == again.files["model.txt"]
    assert one.files["model.txt"] != other.files["model.txt"]


def test_a_demo_bundle_says_what_it_is_and_learns_better_than_chance():
    bundle = demo_bundle("etfs/SPY", "2.1.0", seed=1, n_classes=3, asset_class="etf")
    meta = bundle.metadata
    assert (meta.model, meta.version, meta.asset_class, meta.task) == (
        "etfs/SPY", "2.1.0", "etf", "classification",
    )  # fmt: skip
    assert meta.classes == STRATEGIES[:3]
    assert meta.feature_names == FEATURES
    assert meta.training["generated"] is True
    assert meta.metrics["accuracy"] > 0.6  # three classes: chance is a third
    x, y = training_data(1, 400, len(FEATURES), 3)
    predicted = LoadedModel(meta, bundle.files).predict_proba(x).argmax(axis=1)
    assert float((predicted == y).mean()) == meta.metrics["accuracy"]


def test_selected_features_and_wider_models_name_every_feature_once():
    selected = demo_bundle("etfs/SMH", selected_features=[1, 3], rows=200, rounds=5)
    assert selected.metadata.used_features == [FEATURES[1], FEATURES[3]]
    wide = demo_bundle("stocks/wide", n_features=30, rows=200, rounds=5)
    names = wide.metadata.feature_names
    assert len(names) == len(set(names)) == 30
    assert names[:12] == FEATURES and names[12] == "rsi_14_12"


def test_generated_data_has_gaps_and_every_class():
    x, y = training_data(0, 1000, 5, 4)
    share_missing = float(np.isnan(x).mean())
    assert 0.01 < share_missing < 0.03
    assert sorted(set(y.tolist())) == [0, 1, 2, 3]


def test_an_ensemble_of_boosters_is_a_weighted_bundle():
    x, y = training_data(2, 300, 5, 3)
    boosters = [train_booster(x, y, 3, seed=1, rounds=5), train_booster(x, y, 3, seed=2)]
    bundle = booster_bundle(
        "ens/avg", "1.0.0", boosters, feature_names=[f"f{i}" for i in range(5)],
        classes=["A", "B", "C"],
    )  # fmt: skip
    assert bundle.metadata.method == "weighted_average"
    assert len(bundle.metadata.members) == 2
    assert LoadedModel(bundle.metadata, bundle.files).predict_proba(x[:4]).shape == (4, 3)
