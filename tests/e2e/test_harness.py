"""make e2e's own parts, checked without an AWS account: what it says without credentials,
the commands it runs, the two caller roles, and removing what cdk destroy keeps (moto)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.e2e.__main__ import NO_CREDENTIALS
from tests.e2e.aws import (
    Resource,
    Stage,
    aws_target_from_env,
    caller_policies,
    create_caller_roles,
    delete_caller_roles,
    delete_retained,
    new_stage,
    retained_resources,
)
from tests.e2e.targets import ROOT

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account


def without_credentials(home: Path) -> dict[str, str]:
    """An environment where botocore finds no credentials at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(home),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_without_credentials_it_says_so_in_one_line_and_exits_0(tmp_path: Path):
    # When make e2e's runner starts where there are no AWS credentials
    result = subprocess.run(
        [sys.executable, "-m", "tests.e2e"],
        cwd=ROOT,
        env=without_credentials(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it deploys nothing, says why in one line, and succeeds
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [NO_CREDENTIALS]
    assert result.stderr == ""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_e2e_runs_the_runner_and_keep_is_passed_on():
    def planned(*variables: str) -> str:
        result = subprocess.run(
            ["make", "-n", "e2e", *variables], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return next(line for line in result.stdout.splitlines() if "tests.e2e" in line)

    assert planned().split()[1:] == ["-m", "tests.e2e"]
    assert planned("KEEP=1").split()[1:] == ["-m", "tests.e2e", "--keep"]


def test_a_stage_is_named_within_the_limit_and_deployed_like_the_e2e_entry(tmp_path: Path):
    name = new_stage()
    assert name.startswith("e2e-") and len(name) == 12 and name != new_stage()
    stage = Stage(name, REGION, ACCOUNT, tmp_path)
    for command in (stage.bootstrap_command(), stage.deploy_command(), stage.destroy_command()):
        assert command[:3] == ["npx", "cdk", command[2]]
        assert f"tickerserve:stage={name}" in command
        assert "tickerserve:settingsFrom=e2e" in command
    assert "--require-approval" in stage.deploy_command()
    assert "--force" in stage.destroy_command()  # it is the runner's own stage


STACK_TEMPLATE = {
    "Resources": {
        "Models": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "Properties": {"VersioningConfiguration": {"Status": "Enabled"}},
        },
        "AccessLogs": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
        "Scratch": {"Type": "AWS::S3::Bucket"},  # deleted by the stack itself
        "Logs": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Retain",
            "Properties": {"LogGroupName": "/aws/lambda/tickerserve-e2e-test"},
        },
    }
}


@mock_aws
def test_what_cdk_destroy_keeps_is_found_first_and_removed_after():
    # Given a deployed stack with retained buckets (one versioned, with versions and delete
    # markers) and a retained log group
    session = boto3.Session(region_name=REGION)
    cloudformation = session.client("cloudformation")
    cloudformation.create_stack(StackName="Tickerserve-e2e-x-Storage",
                                TemplateBody=json.dumps(STACK_TEMPLATE))  # fmt: skip
    s3 = session.client("s3")
    stack = ["Tickerserve-e2e-x-Storage"]
    buckets = {r.physical_id for r in retained_resources(cloudformation, stack)
               if r.type == "AWS::S3::Bucket"}  # fmt: skip
    models = next(b for b in buckets if "models" in b.lower())
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket=models, Key="metadata/asset_registry.json", Body=body)
    s3.delete_object(Bucket=models, Key="metadata/asset_registry.json")
    # When the runner lists what is retained (before destroy) and then removes it
    kept = retained_resources(cloudformation, ["Tickerserve-e2e-x-Storage", "gone-stack"])
    assert sorted(r.type for r in kept) == [
        "AWS::Logs::LogGroup",
        "AWS::S3::Bucket",
        "AWS::S3::Bucket",
    ]
    cleanup = delete_retained(session.client, kept)
    # Then nothing is left: the buckets with every version, the log group
    assert cleanup.left == [] and cleanup.kept == []
    remaining = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not (buckets & remaining)
    groups = session.client("logs").describe_log_groups()["logGroups"]
    assert "/aws/lambda/tickerserve-e2e-test" not in {g["logGroupName"] for g in groups}


@mock_aws
def test_keys_are_scheduled_shared_roles_kept_and_the_rest_reported():
    # Given what the serving stack retains besides buckets
    session = boto3.Session(region_name=REGION)
    key = session.client("kms").create_key()["KeyMetadata"]["KeyId"]
    cleanup = delete_retained(
        session.client,
        [
            Resource("s", "AWS::KMS::Key", key),
            Resource("s", "AWS::IAM::Role", "Tickerserve-e2e-x-ApiCloudWatchRole"),
            Resource("s", "AWS::Logs::LogStream", "firehose-errors"),
            Resource("s", "AWS::SQS::Queue", "q-1"),
            Resource("s", "AWS::S3::Bucket", "never-made"),
        ],
    )
    # Then the key is scheduled for deletion, the account-wide role stays and is named, a
    # type it does not know is reported, and what is already gone is not
    state = session.client("kms").describe_key(KeyId=key)["KeyMetadata"]["KeyState"]
    assert state == "PendingDeletion"
    assert cleanup.kept == [
        "AWS::IAM::Role Tickerserve-e2e-x-ApiCloudWatchRole (API Gateway's account-wide "
        "logging role)"
    ]
    assert cleanup.left == ["AWS::SQS::Queue q-1: delete it by hand"]


REST_OUTPUTS = {
    "ApiUrl": "https://a1b2c3.execute-api.us-east-1.amazonaws.com/e2e-x/",
    "SigningService": "execute-api",
    "FunctionName": "tickerserve-e2e-x-predict",
    "BucketName": "tickerserve-e2e-x-models",
    "CaptureBucketName": "tickerserve-e2e-x-capture",
    "MonitorFunctionName": "tickerserve-e2e-x-monitor",
}


def test_the_predict_role_may_not_write_outcomes_and_the_outcomes_role_may_only_that():
    api = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:a1b2c3/*"
    policies = caller_policies(REST_OUTPUTS, REGION, ACCOUNT)
    assert policies["outcomes"] == [f"{api}/POST/outcomes"]
    assert f"{api}/POST/predict" in policies["predict"]
    assert not any("outcomes" in arn for arn in policies["predict"])
    # A function URL stage: each role invokes its own function (issue 19's outcomes function)
    url = {**REST_OUTPUTS, "SigningService": "lambda", "OutcomesFunctionName": "ts-outcomes"}
    by_url = caller_policies(url, REGION, ACCOUNT)
    assert by_url["outcomes"][0].endswith(":function:ts-outcomes")
    assert by_url["predict"][0].endswith(":function:tickerserve-e2e-x-predict")


@mock_aws
def test_the_target_calls_as_two_principals_from_the_stage_outputs(tmp_path: Path):
    # Given a deployed stage's outputs and the two roles the runner creates
    stage = Stage("e2e-x", REGION, ACCOUNT, tmp_path)
    stage.outputs_file.write_text(json.dumps({stage.serving_stack: REST_OUTPUTS}))
    iam = boto3.client("iam")
    roles = create_caller_roles(iam, stage, stage.outputs())
    env: dict[str, Any] = {"E2E_STAGE": stage.name, "E2E_REGION": REGION, "E2E_ACCOUNT": ACCOUNT,
                           "E2E_WORKDIR": str(tmp_path), "E2E_PREDICT_ROLE": roles["predict"],
                           "E2E_OUTCOMES_ROLE": roles["outcomes"]}  # fmt: skip
    # When the test session builds its target
    target = aws_target_from_env(env)
    # Then predict and outcomes are two principals calling the stage's URL
    assert target.same_principal is None
    assert target.predict.credentials and target.outcomes.credentials
    assert target.predict.credentials.access_key != target.outcomes.credentials.access_key
    assert target.predict.base_url == REST_OUTPUTS["ApiUrl"]
    assert target.cli_target == ["--bucket", "tickerserve-e2e-x-models", "--region", REGION]
    # ... and without roles it is one principal, and says why
    one = aws_target_from_env({k: v for k, v in env.items() if not k.endswith("_ROLE")})
    assert one.same_principal == "no caller roles were created"
    # When the runner tears down, the roles are gone
    delete_caller_roles(iam, stage)
    assert not [r for r in iam.list_roles()["Roles"] if stage.name in r["RoleName"]]
