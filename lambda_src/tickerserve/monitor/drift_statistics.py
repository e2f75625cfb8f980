"""Drift statistics over stored histograms: the population stability index and the
L-infinity distance of CDFs. The bands that flag them are ``config.Threshold``, configured in
``config.json``; every figure is reported with its statistic and band, so a reader knows what
"0.31" means.
"""

from __future__ import annotations

import numpy as np

from tickerserve.monitor.config import DEFAULTS

# Proportions below this are raised to it before the logarithm, so an empty bin on either
# side contributes a large but finite term (not infinity). Not renormalized.
PSI_EPSILON = DEFAULTS.psi_epsilon


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
