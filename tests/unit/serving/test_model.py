"""LoadedModel: the single-row fast path answers exactly what Booster.predict answers."""

from __future__ import annotations

import threading

import lightgbm as lgb
import numpy as np
import pytest

from tests.support import DemoModels
from tickerserve.members.lightgbm import LightGBMMember, NativeBooster, SingleRow
from tickerserve.serving.model import LoadedModel
from tickerserve.storage.bundle import Bundle


def rows_with_gaps(n_features: int, n_rows: int = 64) -> np.ndarray:
    rng = np.random.default_rng(3)
    rows = rng.normal(scale=2.0, size=(n_rows, n_features))
    rows[rng.random(rows.shape) < 0.2] = np.nan  # missing values take the default branches
    return rows


def booster_proba(bundle: Bundle, rows: np.ndarray) -> np.ndarray:
    """The reference: LightGBM's own predict on the published model text."""
    booster = lgb.Booster(model_str=bundle.files["model.txt"].decode())
    raw = np.asarray(booster.predict(rows))
    return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw


@pytest.mark.parametrize("name", ["smh", "universal", "binary"])
def test_single_rows_equal_booster_predict(models: DemoModels, name: str):
    bundle = getattr(models, name)
    model = LoadedModel(bundle.metadata, bundle.files)
    rows = rows_with_gaps(len(model.used_features))
    expected = booster_proba(bundle, rows)
    singles = np.vstack([model.predict_proba(rows[i : i + 1]) for i in range(len(rows))])
    np.testing.assert_array_equal(singles, expected)
    np.testing.assert_array_equal(model.predict_proba(rows), expected)  # the batch path


def test_fast_path_is_safe_under_concurrent_requests(models: DemoModels):
    # Given one loaded model shared by threads (the local server is threaded)
    model = LoadedModel(models.universal.metadata, models.universal.files)
    rows = rows_with_gaps(len(model.used_features), 400)
    expected = booster_proba(models.universal, rows)
    mismatches: list[int] = []

    def worker(offset: int) -> None:
        for i in range(offset, len(rows), 8):
            if not np.array_equal(model.predict_proba(rows[i : i + 1])[0], expected[i]):
                mismatches.append(i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every answer is the one for its own row
    assert mismatches == []


def test_non_contiguous_rows_are_handled(models: DemoModels):
    model = LoadedModel(models.spy.metadata, models.spy.files)
    wide = rows_with_gaps(24, 4)
    strided = wide[:, ::2]  # a view with a stride of two
    assert not strided[0].flags.c_contiguous
    np.testing.assert_array_equal(
        model.predict_proba(strided[:1]), booster_proba(models.spy, strided[:1])
    )


def every_kind_of_bundle(models: DemoModels) -> dict[str, Bundle]:
    """One bundle of each shape a version can have: binary, multiclass with and without
    selected features, a weighted ensemble and a stacking ensemble."""
    from tickerserve.publishing.demo import booster_bundle, train_booster, training_data
    from tickerserve.storage.bundle import BundleMetadata, Stacking

    x, y = training_data(11, 300, 5, 3)
    ensemble = booster_bundle(
        "ens/avg",
        "1.0.0",
        [train_booster(x, y, 3, seed=1), train_booster(x, y, 3, rounds=5, seed=2)],
        feature_names=[f"f{i}" for i in range(5)],
        classes=["A", "B", "C"],
    )
    stacked_meta = BundleMetadata.from_dict(ensemble.metadata.to_dict())
    stacked_meta.method = "stacking"
    stacked_meta.stacking = Stacking(np.eye(3, 6).tolist(), [0.0, 0.0, 0.0])
    return {
        "smh": models.smh,
        "spy": models.spy,
        "universal": models.universal,
        "binary": models.binary,
        "weighted": ensemble,
        "stacking": Bundle(stacked_meta, ensemble.files),
    }


def test_every_loaded_booster_answers_single_rows_through_the_fast_path(
    models: DemoModels, monkeypatch
):
    # The fast path uses LightGBM internals (ctypes handles, a C entry point); a LightGBM
    # upgrade that moves them would silently quadruple one-row latency, so this must fail.
    bundles = every_kind_of_bundle(models)
    loaded = {name: LoadedModel(b.metadata, b.files) for name, b in bundles.items()}
    for name, model in loaded.items():
        assert len(model.members) == len(model.metadata.members), name
        assert all(isinstance(m, LightGBMMember) and m.fast_path for m in model.members), name
        assert model.single_row_fast_path, name
    # And one-row requests really take it: Booster.predict is never reached
    monkeypatch.setattr(
        NativeBooster, "predict", lambda *a, **k: pytest.fail("one row left the fast path")
    )
    for name, model in loaded.items():
        row = rows_with_gaps(len(model.used_features), 1)
        assert model.predict_proba(row).shape == (1, len(model.classes)), name


def test_a_booster_without_the_fast_path_is_reported(models: DemoModels, monkeypatch):
    # Given a LightGBM build whose fast-path entry point fails
    monkeypatch.setattr(SingleRow, "create", classmethod(lambda cls, booster: None))
    model = LoadedModel(models.smh.metadata, models.smh.files)
    # Then the model still answers (through Booster.predict) but says it is on the slow path
    assert model.single_row_fast_path is False
    row = rows_with_gaps(len(model.used_features), 1)
    np.testing.assert_array_equal(model.predict_proba(row), booster_proba(models.smh, row))
