"""The monitor's CloudWatch metrics: each model's figures under its ``Model`` dimension and the
worst over all models without one (so an alarm covers models added later), at the run's time;
figures a run could not compute are left out, never sent as zero."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.monitor_support import REGISTRY_KEY, past_wins
from tests.unit.monitor.test_evaluate import NOW, SHIFTED, run, smh_store, traffic
from tickerserve.metric_names import MONITOR
from tickerserve.metric_names import RAW as METRICS
from tickerserve.monitor.cloudwatch import NAMESPACE, emit, metric_data
from tickerserve.monitor.report import RunReport
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.store import LocalStore


@pytest.fixture
def report(tmp_path: Path, models) -> RunReport:
    """A judged week: SMH (drifted, a challenger better for three days now) and SPY (no
    baseline, no traffic)."""
    store = LocalStore(tmp_path / "store")
    names = smh_store(store, models, metrics={"accuracy": 0.6})
    traffic(store, names, models.smh.metadata.classes, shift=SHIFTED, challenger_right=0.85)
    past_wins(store, before=NOW.date())
    publish_bundle(store, models.spy, registry_key=REGISTRY_KEY)
    return run(store)


def by_model(entries: list[dict]) -> dict[str | None, dict[str, float]]:
    out: dict[str | None, dict[str, float]] = {}
    for entry in entries:
        dims = entry.get("Dimensions")
        model = dims[0]["Value"] if dims else None
        out.setdefault(model, {})[entry["MetricName"]] = entry["Value"]
    return out


def test_each_model_has_its_figures_and_the_worst_has_no_dimension(report: RunReport) -> None:
    entries = metric_data(report)
    figures = by_model(entries)
    smh = figures["etfs/SMH"]
    # every figure but the estimated accuracy's drift: SMH's reference labels are random, so
    # its confidence is badly calibrated and an estimate from it is not sent (nor alarmed on)
    estimated = report.models[0].performance.estimated
    assert estimated is not None and not estimated.trusted
    assert set(smh) == set(METRICS["monitor"]["figures"].values()) - {MONITOR.estimated_drift_pct}
    assert smh[MONITOR.switch_recommended] == 1.0 and smh[MONITOR.challenger_win_rate] == 1.0
    assert smh[MONITOR.feature_drift_max] >= 0.25
    # the worst over models: here SMH's own figures
    assert figures[None] == {
        name: max(v[name] for m, v in figures.items() if m and name in v) for name in figures[None]
    }
    assert all(e["Unit"] == "None" for e in entries)
    when = datetime.fromisoformat(report.started_at.replace("Z", "+00:00"))
    assert {e["Timestamp"] for e in entries} == {when}
    assert all(
        e["Dimensions"][0]["Name"] == MONITOR.model_dimension for e in entries if "Dimensions" in e
    )


def test_figures_a_run_could_not_compute_are_left_out(report: RunReport) -> None:
    spy = by_model(metric_data(report)).get("etfs/SPY", {})
    # no baseline and no traffic: no drift, no win rate; the recommendation still counts
    assert MONITOR.feature_drift_max not in spy and MONITOR.challenger_win_rate not in spy
    assert spy.get(MONITOR.switch_recommended) == 0.0


def test_emit_sends_every_entry_to_cloudwatch(report: RunReport) -> None:
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="us-east-1")
        sent = emit(report, client)
        listed = client.list_metrics(Namespace=NAMESPACE)["Metrics"]
        assert sent == len(metric_data(report)) == len(listed)
        stats = client.get_metric_statistics(
            Namespace=NAMESPACE, MetricName=MONITOR.switch_recommended,
            Dimensions=[{"Name": MONITOR.model_dimension, "Value": "etfs/SMH"}],
            StartTime=datetime(2020, 1, 1, tzinfo=UTC), EndTime=datetime(2030, 1, 1, tzinfo=UTC),
            Period=86400 * 3650, Statistics=["Maximum"],
        )  # fmt: skip
        assert [p["Maximum"] for p in stats["Datapoints"]] == [1.0]
