"""Performance before outcomes arrive: each window's accuracy estimated from the champion's
captured probabilities, calibrated on its baseline's labelled reference rows
(``tickerserve.baselines.calibration``; NannyML's CBPE ``calculate`` over the baseline's
``fit``). Shown beside the realized accuracy once outcomes are in; an estimate for a badly
calibrated model (or one calibrated on too few rows) is flagged, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tickerserve.baselines.calibration import Calibration


@dataclass(frozen=True)
class Estimate:
    """An accuracy estimated from confidence alone, for rows whose outcomes may not be in."""

    accuracy: float | None  # None: no row with probabilities
    rows: int  # rows with a confidence
    unseen_share: float  # of those rows, in bins the reference never reached
    trusted: bool
    problem: str | None  # why not trusted

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "rows": self.rows,
            "unseen_share": self.unseen_share,
            "trusted": self.trusted,
            "problem": self.problem,
        }


def estimate(calibration: Calibration, counts: np.ndarray) -> Estimate:
    """The expected accuracy of rows counted per confidence bin (``counts``)."""
    counts = np.asarray(counts, dtype=np.float64)
    rows = int(counts.sum())
    problem = calibration.problem()
    if rows == 0:
        return Estimate(None, 0, 0.0, problem is None, problem)
    unseen = float(counts[np.asarray(calibration.rows) == 0].sum() / rows)
    accuracy = float(counts @ calibration.accuracy() / rows)
    return Estimate(accuracy, rows, unseen, problem is None, problem)
