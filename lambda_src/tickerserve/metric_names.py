"""The CloudWatch metrics the functions emit, read once from ``metric_names.json`` beside this
file.

The CDK app reads the same file (``infra/runtime_contract.py``; infra never imports this
package) for its alarms and dashboards, so an alarm can never watch a name nobody emits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("metric_names.json")
RAW: dict[str, Any] = json.loads(PATH.read_text())


@dataclass(frozen=True)
class PredictionMetrics:
    """The prediction function's own metrics (Powertools EMF): counters add one per event,
    gauges are sampled; dimensions ``service`` and, deployed, ``function``; a per-model
    metric has the model's name as ``model_dimension`` too."""

    namespace: str
    service: str
    service_dimension: str
    function_dimension: str
    model_dimension: str
    # counters
    model_loads: str
    model_load_failures: str
    registry_reloads: str
    registry_failures: str
    served_last_good: str
    shadow_failures: str
    canary_fallbacks: str
    capture_failures: str
    # gauges
    registry_staleness: str
    invalid_settings: str  # per-model settings the registry holds but cannot read
    # per model
    request_warnings: str


@dataclass(frozen=True)
class MonitorMetrics:
    """A monitor run's figures, per model (dimension ``Model``) and the worst over models."""

    namespace: str
    model_dimension: str
    feature_drift_max: str
    drifted_feature_share: str
    output_psi: str
    drift_pct: str
    estimated_drift_pct: str  # of the accuracy estimated from confidence (trusted ones only)
    challenger_win_rate: str
    switch_recommended: str
    retrain_recommended: str


def _flat(section: dict[str, Any], *groups: str) -> dict[str, str]:
    """A section's names with its groups (``counters``, ...) merged in."""
    flat = {k: v for k, v in section.items() if k not in groups}
    for group in groups:
        flat |= section[group]
    return flat


PREDICTION = PredictionMetrics(**_flat(RAW["prediction"], "counters", "gauges", "per_model"))
MONITOR = MonitorMetrics(**_flat(RAW["monitor"], "figures"))
