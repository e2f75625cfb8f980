"""The monitor function in the serving stack: schedule, alarms, dashboard, IAM, settings."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from infra.constructs import monitor_function as construct
from infra.function_asset import MONITOR_FILES
from tests.infra.conftest import ROOT, Synth, as_list, function_with_handler, resources
from tickerserve.monitor import cloudwatch
from tickerserve.monitor.handler import ENV_NAMES, MonitorSettings

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
    assert set(props["Environment"]["Variables"]) == set(ENV_NAMES)
    values = props["Environment"]["Variables"]
    settings = MonitorSettings.from_env({k: v for k, v in values.items() if isinstance(v, str)})
    assert settings.days == 7 and settings.auto_promote is False
    assert settings.config.psi.drift == 0.25 and settings.config.rule.switch_win_rate == 0.75
    # the command line, the HTTP layer and the pickle loader never ship; the publisher-side
    # library the monitor needs (promotion) does
    assert not [f for f in MONITOR_FILES if f.startswith(("tickerserve/cli/", "tickerserve/http/"))]
    assert "tickerserve/publishing/conversion/pickles.py" not in MONITOR_FILES
    assert "tickerserve/publishing/promotion.py" in MONITOR_FILES


def test_metric_names_agree_with_what_the_monitor_emits():
    assert construct.NAMESPACE == cloudwatch.NAMESPACE
    assert construct.DIMENSION == cloudwatch.DIMENSION
    assert construct.METRIC_NAMES == cloudwatch.METRIC_NAMES


def monitor_alarms(s: Synth) -> dict[str, dict]:
    return {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in resources(s.serving, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == construct.NAMESPACE
    }


def test_alarms_on_drift_and_on_a_recommended_switch_need_no_model_dimension(dev: Synth):
    alarms = monitor_alarms(dev)
    assert set(alarms) == {"FeatureDriftMax", "DriftPct", "SwitchRecommended"}
    assert alarms["FeatureDriftMax"]["Threshold"] == 0.25
    assert alarms["DriftPct"]["Threshold"] == 10
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
        search = f"SEARCH('{{{construct.NAMESPACE},{construct.DIMENSION}}} MetricName=\"{name}\"'"
        assert body.count(search) == 1, name  # one query per figure, not a widget per model
    assert "Monitor alarms" in body


def test_the_monitor_role_reads_what_it_judges_and_writes_only_its_history(dev: Synth):
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
    assert len(by_action["s3:PutObject"]) == 1
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
                {"schedule": "rate(12 hours)", "days": 3, "psiDrift": 0.3, "autoPromote": True}
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
