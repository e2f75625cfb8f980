"""The monitor's CloudWatch metrics: per model (dimension ``Model``) and the worst over all
models without a dimension, so an alarm on the latter covers models added later with no
redeploy. The names are the ones the stack's alarms and dashboard use (a test checks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tickerserve.monitor.evaluate import RunReport

NAMESPACE = "Tickerserve/Monitor"
DIMENSION = "Model"
FEATURE_DRIFT_MAX = "FeatureDriftMax"
DRIFTED_FEATURE_SHARE = "DriftedFeatureShare"
OUTPUT_PSI = "OutputPsi"
DRIFT_PCT = "DriftPct"
CHALLENGER_WIN_RATE = "ChallengerWinRate"
SWITCH_RECOMMENDED = "SwitchRecommended"
RETRAIN_RECOMMENDED = "RetrainRecommended"
METRIC_NAMES = (
    FEATURE_DRIFT_MAX,
    DRIFTED_FEATURE_SHARE,
    OUTPUT_PSI,
    DRIFT_PCT,
    CHALLENGER_WIN_RATE,
    SWITCH_RECOMMENDED,
    RETRAIN_RECOMMENDED,
)
_PER_CALL = 1000  # PutMetricData's limit


def model_figures(data: dict[str, Any]) -> dict[str, float]:
    """The metric values of one model's report (absent figures are left out, not zeroed)."""
    features = data.get("feature_drift") or {}
    output = data.get("output_drift") or {}
    values = {
        FEATURE_DRIFT_MAX: features.get("psi_max"),
        DRIFTED_FEATURE_SHARE: features.get("drifted_share"),
        OUTPUT_PSI: output.get("psi"),
        DRIFT_PCT: data["performance"]["drift_pct"],
        CHALLENGER_WIN_RATE: data["comparison"]["win_rate"],
        SWITCH_RECOMMENDED: 1.0 if data["recommendation"]["action"] == "switch" else 0.0,
        RETRAIN_RECOMMENDED: 1.0 if data["recommendation"]["action"] == "retrain" else 0.0,
    }
    return {k: float(v) for k, v in values.items() if v is not None}


def metric_data(run: RunReport) -> list[dict[str, Any]]:
    """PutMetricData entries: every model's figures, then the maximum of each over models."""
    when = datetime.fromisoformat(run.started_at.replace("Z", "+00:00"))
    entries: list[dict[str, Any]] = []
    worst: dict[str, float] = {}
    for report in run.models:
        for name, value in model_figures(report.to_dict()).items():
            entries.append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": DIMENSION, "Value": report.model}],
                    "Timestamp": when,
                    "Value": value,
                    "Unit": "None",
                }
            )
            worst[name] = max(worst.get(name, value), value)
    entries += [
        {"MetricName": name, "Timestamp": when, "Value": value, "Unit": "None"}
        for name, value in worst.items()
    ]
    return entries


def emit(run: RunReport, client: Any = None, namespace: str = NAMESPACE) -> int:
    """Send the run's metrics; returns how many data points were sent."""
    if client is None:
        import boto3

        client = boto3.client("cloudwatch")
    entries = metric_data(run)
    for start in range(0, len(entries), _PER_CALL):
        chunk = entries[start : start + _PER_CALL]
        client.put_metric_data(Namespace=namespace, MetricData=chunk)
    return len(entries)
