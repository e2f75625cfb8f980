"""The monitor function in the serving stack: schedule, alarms, dashboard, IAM, settings."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from infra.constructs import monitor_function as construct
from infra.function_asset import MONITOR_FILES
from tests.infra.conftest import ROOT, Synth, as_list, function_with_handler, resources
from tickerserve.metric_names import MONITOR
from tickerserve.monitor.config import DEFAULT_DAYS, MonitorConfig
from tickerserve.monitor.handler import MonitorSettings
from tickerserve.settings import MONITOR_ENV_NAMES

HANDLER = "tickerserve.monitor.handler.lambda_handler"


def monitor(s: Synth) -> tuple[str, dict]:
    for logical_id, f in resources(s.serving, "AWS::Lambda::Function").items():
        if f["Properties"]["Handler"] == HANDLER:
            return logical_id, f["Properties"]
    raise AssertionError("no monitor function")


def test_a_daily_schedule_invokes_the_monitor_with_its_scheduled_time(dev: Synth):
    (schedule,) = resources(dev.serving, "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "cron(30 0 * * ? *)"
    assert props["State"] == "ENABLED"
    logical_id, _ = monitor(dev)
    assert props["Target"]["Arn"] == {"Fn::GetAtt": [logical_id, "Arn"]}
    assert json.loads(props["Target"]["Input"]) == {
        "scheduled_time": "<aws.scheduler.scheduled-time>"
    }
    assert props["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 2


def test_the_monitor_has_its_own_asset_settings_and_one_run_at_a_time(dev: Synth):
    _, props = monitor(dev)
    assert props["Timeout"] == 900
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["Layers"] == function_with_handler(dev.serving)["Properties"]["Layers"]
    # exactly the names the monitor function reads, and what it reads from them is the
    # runtime's own defaults (monitor/config.json): infra and the function agree
    assert set(props["Environment"]["Variables"]) == set(MONITOR_ENV_NAMES)
    values = props["Environment"]["Variables"]
    settings = MonitorSettings.from_env({k: v for k, v in values.items() if isinstance(v, str)})
    assert settings.days == DEFAULT_DAYS and settings.auto_promote is False
    assert settings.config == MonitorConfig()
    # the command line, the HTTP layer and the pickle loader never ship; the publisher-side
    # library the monitor needs (promotion) does
    assert not [f for f in MONITOR_FILES if f.startswith(("tickerserve/cli/", "tickerserve/http/"))]
    assert "tickerserve/publishing/conversion/pickles.py" not in MONITOR_FILES
    assert "tickerserve/publishing/promotion.py" in MONITOR_FILES


def monitor_alarms(s: Synth) -> dict[str, dict]:
    return {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in resources(s.serving, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == construct.NAMESPACE
    }


def test_alarms_on_drift_and_on_a_recommended_switch_need_no_model_dimension(dev: Synth):
    alarms = monitor_alarms(dev)
    # on the names the monitor emits (the runtime's reading of metric_names.json)
    assert MONITOR.namespace == construct.NAMESPACE
    assert set(alarms) == {
        MONITOR.feature_drift_max, MONITOR.drift_pct, MONITOR.estimated_drift_pct,
        MONITOR.switch_recommended,
    }  # fmt: skip
    assert set(alarms) == {
        "FeatureDriftMax", "DriftPct", "EstimatedDriftPct", "SwitchRecommended",
    }  # fmt: skip
    # the accuracy estimated before outcomes arrive alarms at the same level as the realized
    assert alarms["EstimatedDriftPct"]["Threshold"] == 10
    assert alarms["EstimatedDriftPct"]["ComparisonOperator"] == "GreaterThanThreshold"
    # at the runtime's default thresholds
    assert alarms["FeatureDriftMax"]["Threshold"] == MonitorConfig().psi_drift == 0.25
    assert alarms["DriftPct"]["Threshold"] == MonitorConfig().retrain_drift_pct == 10
    assert alarms["DriftPct"]["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarms["SwitchRecommended"]["Threshold"] == 1
    topic_id = next(iter(resources(dev.serving, "AWS::SNS::Topic")))
    for alarm in alarms.values():
        assert "Dimensions" not in alarm  # the worst over models: new models need no redeploy
        assert alarm["Statistic"] == "Maximum" and alarm["Period"] == 86400
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_the_dashboard_draws_every_model_with_one_search_query_per_figure(dev: Synth):
    (dashboard,) = resources(dev.serving, "AWS::CloudWatch::Dashboard").values()
    # the body is JSON inside a CloudFormation join: drop the escaping to read it
    body = json.dumps(dashboard["Properties"]["DashboardBody"]).replace("\\", "")
    for name in ("FeatureDriftMax", "DriftPct", "ChallengerWinRate", "OutputPsi"):
        search = f"SEARCH('{{{MONITOR.namespace},{MONITOR.model_dimension}}} MetricName=\"{name}\"'"
        assert body.count(search) == 1, name  # one query per figure, not a widget per model
    assert "Monitor alarms" in body
    # the bands are the configured thresholds
    assert bands(dev) == {"drift": 0.25, "retrain": 10, "switch": 0.75}


def bands(s: Synth) -> dict[str, float]:
    """The dashboard's horizontal annotations, by label."""
    (dashboard,) = resources(s.serving, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]
    text = "".join(p for p in parts["Fn::Join"][1] if isinstance(p, str))
    return {
        a["label"]: a["value"]
        for w in json.loads(text)["widgets"]
        for a in w.get("properties", {}).get("annotations", {}).get("horizontal", [])
    }


def test_the_monitor_role_reads_what_it_judges_and_writes_only_its_history_and_salt(dev: Synth):
    _, props = monitor(dev)
    role_id = props["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in resources(dev.serving, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_action: dict[str, list] = {}
    for s in statements:
        for action in as_list(s["Action"]):
            by_action.setdefault(action, []).extend(as_list(s["Resource"]))
    writes = json.dumps(by_action["s3:PutObject"])
    assert "metadata/monitoring_history*" in writes
    assert "asset_registry" not in writes  # auto-promote is off: no registry writes
    # and the secret salt request ids are keyed with before joining (created by its first run)
    assert "/metadata/monitor_salt.json" in writes
    assert len(by_action["s3:PutObject"]) == 2
    assert "metadata/monitoring_history_archive_*" in json.dumps(by_action["s3:DeleteObject"])
    reads = json.dumps(by_action["s3:GetObject"])
    for prefix in ("/*/versions/*", "/*/baselines/*", "/outcomes/*", "/capture/*"):
        assert prefix in reads
    (put_metrics,) = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert put_metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": construct.NAMESPACE}
    }


def test_the_monitor_handler_imports_without_the_command_line_libraries_or_scipy():
    code = (
        "import sys\n"
        "for name in ('typer', 'rich', 'matplotlib', 'sklearn', 'pyarrow', 'joblib', 'scipy'):\n"
        "    sys.modules[name] = None\n"
        "import tickerserve.monitor.handler, tickerserve.monitor.run\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_cdk_json_sets_schedule_window_thresholds_and_auto_promote():
    from tests.infra.conftest import synth

    s = synth(
        {
            "tickerserve:monitor": json.dumps(
                {
                    "schedule": "rate(12 hours)",
                    "days": 3,
                    "psiDrift": 0.3,
                    "retrainDriftPct": 12,
                    "switchWinRate": 0.8,
                    "autoPromote": True,
                }
            )
        }
    )
    (schedule,) = resources(s.serving, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["ScheduleExpression"] == "rate(12 hours)"
    _, props = monitor(s)
    values = props["Environment"]["Variables"]
    assert values["TICKERSERVE_MONITOR_DAYS"] == "3"
    assert values["TICKERSERVE_MONITOR_AUTO_PROMOTE"] == "true"
    assert json.loads(values["TICKERSERVE_MONITOR_THRESHOLDS"])["psiDrift"] == 0.3
    assert monitor_alarms(s)["FeatureDriftMax"]["Threshold"] == 0.3
    assert monitor_alarms(s)["DriftPct"]["Threshold"] == 12
    # the dashboard draws what the alarms use
    assert bands(s) == {"drift": 0.3, "retrain": 12, "switch": 0.8}
    # promoting writes the registry, so only then may the monitor write it
    role_id = props["Role"]["Fn::GetAtt"][0]
    writes = [
        st["Resource"]
        for p in resources(s.serving, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        if st["Action"] == "s3:PutObject"
    ]
    assert "asset_registry.json" in json.dumps(writes)


def test_bad_monitor_settings_are_refused_before_synth():
    import pytest

    from infra.config import ConfigError, load_config

    for bad, message in [
        ({"schedule": "every day"}, "rate(...) or cron(...)"),
        ({"psiWatch": 0.5, "psiDrift": 0.2}, "psiWatch must be <= psiDrift"),
        ({"days": 0}, "days"),
        ({"alpha": 1.5}, "alpha"),
        ({"unknown": 1}, "unknown"),
    ]:
        context = {"tickerserve:monitor": json.dumps(bad)}
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(context.get)
