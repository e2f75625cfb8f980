"""The scheduled monitor function, invoked as EventBridge Scheduler invokes it, against moto
(S3 for the store, CloudWatch for the metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from tests.monitor_support import DAY0, past_wins
from tests.support import load_event
from tests.unit.monitor.test_evaluate import SHIFTED, smh_store, traffic
from tickerserve.layout import MONITORING_HISTORY_KEY
from tickerserve.monitor import handler
from tickerserve.monitor.cloudwatch import NAMESPACE
from tickerserve.settings import (
    ENV_BUCKET,
    ENV_MONITOR_AUTO_PROMOTE,
    ENV_MONITOR_DAYS,
    ENV_MONITOR_THRESHOLDS,
    ENV_STORE_PATH,
)
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import S3Store

# The monitor function's layer has no scipy: nothing here may import it.
pytestmark = pytest.mark.usefixtures("without_scipy")
BUCKET = "tickerserve-models"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Store]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        monkeypatch.setenv(ENV_BUCKET, BUCKET)
        monkeypatch.setenv(ENV_STORE_PATH, "")
        yield S3Store(BUCKET, client=client)


def metrics(dimensioned: bool) -> dict[str, float]:
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    found = {}
    for metric in cw.list_metrics(Namespace=NAMESPACE)["Metrics"]:
        if bool(metric.get("Dimensions")) != dimensioned:
            continue
        data = cw.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=metric["MetricName"],
            Dimensions=metric.get("Dimensions", []),
            StartTime="2020-01-01",
            EndTime="2030-01-01",
            Period=86400 * 3650,
            Statistics=["Maximum"],
        )
        found[metric["MetricName"]] = max(p["Maximum"] for p in data["Datapoints"])
    return found


def test_a_scheduled_run_judges_the_week_before_writes_history_and_metrics(aws, models) -> None:
    # Given a champion whose inputs moved and a challenger that is right far more often
    # (for the two days before today too, the history says)
    names = smh_store(aws, models, metrics={"accuracy": 0.6})
    traffic(aws, names, models.smh.metadata.classes, shift=SHIFTED, challenger_right=0.85)
    past_wins(aws, before=datetime.now(UTC).date())
    # When the schedule fires at 00:30 on 2026-12-08 (the event CDK's LambdaInvoke sends)
    summary = handler.lambda_handler(load_event("scheduler_monitor.json"), None)
    # Then the complete days 12-01 .. 12-07 were judged
    assert (summary["since"], summary["until"]) == ("2026-12-01", "2026-12-08")
    assert DAY0.isoformat() == summary["since"]
    assert summary["models"][0]["action"] == "switch"
    *_, line = read_records(aws, MONITORING_HISTORY_KEY).records
    assert line["action"] == "switch" and line["feature_drift"]["drifted"] == sorted(SHIFTED)
    # and the metrics are there per model and without a dimension (the worst over models)
    per_model, worst = metrics(dimensioned=True), metrics(dimensioned=False)
    assert per_model["SwitchRecommended"] == 1.0 == worst["SwitchRecommended"]
    assert per_model["FeatureDriftMax"] >= 0.25
    assert worst["FeatureDriftMax"] == per_model["FeatureDriftMax"]
    assert per_model["ChallengerWinRate"] == 1.0
    assert summary["metrics_sent"] == 2 * len(per_model)
    # switching stays a human decision by default
    assert (
        read_registry(aws, "metadata/asset_registry.json")
        .registry.models["etfs/SMH"]
        .aliases["production"]
        .version
        == "1.0.0"
    )


def test_auto_promote_moves_production_through_the_promote_path(aws, models, monkeypatch) -> None:
    monkeypatch.setenv(ENV_MONITOR_AUTO_PROMOTE, "true")
    names = smh_store(aws, models, metrics={"accuracy": 0.6})
    traffic(aws, names, models.smh.metadata.classes, challenger_right=0.85)
    past_wins(aws, before=datetime.now(UTC).date())
    summary = handler.lambda_handler(load_event("scheduler_monitor.json"), None)
    assert summary["promotions"] == [
        {"model": "etfs/SMH", "alias": "production", "from": "1.0.0", "to": "1.0.1",
         "revision": summary["promotions"][0]["revision"]}
    ]  # fmt: skip
    entry = read_registry(aws, "metadata/asset_registry.json").registry.models["etfs/SMH"]
    assert entry.aliases["production"].version == "1.0.1"
    assert [t.version for t in entry.history["production"]] == ["1.0.0"]  # rollback works
    *_, line = read_records(aws, MONITORING_HISTORY_KEY).records
    assert line["promoted"]["to"] == "1.0.1"


def test_a_manual_invocation_may_name_its_days_and_models(aws, models) -> None:
    names = smh_store(aws, models)
    traffic(aws, names, models.smh.metadata.classes, days=2)
    event = {"since": DAY0.isoformat(), "until": (DAY0 + timedelta(days=2)).isoformat(),
             "models": ["etfs/SMH"]}  # fmt: skip
    summary = handler.lambda_handler(event, None)
    assert summary["capture"]["lines"] == 800


def test_bad_thresholds_fail_loudly() -> None:
    with pytest.raises(ValueError, match=r"TICKERSERVE_MONITOR_THRESHOLDS: unknown keys \['psi'\]"):
        handler.MonitorSettings.from_env({ENV_MONITOR_THRESHOLDS: '{"psi": 1}'})
    with pytest.raises(ValueError, match=r"psiWatch \(0\.5\) must be <= psiDrift \(0\.25\)"):
        handler.MonitorSettings.from_env({ENV_MONITOR_THRESHOLDS: '{"psiWatch": 0.5}'})
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\], not 0"):
        handler.MonitorSettings.from_env({ENV_MONITOR_THRESHOLDS: '{"alpha": 0}'})
    with pytest.raises(ValueError, match=r"TICKERSERVE_MONITOR_DAYS='93' must be in \[1, 92\]"):
        handler.MonitorSettings.from_env({ENV_MONITOR_DAYS: "93"})
