"""The capture path in the templates: subscription filter -> Firehose (decompress, extract the
message, partition by the record's own day) -> the capture bucket; Glue table and Athena."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from tests.infra.conftest import Synth, function_with_handler, only, resources, synth
from tickerserve.layout import CAPTURE_KIND

RECORD_FIELDS = [
    "kind", "v", "time", "request_id", "source", "ticker", "signal", "timeframe", "model",
    "version", "alias", "role", "task", "features", "output", "challengers", "latency_us",
    "warnings",
]  # fmt: skip


def capture_bucket(s: Synth) -> dict[str, Any]:
    (bucket,) = [
        b for b in resources(s.storage, "AWS::S3::Bucket").values()
        if "-capture-" in json.dumps(b["Properties"].get("BucketName"))
    ]  # fmt: skip
    return bucket


def stream(s: Synth) -> dict[str, Any]:
    return only(s.serving, "AWS::KinesisFirehose::DeliveryStream")["Properties"]


def role_statements(s: Synth, role_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in resources(s.serving, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


# --- storage: bucket, Glue table, Athena workgroup ---------------------------------------------


def test_the_capture_bucket_is_encrypted_private_logged_and_retained(dev: Synth):
    bucket = capture_bucket(dev)
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "capture/"
    bucket_id = next(k for k, v in resources(dev.storage, "AWS::S3::Bucket").items() if v == bucket)
    (policy,) = [
        p for p in resources(dev.storage, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]  # fmt: skip
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"]["Bool"] == {"aws:SecureTransport": "false"}
        for s in statements if "Bool" in s.get("Condition", {})
    )  # fmt: skip


def test_captured_records_expire_after_the_retention_period(dev: Synth):
    rules = {
        r["Id"]: r for r in capture_bucket(dev)["Properties"]["LifecycleConfiguration"]["Rules"]
    }
    assert rules["capture"]["Prefix"] == "capture/"
    assert rules["capture"]["ExpirationInDays"] == 90
    assert rules["errors"]["ExpirationInDays"] == 90
    assert rules["results"]["Prefix"] == "athena-results/"
    assert rules["results"]["ExpirationInDays"] <= 30


def test_the_glue_table_projects_dt_over_the_capture_prefix(dev: Synth):
    table = only(dev.storage, "AWS::Glue::Table")["Properties"]
    database = only(dev.storage, "AWS::Glue::Database")["Properties"]
    assert table["DatabaseName"] == database["DatabaseInput"]["Name"] == "tickerserve_dev"
    spec = table["TableInput"]
    assert spec["Name"] == "capture"
    assert spec["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    params = spec["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.dt.type"] == "date"
    assert params["projection.dt.format"] == "yyyy-MM-dd"
    assert params["projection.dt.range"].endswith(",NOW")
    assert json.dumps(params["storage.location.template"]).endswith('/capture/dt=${dt}/"]]}')
    storage = spec["StorageDescriptor"]
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert json.dumps(storage["Location"]).endswith('/capture/"]]}')
    # Every field of the capture record is a column; the model is one (not a path segment)
    assert [c["Name"] for c in storage["Columns"]] == RECORD_FIELDS
    types = {c["Name"]: c["Type"] for c in storage["Columns"]}
    assert types["features"] == "map<string,double>"
    assert types["output"].startswith("struct<label:string,probabilities:map<string,double>")
    assert "value:double" in types["output"]
    # an answer's warnings, queryable per feature and code (UNNEST)
    assert types["warnings"].startswith("array<struct<feature:string,code:string,value:double")


def test_the_athena_workgroup_enforces_its_own_encrypted_results_location(dev: Synth):
    workgroup = only(dev.storage, "AWS::Athena::WorkGroup")["Properties"]
    config = workgroup["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    result = config["ResultConfiguration"]
    assert json.dumps(result["OutputLocation"]).endswith('/athena-results/"]]}')
    assert result["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    assert config["BytesScannedCutoffPerQuery"] > 0
    dev.storage.has_output("CaptureBucketName", {"Value": Match.any_value()})


# --- serving: subscription filter and delivery stream -----------------------------------------


def test_the_subscription_filter_sends_only_capture_lines_of_the_function_to_firehose(dev: Synth):
    subscription = only(dev.serving, "AWS::Logs::SubscriptionFilter")["Properties"]
    assert subscription["FilterPattern"] == f'{{ $.kind = "{CAPTURE_KIND}" }}'
    function = function_with_handler(dev.serving)["Properties"]
    assert subscription["LogGroupName"] == function["LoggingConfig"]["LogGroup"]
    stream_id = next(iter(resources(dev.serving, "AWS::KinesisFirehose::DeliveryStream")))
    assert subscription["DestinationArn"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    assert function["Environment"]["Variables"]["TICKERSERVE_CAPTURE"] == "on"


def test_the_delivery_stream_decompresses_extracts_and_partitions_by_the_records_day(dev: Synth):
    props = stream(dev)
    assert props["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    s3 = props["ExtendedS3DestinationConfiguration"]
    processors = s3["ProcessingConfiguration"]["Processors"]
    assert [p["Type"] for p in processors] == [
        "Decompression", "CloudWatchLogProcessing", "MetadataExtraction",
    ]  # fmt: skip
    params = [
        {x["ParameterName"]: x["ParameterValue"] for x in p["Parameters"]} for p in processors
    ]
    assert params[1] == {"DataMessageExtraction": "true"}
    assert params[2]["MetadataExtractionQuery"] == '{"dt":.time[0:10]}'
    assert s3["DynamicPartitioningConfiguration"] == {"Enabled": True}
    assert s3["Prefix"] == "capture/dt=!{partitionKeyFromQuery:dt}/"
    assert s3["ErrorOutputPrefix"].startswith("capture-errors/")
    assert s3["CompressionFormat"] == "GZIP"
    assert s3["FileExtension"] == ".jsonl.gz"
    # Into the storage stack's capture bucket (found by its fixed name)
    name = capture_bucket(dev)["Properties"]["BucketName"]["Fn::Join"][1]
    arn = s3["BucketARN"]["Fn::Join"][1]
    assert arn[2:] == [f":s3:::{name[0]}", *name[1:]]


def test_firehose_may_only_write_under_its_prefixes_and_never_delete(dev: Synth):
    role_id = stream(dev)["ExtendedS3DestinationConfiguration"]["RoleARN"]["Fn::GetAtt"][0]
    statements = role_statements(dev, role_id)
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "s3:PutObject", "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:ListBucket",
        "s3:ListBucketMultipartUploads", "logs:PutLogEvents",
    }  # fmt: skip
    (put,) = [s for s in statements if "s3:PutObject" in s["Action"]]
    targets = sorted(json.dumps(r) for r in put["Resource"])
    assert targets[0].endswith('/capture-errors/*"]]}') and targets[1].endswith('/capture/*"]]}')


def test_without_a_storage_stack_there_is_no_capture_pipeline():
    s = synth({"tickerserve:bucketName": "team-models"})
    for type_ in ("AWS::KinesisFirehose::DeliveryStream", "AWS::Logs::SubscriptionFilter"):
        s.serving.resource_count_is(type_, 0)
    function = function_with_handler(s.serving)["Properties"]
    assert function["Environment"]["Variables"]["TICKERSERVE_CAPTURE"] == "off"


def test_retention_and_buffering_follow_the_config():
    s = synth({"tickerserve:capture": '{"retentionDays": 30, "bufferSeconds": 60}'})
    rules = {r["Id"]: r for r in capture_bucket(s)["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["capture"]["ExpirationInDays"] == 30
    hints = stream(s)["ExtendedS3DestinationConfiguration"]["BufferingHints"]
    assert hints == {"IntervalInSeconds": 60, "SizeInMBs": 64}


def test_capture_switched_off_deploys_no_pipeline_and_no_capture_bucket():
    s = synth({"tickerserve:capture": '{"enabled": false}'})
    for type_ in ("AWS::KinesisFirehose::DeliveryStream", "AWS::Logs::SubscriptionFilter"):
        s.serving.resource_count_is(type_, 0)
    for type_ in ("AWS::Glue::Table", "AWS::Athena::WorkGroup"):
        s.storage.resource_count_is(type_, 0)
    assert len(resources(s.storage, "AWS::S3::Bucket")) == 2  # models and access logs
    function = function_with_handler(s.serving)["Properties"]
    assert function["Environment"]["Variables"]["TICKERSERVE_CAPTURE"] == "off"


def test_the_monitor_reads_deployed_capture_from_the_capture_bucket(dev: Synth):
    monitor = function_with_handler(dev.serving, "tickerserve.monitor.handler.lambda_handler")
    bucket = monitor["Properties"]["Environment"]["Variables"]["TICKERSERVE_CAPTURE_BUCKET"]
    assert "tickerserve-dev-capture-" in json.dumps(bucket)


# --- alarms and dashboard: shadow, canary, capture and its delivery ---------------------------

WATCHED = ("ShadowFailures", "CanaryFallbacks", "CaptureFailures")


def alarms_by_metric(s: Synth) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in resources(s.serving, "AWS::CloudWatch::Alarm").values()
        if "MetricName" in a["Properties"]
    }


def test_shadow_canary_and_capture_failures_alarm_on_the_functions_own_metrics(dev: Synth):
    from tickerserve.serving.observability import NAMESPACE, SERVICE_NAME

    alarms = alarms_by_metric(dev)
    functions = resources(dev.serving, "AWS::Lambda::Function")
    prediction = function_with_handler(dev.serving)
    function_id = next(k for k, v in functions.items() if v == prediction)
    topic = only(dev.serving, "AWS::SNS::Topic")
    topic_id = next(k for k, v in resources(dev.serving, "AWS::SNS::Topic").items() if v == topic)
    for name in WATCHED:
        alarm = alarms[name]
        # The namespace and dimensions the runtime emits them under (service and function)
        assert alarm["Namespace"] == NAMESPACE
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions == {"service": SERVICE_NAME, "function": {"Ref": function_id}}
        assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic_id}]


def test_capture_delivery_alarms_on_failed_writes_and_late_records(dev: Synth):
    alarms = alarms_by_metric(dev)
    stream_id = next(iter(resources(dev.serving, "AWS::KinesisFirehose::DeliveryStream")))
    failed, late = alarms["DeliveryToS3.Success"], alarms["DeliveryToS3.DataFreshness"]
    for alarm in (failed, late):
        assert alarm["Namespace"] == "AWS/Firehose"
        assert alarm["Dimensions"] == [{"Name": "DeliveryStreamName", "Value": {"Ref": stream_id}}]
    assert (failed["Statistic"], failed["ComparisonOperator"], failed["Threshold"]) == (
        "Minimum", "LessThanThreshold", 1,
    )  # fmt: skip
    # Twice the 300 s buffer, and no less than Firehose's 15-minute limit
    assert (late["Statistic"], late["Threshold"]) == ("Maximum", 900)


def test_the_thresholds_follow_the_config_and_capture_off_keeps_the_function_alarms():
    s = synth({
        "tickerserve:alarms": '{"shadowFailures": 25, "canaryFallbacks": 3}',
        "tickerserve:capture": '{"bufferSeconds": 600}',
    })  # fmt: skip
    alarms = alarms_by_metric(s)
    assert [alarms[n]["Threshold"] for n in WATCHED] == [25, 3, 1]
    assert alarms["DeliveryToS3.DataFreshness"]["Threshold"] == 1200
    off = alarms_by_metric(synth({"tickerserve:capture": '{"enabled": false}'}))
    assert set(WATCHED) <= set(off)
    assert not {"DeliveryToS3.Success", "DeliveryToS3.DataFreshness"} & set(off)


def test_the_dashboard_shows_shadow_canary_and_capture(dev: Synth):
    body = json.dumps(only(dev.serving, "AWS::CloudWatch::Dashboard")["Properties"])
    assert "Shadow, canary and capture" in body
    assert all(name in body for name in (*WATCHED, "DeliveryToS3.DataFreshness"))
