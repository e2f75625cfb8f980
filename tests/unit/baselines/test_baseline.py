"""Baselines: fitting reference distributions, the file format and seed 003's files (where a
baseline is stored and verified: ``test_persistence.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.monitor_support import classification_baseline, reference_rows
from tickerserve.baselines.baseline import (
    Baseline,
    BaselineError,
    Histogram,
    Reference,
    fit_baseline,
    fit_histogram,
    from_seed_003,
)

# seed 003's own examples (models/README.md)
VALIDATION_BASELINE = {
    "validation_rmse": 0.011402, "validation_mae": 0.006778, "validation_r2": 0.434352,
    "timestamp": "2026-01-08T22:09:13.586357", "train_val_split": 0.9,
    "date_range": {"train_start": "2010-03-31", "train_end": "2024-05-31",
                   "val_start": "2024-06-03", "val_end": "2025-12-31"},
}  # fmt: skip
DUAL_MODEL_BASELINE = {
    "timestamp": "2026-01-08T22:09:13.586357",
    "model_a": {"training_samples": 3566, "training_date_start": "2010-03-31",
                "training_date_end": "2024-05-31", "validation_rmse": 0.011402,
                "validation_mae": 0.006778, "validation_r2": 0.434352, "validation_samples": 397},
    "model_b": {"training_samples": 3933, "training_date_start": "2010-03-31",
                "training_date_end": "2025-11-17", "test_samples": 30,
                "test_date_start": "2025-11-18", "test_date_end": "2025-12-31",
                "test_rmse": 0.005797, "test_mae": 0.004760, "test_r2": -0.122300},
}  # fmt: skip


def test_seed_003_baselines_become_metrics_and_windows() -> None:
    a = from_seed_003("vol/SPY", "1.0.0", "a", VALIDATION_BASELINE, DUAL_MODEL_BASELINE)
    assert a.task == "regression"
    assert a.metrics == {"rmse": 0.011402, "mae": 0.006778, "r2": 0.434352}
    assert (a.training.start, a.training.end, a.training.samples) == (
        "2010-03-31",
        "2024-05-31",
        3566,
    )
    assert (a.validation.start, a.validation.end, a.validation.samples) == (
        "2024-06-03",
        "2025-12-31",
        397,
    )
    b = from_seed_003("vol/SPY", "1.0.1", "b", VALIDATION_BASELINE, DUAL_MODEL_BASELINE)
    assert b.metrics == {"rmse": 0.005797, "mae": 0.00476, "r2": -0.1223}
    assert (b.training.end, b.validation.start, b.validation.samples) == (
        "2025-11-17",
        "2025-11-18",
        30,
    )
    with pytest.raises(BaselineError, match="no metrics"):
        from_seed_003("vol/SPY", "1.0.0", "b", None, None)


def test_a_seed_baseline_keeps_the_distributions_of_a_fitted_reference() -> None:
    rng = np.random.default_rng(0)
    x = reference_rows(rng, 500, 3)
    fitted = fit_baseline("vol/SPY", "1.0.0", "regression",
                          Reference(["a", "b", "c"], x, 0.01 + x[:, 0] * 0.001))  # fmt: skip
    merged = from_seed_003("vol/SPY", "1.0.0", "a", VALIDATION_BASELINE, DUAL_MODEL_BASELINE,
                           reference=fitted)  # fmt: skip
    assert merged.features == fitted.features and merged.output == fitted.output
    assert merged.metrics["rmse"] == 0.011402  # the seed's validation figures win


def test_the_file_round_trips_and_refuses_what_it_does_not_understand(models) -> None:
    rng = np.random.default_rng(1)
    meta = models.smh.metadata
    truth = [meta.classes[i] for i in rng.integers(0, 4, 800)]
    baseline = classification_baseline(models.smh, reference_rows(rng, 800, 6), truth)
    again = Baseline.from_json(baseline.to_json())
    assert again == baseline
    raw = json.loads(baseline.to_json())
    with pytest.raises(BaselineError, match="unsupported baseline schema 2"):
        Baseline.from_json(json.dumps({**raw, "schema": 2}).encode())
    with pytest.raises(BaselineError, match="task"):
        Baseline.from_json(json.dumps({**raw, "task": "ranking"}).encode())
    with pytest.raises(BaselineError, match="baseline is invalid"):
        Baseline.from_json(b"{not json")
    assert len(baseline.to_json()) < 60_000  # 6 features: small beside the model


def test_a_histogram_has_decile_bins_of_observed_values_and_a_missing_share() -> None:
    values = np.append(np.arange(1.0, 101.0), [np.nan] * 25)
    hist = fit_histogram(values)
    # the deciles themselves; bin i is [edges[i-1], edges[i])
    assert hist.edges == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    assert hist.proportions == pytest.approx([0.09] + [0.1] * 8 + [0.11])
    assert (hist.missing_share, hist.n) == (0.2, 100)
    assert hist.expected() == pytest.approx([0.072] + [0.08] * 8 + [0.088, 0.2])
    assert (hist.cdf_points[0], hist.cdf[0], hist.cdf_points[-1], hist.cdf[-1]) == (
        1.0,
        0.01,
        100.0,
        1.0,
    )
    # a feature with three levels gets one edge per level it takes, not ten bins
    levels = fit_histogram(np.repeat([0.0, 1.0, 2.0], [50, 30, 20]))
    assert levels.edges == [0.0, 1.0, 2.0]
    assert levels.proportions == pytest.approx([0.0, 0.5, 0.3, 0.2])
    assert Histogram.from_dict(levels.to_dict()) == levels
    with pytest.raises(
        BaselineError, match=r"^reference values must be finite numbers or missing$"
    ):
        fit_histogram(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match=r"^edges and cdf_points must be strictly increasing$"):
        Histogram.from_dict({**levels.to_dict(), "edges": [2.0, 1.0, 0.0]})
