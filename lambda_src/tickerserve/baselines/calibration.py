"""How far a classifier's confidence can be trusted: a reliability table fitted on the
baseline's labelled reference rows (NannyML's confidence-based performance estimation, CBPE).

Trading outcomes arrive days late; a window's accuracy can be estimated before they do from
what the model said: the expected share of correct answers is the mean probability that each
answer is right. A model's own confidence (its top probability) is that probability only when
the model is calibrated, so the reference rows (with their true labels) calibrate it: rows are
binned by confidence and each bin's accuracy on the reference is what a confidence in that bin
is worth (histogram binning). ``expected_calibration_error`` says how far the raw confidence
was from those accuracies on the reference; a model past ``TRUSTED_ECE`` is badly calibrated,
and an estimate for it is shown but not trusted (never alarmed on).

Bins: ``edges`` are the inner edges of ``BINS`` equal-width bins over [0, 1]; a confidence
``c`` falls in bin ``searchsorted(edges, c, side="right")``. A bin without reference rows is
worth its midpoint (nothing better is known; an estimate counts such rows apart).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 10
# Raw confidence further than this from the reference's accuracy (ECE, weighted by rows) is
# badly calibrated: 0.05 is five points of accuracy, more than a day's sampling noise at a few
# hundred rows.
TRUSTED_ECE = 0.05
# Fewer labelled reference rows than this calibrate nothing (a bin holds ~50 on average).
MIN_ROWS = 500


@dataclass(frozen=True)
class Calibration:
    """Per confidence bin: reference rows, how many of them were right, their summed
    confidence."""

    edges: list[float]
    rows: list[int]
    correct: list[int]
    confidence: list[float]

    @property
    def n(self) -> int:
        return int(sum(self.rows))

    def accuracy(self) -> np.ndarray:
        """What a confidence in each bin is worth: the bin's reference accuracy (the bin's
        midpoint where the reference had no row)."""
        rows = np.asarray(self.rows, dtype=np.float64)
        bounds = np.concatenate(([0.0], self.edges, [1.0]))
        midpoint = (bounds[:-1] + bounds[1:]) / 2
        return np.where(rows > 0, np.asarray(self.correct) / np.maximum(rows, 1), midpoint)

    def expected_calibration_error(self) -> float | None:
        """Mean |confidence - accuracy| over the reference's bins, weighted by rows."""
        rows = np.asarray(self.rows, dtype=np.float64)
        total = rows.sum()
        if total == 0:
            return None
        seen = rows > 0
        gap = np.abs(np.asarray(self.confidence)[seen] - np.asarray(self.correct)[seen])
        return float(gap.sum() / total)

    def problem(self) -> str | None:
        """Why an estimate built on this calibration is not to be trusted, or None."""
        if self.n < MIN_ROWS:
            return f"only {self.n} labelled reference rows (calibration needs {MIN_ROWS})"
        ece = self.expected_calibration_error()
        if ece is not None and ece > TRUSTED_ECE:
            return (
                f"badly calibrated: its confidence was {ece:.3f} from its accuracy on the "
                f"reference (expected calibration error; trusted up to {TRUSTED_ECE})"
            )
        return None

    def bin_of(self, confidence: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges), confidence, side="right")

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": "histogram binning of the top probability",
            "edges": self.edges,
            "rows": self.rows,
            "correct": self.correct,
            "confidence": self.confidence,
            "ece": self.expected_calibration_error(),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Calibration:
        found = cls(
            edges=[float(x) for x in raw["edges"]],
            rows=[int(x) for x in raw["rows"]],
            correct=[int(x) for x in raw["correct"]],
            confidence=[float(x) for x in raw["confidence"]],
        )
        size = len(found.edges) + 1
        if not (len(found.rows) == len(found.correct) == len(found.confidence) == size):
            raise ValueError("calibration needs rows, correct and confidence per bin")
        if any(c > r or c < 0 for c, r in zip(found.correct, found.rows, strict=True)):
            raise ValueError("calibration: a bin cannot hold more correct rows than rows")
        if np.any(np.diff(found.edges) <= 0):
            raise ValueError("calibration edges must be strictly increasing")
        return found


def fit_calibration(
    probabilities: np.ndarray, truth_index: np.ndarray, bins: int = BINS
) -> Calibration:
    """The reliability table of reference rows: ``probabilities`` rows x classes,
    ``truth_index`` each row's true class (``n_classes`` or more: a label the model cannot
    output, never right)."""
    confidence = probabilities.max(axis=1)
    right = np.argmax(probabilities, axis=1) == truth_index
    edges = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    index = np.searchsorted(edges, confidence, side="right")
    return Calibration(
        edges=[round(float(e), 12) for e in edges],
        rows=np.bincount(index, minlength=bins).astype(int).tolist(),
        correct=np.bincount(index, weights=right, minlength=bins).astype(int).tolist(),
        confidence=np.bincount(index, weights=confidence, minlength=bins).tolist(),
    )
