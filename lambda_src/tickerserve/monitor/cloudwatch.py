"""The monitor's CloudWatch metrics: per model (dimension ``Model``) and the worst over all
models without a dimension, so an alarm on the latter covers models added later with no
redeploy. The names are ``metric_names.MONITOR``, from the file the stack's alarms and
dashboard are built from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tickerserve.metric_names import MONITOR
from tickerserve.monitor.report import ModelReport, RunReport

NAMESPACE = MONITOR.namespace
_PER_CALL = 1000  # PutMetricData's limit


def model_figures(report: ModelReport) -> dict[str, float]:
    """The metric values of one model's report (absent figures are left out, not zeroed)."""
    features = report.feature_drift.summary if report.feature_drift else None
    output = report.output_drift
    estimated = report.performance.estimated
    values = {
        MONITOR.feature_drift_max: features.psi_max if features else None,
        MONITOR.drifted_feature_share: features.drifted_share if features else None,
        MONITOR.output_psi: output.psi if output else None,
        MONITOR.drift_pct: report.performance.drift_pct,
        # Before outcomes arrive: only an estimate its reference vouches for can alarm.
        MONITOR.estimated_drift_pct: estimated.drift_pct
        if estimated is not None and estimated.trusted
        else None,
        MONITOR.challenger_win_rate: report.comparison.win_rate,
        MONITOR.switch_recommended: 1.0 if report.action == "switch" else 0.0,
        MONITOR.retrain_recommended: 1.0 if report.action == "retrain" else 0.0,
    }
    return {k: float(v) for k, v in values.items() if v is not None}


def metric_data(run: RunReport) -> list[dict[str, Any]]:
    """PutMetricData entries: every model's figures, then the maximum of each over models."""
    when = datetime.fromisoformat(run.started_at.replace("Z", "+00:00"))
    entries: list[dict[str, Any]] = []
    worst: dict[str, float] = {}
    for report in run.models:
        for name, value in model_figures(report).items():
            entries.append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": MONITOR.model_dimension, "Value": report.model}],
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
