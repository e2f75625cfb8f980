"""LoadedModel: the single-row fast path answers exactly what Booster.predict answers."""

from __future__ import annotations

import threading

import lightgbm as lgb
import numpy as np
import pytest

from tests.support import DemoModels
from tickerserve.bundle import Bundle
from tickerserve.model import LoadedModel


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
