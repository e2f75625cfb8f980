"""The serving stack: function, layer, least-privilege IAM, API, throttling, alarms."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from infra.constructs.monitoring import NAMESPACE as MONITORED_NAMESPACE
from infra.constructs.monitoring import SERVICE as MONITORED_SERVICE
from infra.runtime_contract import GATEWAY_ERRORS
from tests.infra.conftest import (
    OUTCOMES_HANDLER,
    PREDICTION_HANDLER,
    Synth,
    alias_of,
    api_methods,
    as_list,
    function_with_handler,
    only,
    policy_statements,
    resources,
    synth,
)
from tickerserve.layout import DEFAULT_REGISTRY_KEY, index_key, metadata_key
from tickerserve.serving.observability import NAMESPACE, SERVICE_NAME
from tickerserve.settings import ENV_NAMES
from tickerserve.storage.outcomes import batch_key, parse_outcome

README = Path(__file__).resolve().parents[2] / "README.md"
# Each alarm by its README name and the words of its description.
ALARM_NAMES = {
    "Api5xx": "API returned 5xx",
    "FunctionErrors": "prediction function errors",
    "OutcomesErrors": "outcomes function errors",
    "Throttles": "prediction function throttled",
    "LatencyP99": "API p99 latency",
    "ModelLoadFailures": "model versions failed to load",
    "RegistryFailures": "registry reads failed",
    "ServedLastGood": "answers served from a last good version",
    "RegistryStaleness": "seconds since a sandbox last read the registry",
    "InvalidModelSettings": "per-model settings the registry cannot read",
    "ShadowFailures": "shadow challenger rows that could not be scored",
    "CanaryFallbacks": "canary requests the champion answered instead",
    "CaptureFailures": "capture records that could not be written",
    "CaptureDeliveryFailed": "share of Firehose writes to S3 that succeeded",
    "CaptureDeliveryLate": "age (s) of the oldest record not yet in S3",
    "RequestWarnings": "one model's answers carried request warnings",
}

OUTCOMES_ROUTE = ("POST", "/outcomes")
ROUTES = {
    ("POST", "/predict"),
    ("POST", "/predict/batch"),
    ("GET", "/models"),
    ("GET", "/models/{ticker}"),
    ("GET", "/health"),
    ("POST", "/outcomes"),
}


def function(s: Synth) -> dict:
    return function_with_handler(s.serving)["Properties"]


def env(s: Synth) -> dict[str, str]:
    return function(s)["Environment"]["Variables"]


# --- function -----------------------------------------------------------------------------


def test_function_runs_the_handler_on_python_3_13_with_configured_size(dev: Synth):
    props = function(dev)
    assert props["Runtime"] == "python3.13"
    assert props["Handler"] == "tickerserve.handler.lambda_handler"
    assert props["Architectures"] == ["x86_64"]
    assert props["MemorySize"] == dev.config.memory_mb == 2048
    assert props["Timeout"] == 29
    assert props["EphemeralStorage"] == {"Size": 1024}
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert len(props["Layers"]) == 1


def test_environment_names_are_exactly_what_the_runtime_reads(variant: Synth):
    assert set(env(variant)) == set(ENV_NAMES)


def test_environment_values_come_from_the_config(dev: Synth, prod: Synth):
    values = env(dev)
    assert values["TICKERSERVE_REGISTRY_KEY"] == DEFAULT_REGISTRY_KEY
    assert values["TICKERSERVE_STORE_PATH"] == ""  # S3 in AWS, never a local folder
    assert values["TICKERSERVE_REGISTRY_TTL"] == "60"
    assert values["TICKERSERVE_CACHE_DIR"].startswith("/tmp/")
    assert values["TICKERSERVE_MEMORY_MB"] == "1024"  # half of 2048 MB
    assert values["TICKERSERVE_DISK_MB"] == "768"  # three quarters of 1024 MB of /tmp
    assert values["TICKERSERVE_PRELOAD"] == ""
    assert env(prod)["TICKERSERVE_PRELOAD"] == "stocks/universal"
    assert env(prod)["TICKERSERVE_REGISTRY_TTL"] == "30"


def test_prod_reserves_and_provisions_concurrency_on_the_live_alias(prod: Synth):
    assert function(prod)["ReservedConcurrentExecutions"] == 50
    _, alias = alias_of(prod.serving)
    assert alias["Name"] == "live"
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}


def test_snapstart_and_arm64_when_a_stage_asks_for_them():
    s = synth({
        "tickerserve:snapStart": "true",
        "tickerserve:ephemeralStorageMb": "512",
        "tickerserve:architecture": "arm64",
    })  # fmt: skip
    props = function(s)
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert props["Architectures"] == ["arm64"]
    layer = only(s.serving, "AWS::Lambda::LayerVersion")["Properties"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    assert layer["CompatibleRuntimes"] == ["python3.13"]


def test_function_logs_go_to_its_own_log_group_with_retention(dev: Synth):
    groups = resources(dev.serving, "AWS::Logs::LogGroup")
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {
        14
    }  # the monitor's too
    log_group_ref = function(dev)["LoggingConfig"]["LogGroup"]["Ref"]
    assert log_group_ref in groups


# --- IAM ----------------------------------------------------------------------------------


def function_role_statements(s: Synth, handler: str = PREDICTION_HANDLER) -> list[dict]:
    role_id = function_with_handler(s.serving, handler)["Properties"]["Role"]["Fn::GetAtt"][0]
    role = resources(s.serving, "AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role  # no AWSLambdaBasicExecutionRole
    assert "Policies" not in role
    statements = []
    for policy in resources(s.serving, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def s3_statements(statements: list[dict]) -> list[dict]:
    found = [s for s in statements if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    assert all(s["Effect"] == "Allow" for s in found)
    return found


def test_the_outcomes_function_writes_only_outcomes_and_reads_nothing(dev: Synth):
    statements = function_role_statements(dev, OUTCOMES_HANDLER)
    (put,) = s3_statements(statements)
    # PutObject: under outcomes/ of the model bucket (POST /outcomes), nothing else, and
    # that grant covers the keys the runtime writes (one JSON-lines object per batch).
    assert put["Action"] == "s3:PutObject"
    assert "Condition" not in put
    assert not isinstance(put["Resource"], list)
    assert json.dumps(put["Resource"]).endswith('/outcomes/*"]]}')
    received = "2026-12-02T08:00:00.000000Z"
    outcome = parse_outcome({"request_id": "r-1", "label": "UP"}, received_at=received)
    assert fnmatch.fnmatch(batch_key([outcome], "2026-12-02"), "outcomes/*")
    assert "tickerserve-dev-models-" in json.dumps(put["Resource"])
    others = {a for s in statements if s is not put for a in as_list(s["Action"])}
    assert others == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    props = function_with_handler(dev.serving, OUTCOMES_HANDLER)["Properties"]
    assert set(props["Environment"]["Variables"]) == set(ENV_NAMES)
    assert props["Environment"]["Variables"]["TICKERSERVE_PRELOAD"] == ""
    # The prediction function's code, run through the other entry point
    assert props["Code"] == function(dev)["Code"]


def test_function_reads_only_model_versions_and_the_registry_and_writes_nothing(
    dev: Synth,
):
    statements = function_role_statements(dev)
    s3 = s3_statements(statements)
    # No PutObject: outcomes are written by the outcomes function alone (issue 19)
    assert sorted(s["Action"] for s in s3) == ["s3:GetObject", "s3:ListBucket"]
    (get,) = [s for s in s3 if s["Action"] == "s3:GetObject"]
    (list_,) = [s for s in s3 if s["Action"] == "s3:ListBucket"]
    # GetObject: model artifacts and the registry key, nothing else, unconditionally.
    assert "Condition" not in get
    suffixes = sorted(json.dumps(r)[-40:] for r in get["Resource"])
    assert any('/*/versions/*"' in r for r in suffixes)
    assert any(f'/{DEFAULT_REGISTRY_KEY}"' in r for r in suffixes)
    assert len(suffixes) == 2
    # ListBucket (so a missing key is a 404, not a 403): the bucket itself, not its
    # objects, and only for the same keys GetObject may read.
    bucket_arn = list_["Resource"]
    assert not isinstance(bucket_arn, list)
    assert "/" not in json.dumps(bucket_arn)
    assert list_["Condition"] == {
        "StringLike": {"s3:prefix": ["*/versions/*", DEFAULT_REGISTRY_KEY]}
    }
    # The model's digest index (a pinned version's recorded digest) is one of those keys,
    # and no other key the runtime reads is outside them.
    for key in (index_key("etfs/SMH"), metadata_key("stocks/universal", "1.0.0")):
        assert fnmatch.fnmatchcase(key, "*/versions/*"), key
    # Everything else: writing its own logs, and X-Ray (which has no resource-level ARNs).
    others = {a for s in statements if s not in s3 for a in as_list(s["Action"])}
    assert others == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_existing_bucket_is_read_by_name_and_no_storage_stack_is_made():
    s = synth({"tickerserve:bucketName": "team-models"})
    assert set(s.stacks) == {"Serving"}
    statements = function_role_statements(s)
    (statement,) = [st for st in statements if st["Action"] == "s3:GetObject"]
    assert "team-models/*/versions/*" in json.dumps(statement["Resource"])
    (listing,) = [st for st in statements if st["Action"] == "s3:ListBucket"]
    assert ':s3:::team-models"' in json.dumps(listing["Resource"])  # the bucket, no key
    assert env(s)["TICKERSERVE_BUCKET"] == "team-models"


def test_no_iam_statement_allows_a_wildcard_action(variant: Synth):
    for template in variant.templates.values():
        for statement in policy_statements(template):
            if statement["Effect"] == "Allow":
                assert not any("*" in a for a in as_list(statement["Action"])), statement


# --- API ----------------------------------------------------------------------------------


def test_every_route_has_one_method_and_requires_iam_by_default(dev: Synth):
    methods = api_methods(dev.serving)
    assert set(methods) == ROUTES
    for route, props in methods.items():
        assert props["AuthorizationType"] == "AWS_IAM", route
        assert props.get("ApiKeyRequired") in (None, False), route
        assert props["Integration"]["Type"] == "AWS_PROXY", route


def test_methods_invoke_the_live_alias_and_outcomes_the_outcomes_function(dev: Synth):
    live, _ = alias_of(dev.serving)
    outcomes, _ = alias_of(dev.serving, OUTCOMES_HANDLER)
    for route, props in api_methods(dev.serving).items():
        uri = json.dumps(props["Integration"]["Uri"])
        wanted, other = (outcomes, live) if route == OUTCOMES_ROUTE else (live, outcomes)
        assert wanted in uri and other not in uri, route


def test_api_key_mode_requires_a_key_and_a_usage_plan_and_iam_for_outcomes():
    s = synth({"tickerserve:authMode": "api_key"})
    for route, props in api_methods(s.serving).items():
        if route == OUTCOMES_ROUTE:
            # A key of the stage's usage plan opens every key-required method: outcomes
            # take IAM instead, so a key that may predict cannot write them
            assert props["AuthorizationType"] == "AWS_IAM"
            assert props["ApiKeyRequired"] is False
            continue
        assert props["AuthorizationType"] == "NONE", route
        assert props["ApiKeyRequired"] is True, route
    plan = only(s.serving, "AWS::ApiGateway::UsagePlan")["Properties"]
    assert plan["Throttle"] == {"RateLimit": 20, "BurstLimit": 40}
    s.serving.resource_count_is("AWS::ApiGateway::ApiKey", 1)
    s.serving.resource_count_is("AWS::ApiGateway::UsagePlanKey", 1)
    s.serving.has_output("ApiKeyId", {"Value": Match.any_value()})


def test_no_auth_only_when_the_stage_says_so_and_never_for_outcomes():
    s = synth({"tickerserve:authMode": "none"})
    for route, props in api_methods(s.serving).items():
        expected = "AWS_IAM" if route == OUTCOMES_ROUTE else "NONE"
        assert props["AuthorizationType"] == expected, route
        assert not props.get("ApiKeyRequired")
    s.serving.resource_count_is("AWS::ApiGateway::UsagePlan", 0)


def test_bodies_are_validated_by_the_handler_alone(dev: Synth):
    # The deployed API answers body mistakes with the handler's codes, as the local one does
    dev.serving.resource_count_is("AWS::ApiGateway::RequestValidator", 0)
    dev.serving.resource_count_is("AWS::ApiGateway::Model", 0)
    for route, props in api_methods(dev.serving).items():
        assert "RequestModels" not in props, route
        assert "RequestValidatorId" not in props, route


def test_stage_is_throttled_traced_and_access_logged(dev: Synth, prod: Synth):
    stage = only(dev.serving, "AWS::ApiGateway::Stage")["Properties"]
    assert stage["StageName"] == "dev"
    assert stage["TracingEnabled"] is True
    assert "DestinationArn" in stage["AccessLogSetting"]
    assert json.loads(stage["AccessLogSetting"]["Format"])["requestId"] == "$context.requestId"
    (settings,) = stage["MethodSettings"]
    assert settings["HttpMethod"] == "*" and settings["ResourcePath"] == "/*"
    assert settings["ThrottlingRateLimit"] == 20
    assert settings["ThrottlingBurstLimit"] == 40
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    prod_settings = only(prod.serving, "AWS::ApiGateway::Stage")["Properties"]["MethodSettings"]
    assert prod_settings[0]["ThrottlingRateLimit"] == 100


def test_gateway_errors_use_the_api_error_shape_and_the_contract_codes(dev: Synth):
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources(dev.serving, "AWS::ApiGateway::GatewayResponse").values()
    }
    # Exactly the gateway answers contract.json lists (no body validation: no BAD_REQUEST_BODY)
    assert set(responses) == {e.response_type for e in GATEWAY_ERRORS}
    for error in GATEWAY_ERRORS:
        template = responses[error.response_type]["ResponseTemplates"]["application/json"]
        # API Gateway substitutes $context.error.messageString with a quoted JSON string.
        body = json.loads(template.replace("$context.error.messageString", '"Too Many Requests"'))
        assert body == {"error": {"code": error.code, "message": "Too Many Requests"}}
    # Above 10 MB the gateway's 413 carries the handler's own code for a body over 6 MiB
    too_large = next(e for e in GATEWAY_ERRORS if e.response_type == "REQUEST_TOO_LARGE")
    assert (too_large.status, too_large.code) == (413, "body_too_large")


def test_waf_is_attached_only_where_the_stage_enables_it(dev: Synth, prod: Synth):
    dev.serving.resource_count_is("AWS::WAFv2::WebACL", 0)
    acl = only(prod.serving, "AWS::WAFv2::WebACL")["Properties"]
    assert acl["Scope"] == "REGIONAL"
    assert acl["Rules"][0]["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    prod.serving.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)


# --- alarms and outputs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "statistic", "threshold"),
    [
        ("5XXError", "Sum", 1),
        ("Errors", "Sum", 1),
        ("Throttles", "Sum", 1),
        ("Latency", "p99", 3000),
    ],
)
def test_alarms_notify_the_alarm_topic(dev: Synth, metric, statistic, threshold):
    alarms = [
        a["Properties"] for a in resources(dev.serving, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric
        and not a["Properties"]["AlarmDescription"].startswith("tickerserve monitor")
        and "outcomes function" not in a["Properties"]["AlarmDescription"]
    ]  # fmt: skip
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm.get("Statistic", alarm.get("ExtendedStatistic")) == statistic
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    topic_id = next(iter(resources(dev.serving, "AWS::SNS::Topic")))
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_outcomes_function_s_errors_are_alarmed(dev: Synth):
    (alarm,) = [
        a["Properties"] for a in resources(dev.serving, "AWS::CloudWatch::Alarm").values()
        if "outcomes function" in a["Properties"]["AlarmDescription"]
    ]  # fmt: skip
    outcomes_id = [
        logical_id
        for logical_id, f in resources(dev.serving, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == OUTCOMES_HANDLER
    ]
    assert alarm["MetricName"] == "Errors" and alarm["Threshold"] == 1
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": outcomes_id[0]}}]


@pytest.mark.parametrize(
    ("metric", "statistic", "threshold"),
    [
        ("ModelLoadFailures", "Sum", 1),
        ("RegistryFailures", "Sum", 3),
        ("ServedLastGood", "Sum", 1),
        ("RegistryStaleness", "Maximum", 300),
        ("InvalidModelSettings", "Maximum", 1),
    ],
)
def test_what_warm_sandboxes_hide_is_alarmed(dev: Synth, metric, statistic, threshold):
    # The function's own metrics, as observability.py emits them: namespace, service, and the
    # function's name as a dimension (so each stage's alarms watch only its own function)
    (alarm,) = [
        a["Properties"]
        for a in resources(dev.serving, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric
    ]
    assert alarm["Namespace"] == NAMESPACE == MONITORED_NAMESPACE
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions["service"] == SERVICE_NAME == MONITORED_SERVICE
    function_id = next(iter(resources(dev.serving, "AWS::Lambda::Function")))
    assert dimensions["function"] == {"Ref": function_id}
    assert (alarm["Statistic"], alarm["Threshold"]) == (statistic, threshold)
    assert alarm["TreatMissingData"] == "notBreaching"
    topic_id = next(iter(resources(dev.serving, "AWS::SNS::Topic")))
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def warnings_alarm(s: Synth) -> dict:
    (alarm,) = [
        a["Properties"]
        for a in resources(s.serving, "AWS::CloudWatch::Alarm").values()
        if "request warnings" in a["Properties"]["AlarmDescription"]
    ]
    return alarm


def test_each_model_s_request_warnings_are_alarmed_on_their_own(dev: Synth, prod: Synth):
    # One Metrics Insights query over this function's per-model series, grouped by model:
    # the alarm judges every model's series against the threshold (models published later
    # included), as observability.count_for_model emits them
    alarm = warnings_alarm(dev)
    (query,) = alarm["Metrics"]
    expression = json.dumps(query["Expression"])
    assert 'SELECT SUM(\\"RequestWarnings\\")' in expression
    assert f'FROM SCHEMA(\\"{NAMESPACE}\\"' in expression
    assert 'GROUP BY \\"Model\\"' in expression
    function_id = next(iter(resources(dev.serving, "AWS::Lambda::Function")))
    assert {"Ref": function_id} in query["Expression"]["Fn::Join"][1]  # this stage's function
    assert query["Period"] == 300
    assert (alarm["Threshold"], alarm["TreatMissingData"]) == (100, "notBreaching")
    topic_id = next(iter(resources(dev.serving, "AWS::SNS::Topic")))
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    # the threshold is cdk.json's (alarms.requestWarnings) where a stage sets it
    assert warnings_alarm(prod)["Threshold"] == 50


def test_the_dashboard_shows_the_hidden_failures(dev: Synth):
    body = json.dumps(only(dev.serving, "AWS::CloudWatch::Dashboard")["Properties"])
    for metric in ("ModelLoadFailures", "RegistryFailures", "ServedLastGood", "RegistryStaleness",
                   "InvalidModelSettings"):  # fmt: skip
        assert metric in body
    assert "Request warnings per model" in body and "RequestWarnings" in body


def test_every_alarm_has_a_runbook_line_in_the_readme(dev: Synth):
    runbook = README.read_text().split("### Alarms and what to do", 1)[1].split("\n## ", 1)[0]
    alarms = resources(dev.serving, "AWS::CloudWatch::Alarm").values()
    described = [a["Properties"]["AlarmDescription"] for a in alarms]
    named = [n for d in described for n, phrase in ALARM_NAMES.items() if phrase in d]
    assert sorted(named) == sorted(ALARM_NAMES)  # each alarm is one of these, and all exist
    for name in named:
        assert f"| `{name}` |" in runbook, name


def test_alarm_thresholds_follow_the_stage(prod: Synth):
    latency = [
        a["Properties"] for a in resources(prod.serving, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "Latency"
    ]  # fmt: skip
    assert latency[0]["Threshold"] == 1500


def test_alarm_topic_is_encrypted_and_a_dashboard_exists(dev: Synth):
    topic = only(dev.serving, "AWS::SNS::Topic")["Properties"]
    assert "KmsMasterKeyId" in topic
    key = only(dev.serving, "AWS::KMS::Key")["Properties"]
    assert key["EnableKeyRotation"] is True
    dev.serving.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_outputs_name_the_api_url_function_and_bucket(dev: Synth):
    outputs = dev.serving.find_outputs("*")
    assert {
        "ApiUrl", "FunctionName", "BucketName", "AlarmTopicArn", "OutcomesUrl",
        "OutcomesFunctionName",
    } <= set(outputs)  # fmt: skip
    # Behind API Gateway, outcomes are a route of the same API
    assert outputs["OutcomesUrl"]["Value"] == outputs["ApiUrl"]["Value"]
    outcomes_id = [
        logical_id
        for logical_id, f in resources(dev.serving, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == OUTCOMES_HANDLER
    ]
    assert outputs["OutcomesFunctionName"]["Value"] == {"Ref": outcomes_id[0]}
    assert "MonitorFunctionName" in outputs  # make e2e invokes the scheduled monitor by name
    assert not any(name.startswith("ApiEndpoint") for name in outputs)
