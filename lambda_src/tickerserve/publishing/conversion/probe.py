"""Probe rows: inputs that walk the trees' own split points, so a conversion check exercises
most branches (values just below, at and just above thresholds, the range around them, and
missing values where the original accepts them)."""

from __future__ import annotations

import numpy as np

PROBE_ROWS = 256


def probe_rows(
    n_features: int,
    splits: dict[int, list[float]],
    *,
    rows: int = PROBE_ROWS,
    missing: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """``rows`` rows: half spread over each feature's split range (and 10% beyond), half
    placed on split thresholds and their float neighbours; some values missing."""
    rng = np.random.default_rng(seed)
    x = np.empty((rows, n_features))
    half = rows // 2
    for j in range(n_features):
        points = np.unique(np.asarray(splits.get(j, []), dtype=np.float64))
        points = points[np.isfinite(points)]
        if points.size == 0:  # never split on: any value takes the same path
            x[:, j] = rng.normal(scale=3.0, size=rows)
            continue
        low, high = float(points[0]), float(points[-1])
        span = (high - low) or max(abs(low), 1.0)
        x[:half, j] = rng.uniform(low - 0.1 * span, high + 0.1 * span, size=half)
        at = rng.choice(points, size=rows - half)
        step = rng.integers(-1, 2, size=rows - half)  # just below, at, just above
        nudged = np.where(step < 0, np.nextafter(at, -np.inf), at)
        nudged = np.where(step > 0, np.nextafter(at, np.inf), nudged)
        # float32 neighbours too: scikit-learn and XGBoost compare float32 inputs.
        as32 = at.astype(np.float32)
        near32 = np.where(step < 0, np.nextafter(as32, np.float32(-np.inf)), as32)
        near32 = np.where(step > 0, np.nextafter(as32, np.float32(np.inf)), near32)
        x[half:, j] = np.where(rng.random(rows - half) < 0.5, nudged, near32.astype(np.float64))
    if missing:
        x[rng.random(x.shape) < 0.05] = np.nan
        x[0, :] = np.nan
    x[1, :] = 0.0
    return x
