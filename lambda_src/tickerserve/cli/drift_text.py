"""Drift in words, one sign everywhere (``monitor run``, ``history monitoring``, the report):
how much worse than its baseline the champion is, positive worse and negative better.

A history line of ours carries the signed ``drift.drift_pct``; seed 003's own lines (imported)
carry only ``drift.model_a_drift_pct``, the degradation alone, which the seed clips at 0: its
0 means "not worse", never "as the baseline", and is said so.
"""

from __future__ import annotations

import math
from typing import Any


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def drift_of(record: dict[str, Any]) -> float | None:
    """A history line's drift (+ worse, - better): ours, or the seed's degradation."""
    drift = record.get("drift")
    if not isinstance(drift, dict):
        return None
    signed = _number(drift.get("drift_pct"))
    return signed if signed is not None else _number(drift.get("model_a_drift_pct"))


def clipped(record: dict[str, Any]) -> bool:
    """The line's drift is the seed's clipped degradation (it has no signed figure)."""
    drift = record.get("drift")
    return isinstance(drift, dict) and _number(drift.get("drift_pct")) is None


def drift_text(drift: float | None, *, degradation_only: bool = False) -> str:
    """``+6.4% (worse)``, ``-6.4% (better)``, ``+0.0% (as the baseline)``; a clipped 0 of
    seed 003's (``degradation_only``) is ``0.0% (not worse)``."""
    if drift is None:
        return "-"
    if drift == 0:
        return "0.0% (not worse)" if degradation_only else "+0.0% (as the baseline)"
    return f"{drift:+.1f}% ({'worse' if drift > 0 else 'better'})"


def line_drift_text(record: dict[str, Any]) -> str:
    """A history line's drift in words, whichever figure it carries."""
    return drift_text(drift_of(record), degradation_only=clipped(record))
