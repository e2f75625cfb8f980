"""A throw-away stage in a real AWS account for ``make e2e``: deploy it, call it as two
principals, and remove everything it made, retained buckets included.

Only ``make e2e`` (``python -m tests.e2e``) uses this with real credentials; the test suite
checks these pieces against moto and never reaches AWS.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.credentials import Credentials

from tests.e2e.client import Caller
from tests.e2e.targets import Target, Unavailable

STAGE_PREFIX = "e2e-"
SETTINGS_FROM = "e2e"  # the cdk.json entry a throw-away stage is deployed like
RETAINED = ("Retain", "RetainExceptOnCreate")
# Firehose buffers up to bufferSeconds (60 in the e2e entry) after CloudWatch Logs hands the
# records over; Athena reads the same objects.
CAPTURE_TIMEOUT = 600.0
ROLE_PROPAGATION_SECONDS = 90.0


def new_stage() -> str:
    """``e2e-`` and 8 random hex digits: 12 characters, the longest stage name allowed."""
    return STAGE_PREFIX + secrets.token_hex(4)


@dataclass(frozen=True)
class Stage:
    name: str
    region: str
    account: str
    workdir: Path

    @property
    def serving_stack(self) -> str:
        return f"Tickerserve-{self.name}-Serving"

    @property
    def storage_stack(self) -> str:
        return f"Tickerserve-{self.name}-Storage"

    @property
    def outputs_file(self) -> Path:
        return self.workdir / "cdk-outputs.json"

    def context(self) -> list[str]:
        settings = f"tickerserve:settingsFrom={SETTINGS_FROM}"
        return ["-c", f"tickerserve:stage={self.name}", "-c", settings]

    def bootstrap_command(self) -> list[str]:
        """Once per account and region (a no-op when done already)."""
        return [
            "npx",
            "cdk",
            "bootstrap",
            *self.context(),
            "--output",
            str(self.workdir / "cdk.out"),
        ]

    def deploy_command(self) -> list[str]:
        """Deploys both stacks; nothing to approve (the stage is the runner's own)."""
        return [
            "npx", "cdk", "deploy", "--all", *self.context(), "--require-approval", "never",
            "--outputs-file", str(self.outputs_file), "--output", str(self.workdir / "cdk.out"),
        ]  # fmt: skip

    def destroy_command(self) -> list[str]:
        return [
            "npx", "cdk", "destroy", "--all", "--force", *self.context(),
            "--output", str(self.workdir / "cdk.out"),
        ]  # fmt: skip

    def outputs(self) -> dict[str, str]:
        """Both stacks' outputs in one mapping (the serving stack's win on a shared name)."""
        data = json.loads(self.outputs_file.read_text())
        merged: dict[str, str] = {}
        for stack in (self.storage_stack, self.serving_stack):
            merged.update(data.get(stack, {}))
        return merged


# -- what survives `cdk destroy` -----------------------------------------------------------
@dataclass(frozen=True)
class Resource:
    stack: str
    type: str
    physical_id: str


def retained_resources(cloudformation: Any, stacks: list[str]) -> list[Resource]:
    """The resources of ``stacks`` that ``cdk destroy`` leaves behind (DeletionPolicy Retain):
    listed before the destroy, removed after it."""
    found = []
    for stack in stacks:
        try:
            template = cloudformation.get_template(StackName=stack)["TemplateBody"]
        except cloudformation.exceptions.ClientError:
            continue  # never deployed, or already gone
        body = json.loads(template) if isinstance(template, str) else template
        retained = {
            logical
            for logical, spec in body.get("Resources", {}).items()
            if spec.get("DeletionPolicy") in RETAINED
        }
        pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
        for page in pages:
            for item in page["StackResourceSummaries"]:
                if item["LogicalResourceId"] in retained and item.get("PhysicalResourceId"):
                    found.append(Resource(stack, item["ResourceType"], item["PhysicalResourceId"]))
    return found


def empty_and_delete_bucket(s3: Any, bucket: str) -> None:
    """Every object version and delete marker, then the bucket (versioned buckets included)."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    for page in pages:
        items = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(items), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": items[start : start + 1000]})
    s3.delete_bucket(Bucket=bucket)


# Retained on purpose and left in place: API Gateway's CloudWatch Logs role is an account-wide
# setting (AWS::ApiGateway::Account) shared by every REST API in the region.
ACCOUNT_WIDE = ("AWS::IAM::Role", "AWS::ApiGateway::Account")
# Removed with what contains them.
CONTAINED = ("AWS::Logs::LogStream",)
KMS_PENDING_DAYS = 7  # the shortest wait AWS allows before a key is deleted


@dataclass
class Cleanup:
    left: list[str]  # still there, with the reason
    kept: list[str]  # left in place on purpose


def delete_retained(clients: Callable[..., Any], resources: list[Resource]) -> Cleanup:
    """Delete what ``cdk destroy`` kept: buckets (every version), log groups, KMS keys
    (scheduled); what is shared account-wide stays, and is named."""
    cleanup = Cleanup([], [])
    # Buckets that receive access logs go last: deleting the others may still write to them.
    ordered = sorted(resources, key=lambda r: "access" in r.physical_id.lower())
    for resource in ordered:
        what = f"{resource.type} {resource.physical_id}"
        if resource.type in CONTAINED:
            continue
        if resource.type in ACCOUNT_WIDE:
            cleanup.kept.append(f"{what} (API Gateway's account-wide logging role)")
            continue
        try:
            if resource.type == "AWS::S3::Bucket":
                empty_and_delete_bucket(clients("s3"), resource.physical_id)
            elif resource.type == "AWS::Logs::LogGroup":
                clients("logs").delete_log_group(logGroupName=resource.physical_id)
            elif resource.type == "AWS::KMS::Key":
                clients("kms").schedule_key_deletion(
                    KeyId=resource.physical_id, PendingWindowInDays=KMS_PENDING_DAYS
                )
            else:
                cleanup.left.append(f"{what}: delete it by hand")
        except Exception as exc:  # keep going: report every leftover, not the first
            if "NoSuch" in str(exc) or "NotFound" in str(exc):
                continue
            cleanup.left.append(f"{what}: {exc}")
    return cleanup


# -- two callers ---------------------------------------------------------------------------
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::{account}:root"},
         "Action": "sts:AssumeRole"}
    ],
}  # fmt: skip


def caller_policies(outputs: dict[str, str], region: str, account: str) -> dict[str, list[str]]:
    """What each caller may invoke: ``predict`` the prediction routes, ``outcomes`` only the
    outcome writes (the README's predict-only and outcomes-writer policies)."""
    if outputs.get("SigningService") == "lambda":  # function URLs: one per function
        function = f"arn:aws:lambda:{region}:{account}:function:"
        predict_fn = function + outputs["FunctionName"]
        outcomes_fn = function + outputs.get("OutcomesFunctionName", outputs["FunctionName"])
        return {
            "predict": [predict_fn, f"{predict_fn}:*"],
            "outcomes": [outcomes_fn, f"{outcomes_fn}:*"],
        }
    api_id = urlsplit(outputs["ApiUrl"]).hostname.split(".")[0]  # type: ignore[union-attr]
    api = f"arn:aws:execute-api:{region}:{account}:{api_id}/*"
    outcomes_api = api
    if outputs.get("OutcomesUrl"):
        outcomes_id = urlsplit(outputs["OutcomesUrl"]).hostname.split(".")[0]  # type: ignore[union-attr]
        outcomes_api = f"arn:aws:execute-api:{region}:{account}:{outcomes_id}/*"
    return {
        "predict": [f"{api}/POST/predict", f"{api}/POST/predict/batch", f"{api}/GET/*"],
        "outcomes": [f"{outcomes_api}/POST/outcomes"],
    }


def policy_document(resources: list[str], lambda_urls: bool) -> dict[str, Any]:
    actions = ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"] if lambda_urls else [
        "execute-api:Invoke"
    ]  # fmt: skip
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources}],
    }


def create_caller_roles(iam: Any, stage: Stage, outputs: dict[str, str]) -> dict[str, str]:
    """Two roles, ``<stage>-predict`` and ``<stage>-outcomes``; their ARNs by caller."""
    policies = caller_policies(outputs, stage.region, stage.account)
    lambda_urls = outputs.get("SigningService") == "lambda"
    trust = json.dumps(TRUST).replace("{account}", stage.account)
    arns = {}
    for caller, resources in policies.items():
        name = f"tickerserve-{stage.name}-{caller}"
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=trust,
            Description=f"make e2e: the {caller} caller of stage {stage.name} (deleted at the end)",
            Tags=[
                {"Key": "project", "Value": "tickerserve"},
                {"Key": "stage", "Value": stage.name},
            ],
        )
        iam.put_role_policy(
            RoleName=name,
            PolicyName=caller,
            PolicyDocument=json.dumps(policy_document(resources, lambda_urls)),
        )
        arns[caller] = role["Role"]["Arn"]
    return arns


def delete_caller_roles(iam: Any, stage: Stage) -> None:
    for caller in ("predict", "outcomes"):
        name = f"tickerserve-{stage.name}-{caller}"
        try:
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=name, PolicyName=policy)
            iam.delete_role(RoleName=name)
        except iam.exceptions.NoSuchEntityException:
            continue


def assume(sts: Any, role_arn: str, timeout: float = ROLE_PROPAGATION_SECONDS) -> Credentials:
    """Temporary credentials of ``role_arn``, retrying while a new role propagates."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = sts.assume_role(RoleArn=role_arn, RoleSessionName="tickerserve-e2e")
        except sts.exceptions.ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(5.0)
            continue
        c = response["Credentials"]
        return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


# -- the deployed target -------------------------------------------------------------------
class AwsTarget(Target):
    """A deployed stage, from its outputs."""

    stage: Stage
    session: Any
    outputs: dict[str, str]

    def athena_request_ids(self, day: date, wanted: set[str]) -> set[str]:
        from infra.constructs.capture_store import glue_database_name

        athena = self.session.client("athena")
        ids = ", ".join(f"'{i}'" for i in sorted(wanted))
        query = (
            f"SELECT request_id FROM {glue_database_name(self.stage.name)}.capture "
            f"WHERE dt = '{day.isoformat()}' AND request_id IN ({ids})"
        )
        started = athena.start_query_execution(
            QueryString=query, WorkGroup=f"tickerserve-{self.stage.name}"
        )
        run = started["QueryExecutionId"]
        while True:
            status = athena.get_query_execution(QueryExecutionId=run)["QueryExecution"]["Status"]
            if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            time.sleep(2.0)
        assert status["State"] == "SUCCEEDED", status.get("StateChangeReason")
        rows = athena.get_query_results(QueryExecutionId=run)["ResultSet"]["Rows"][1:]
        return {row["Data"][0]["VarCharValue"] for row in rows}

    def run_monitor(self, day: date, model: str) -> dict[str, Any]:
        """Invoke the scheduled monitor function as its schedule does, for ``day``."""
        payload = {"since": day.isoformat(), "until": (day + timedelta(days=1)).isoformat(),
                   "models": [model]}  # fmt: skip
        response = self.session.client("lambda").invoke(
            FunctionName=self.outputs["MonitorFunctionName"], Payload=json.dumps(payload).encode()
        )
        body = json.loads(response["Payload"].read() or b"null")
        assert "FunctionError" not in response, body
        return dict(body or {})

    def alarm_names(self) -> list[str]:
        cloudformation = self.session.client("cloudformation")
        names = [
            item["PhysicalResourceId"]
            for page in cloudformation.get_paginator("list_stack_resources").paginate(
                StackName=self.stage.serving_stack
            )
            for item in page["StackResourceSummaries"]
            if item["ResourceType"] == "AWS::CloudWatch::Alarm"
        ]
        cloudwatch = self.session.client("cloudwatch")
        found = []
        for start in range(0, len(names), 100):
            alarms = cloudwatch.describe_alarms(AlarmNames=names[start : start + 100])
            found += [a["AlarmName"] for a in alarms["MetricAlarms"] + alarms["CompositeAlarms"]]
        assert sorted(found) == sorted(names), "alarms of the stack missing in CloudWatch"
        return found


def aws_target_from_env(env: dict[str, str] | None = None) -> AwsTarget:
    """The stage ``make e2e`` deployed, described by the runner's environment."""
    import boto3

    env = dict(os.environ if env is None else env)
    session = boto3.Session(region_name=env["E2E_REGION"])
    stage = Stage(env["E2E_STAGE"], env["E2E_REGION"], env["E2E_ACCOUNT"], Path(env["E2E_WORKDIR"]))
    outputs = stage.outputs()
    service = outputs.get("SigningService", "execute-api")
    roles = {c: env.get(f"E2E_{c.upper()}_ROLE", "") for c in ("predict", "outcomes")}
    if all(roles.values()):
        sts = session.client("sts")
        creds = {c: assume(sts, arn) for c, arn in roles.items()}
        same = None
    else:
        found = session.get_credentials()
        assert found is not None, "make e2e started without credentials"
        own = found.get_frozen_credentials()
        creds = dict.fromkeys(
            roles, Credentials(str(own.access_key), str(own.secret_key), own.token)
        )
        same = env.get("E2E_ROLES_PROBLEM") or "no caller roles were created"
    predict = Caller("predict", outputs["ApiUrl"], service, stage.region, creds["predict"])
    outcomes_url = outputs.get("OutcomesUrl") or outputs["ApiUrl"]
    outcomes = Caller("outcomes", outcomes_url, service, stage.region, creds["outcomes"])
    cli_env = {k: v for k, v in env.items() if not k.startswith("TICKERSERVE_")}
    target = AwsTarget(
        name=f"aws:{stage.name}",
        predict=predict,
        outcomes=outcomes,
        same_principal=same,
        cli_target=["--bucket", outputs["BucketName"], "--region", stage.region],
        cli_env=cli_env,
        s3=session.client("s3"),
        capture_bucket=outputs.get("CaptureBucketName", ""),
        capture_timeout=CAPTURE_TIMEOUT,
        registry_ttl=5.0,  # registryTtlSeconds of the e2e entry in cdk.json
    )
    target.stage, target.session, target.outputs = stage, session, outputs
    if not target.capture_bucket:
        raise Unavailable("the stage has no capture bucket (capture is off in its settings)")
    return target
