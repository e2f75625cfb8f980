"""Drift statistics over stored histograms, and the thresholds that flag them.

Every figure is named with its statistic and thresholds where it is reported, so a reader
knows what "0.31" means (PSI, watch at 0.1, drift at 0.25).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Level = Literal["ok", "watch", "drift"]
LEVELS: tuple[Level, ...] = ("ok", "watch", "drift")

# Proportions below this are raised to it before the logarithm, so an empty bin on either
# side contributes a large but finite term (not infinity). Not renormalized.
PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class Threshold:
    """``value >= watch`` is "watch", ``value >= drift`` is "drift" (NannyML's
    ``ConstantThreshold`` with an extra warning level)."""

    watch: float
    drift: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.watch) and math.isfinite(self.drift)):
            raise ValueError("thresholds must be finite numbers")
        if not 0 <= self.watch <= self.drift:
            raise ValueError(f"need 0 <= watch ({self.watch}) <= drift ({self.drift})")

    def level(self, value: float | None) -> Level | None:
        """The level of ``value``; None when there is no value to judge."""
        if value is None or not math.isfinite(value):
            return None
        if value >= self.drift:
            return "drift"
        if value >= self.watch:
            return "watch"
        return "ok"

    def to_dict(self) -> dict[str, float]:
        return {"watch": self.watch, "drift": self.drift}


DEFAULT_PSI = Threshold(0.1, 0.25)


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two proportion vectors over the same bins:
    ``sum((a - e) * ln(a / e))`` with every proportion raised to at least ``epsilon``."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    if e.shape != a.shape:
        raise ValueError(f"bins differ: {e.shape} vs {a.shape}")
    return float(np.sum((a - e) * np.log(a / e)))


def proportions(counts: np.ndarray) -> np.ndarray | None:
    """Counts as proportions; None when there are none."""
    total = float(np.sum(counts))
    if total <= 0:
        return None
    return np.asarray(counts, dtype=np.float64) / total


def linf_at_points(reference_cdf: np.ndarray, counts_at_or_below: np.ndarray, n: int) -> float:
    """Largest distance between the reference CDF and the current one, both evaluated at the
    baseline's stored points: ``max_i |F_ref(p_i) - count(x <= p_i) / n|``."""
    if n <= 0:
        raise ValueError("no values to compare")
    current = np.asarray(counts_at_or_below, dtype=np.float64) / n
    return float(np.max(np.abs(np.asarray(reference_cdf, dtype=np.float64) - current)))
