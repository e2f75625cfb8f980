"""cdk-nag (AwsSolutions) and cfn-lint over every synthesized template."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint_file

from tests.infra.conftest import Synth, synth_variant

ACK_METADATA = "aws:cdk:acknowledged-rules"
# Every rule acknowledged in the default (dev) deployment; adding one must be deliberate.
EXPECTED_DEV_ACKS = {
    "AwsSolutions-S1",  # the access-log bucket itself
    "AwsSolutions-L1",  # runtime pinned to python3.13 with the layer
    "AwsSolutions-IAM5[Resource::*]",  # X-Ray
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::tickerserve-dev-models-"
    "<AWS::AccountId>-<AWS::Region>/*/versions/*]",
    # the function writes outcomes; Firehose writes capture records and delivery errors
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::tickerserve-dev-models-"
    "<AWS::AccountId>-<AWS::Region>/outcomes/*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::tickerserve-dev-capture-"
    "<AWS::AccountId>-<AWS::Region>/capture/*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::tickerserve-dev-capture-"
    "<AWS::AccountId>-<AWS::Region>/capture-errors/*]",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AmazonAPIGatewayPushToCloudWatchLogs]",
    "AwsSolutions-COG4",  # IAM authorization instead of Cognito
    "AwsSolutions-APIG3",  # WAF off in dev
    # the monitor function: object prefixes it reads or appends, its schedule's invoke grant
    *(
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::tickerserve-dev-models-"
        f"<AWS::AccountId>-<AWS::Region>/{prefix}]"
        for prefix in (
            "*/baselines/*",
            "outcomes/*",
            "metadata/*",
            "metadata/monitoring_history*",
            "metadata/monitoring_history_archive_*",
        )
    ),
    # (the monitor reads capture/* of the capture bucket: the same finding as Firehose's)
    "AwsSolutions-IAM5[Resource::<MonitorFunction39E4128B.Arn>:*]",
    "AwsSolutions-APIG2",  # no gateway body validation: the handler's codes are the contract
}
# Only the REST API needs these: API Gateway's account-level logging role (IAM4), methods that
# could take a Cognito authorizer or a request validator (COG4, APIG2), a stage WAF could guard
# (APIG3). An HTTP API logs through its service-linked role and WAF cannot attach to it or to a
# function URL.
REST_ONLY_ACKS = {
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AmazonAPIGatewayPushToCloudWatchLogs]",
    "AwsSolutions-COG4",
    "AwsSolutions-APIG2",
    "AwsSolutions-APIG3",
}
# W3005: CDK itself writes DependsOn [role, role policy] on every Function whose role it
# also references with GetAtt; the redundant DependsOn is harmless and not ours to remove.
CFN_LINT_IGNORED = ["W3005"]


def nag_findings(app: App) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(app)
    return [
        f"{v.rule_name} {r.construct_path or r.resource_logical_id}: {v.description}"
        for v in report.violations
        for r in v.violating_resources
    ]


def acknowledgments(app: App) -> dict[str, str]:
    found: dict[str, str] = {}
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == ACK_METADATA:
                found.update(entry.data)
    return {rule.removeprefix("Annotation::"): reason for rule, reason in found.items()}


def test_no_unacknowledged_cdk_nag_findings(variant: Synth):
    assert nag_findings(variant.app) == []


def test_every_acknowledgment_gives_a_specific_reason(variant: Synth):
    acks = acknowledgments(variant.app)
    assert acks
    for rule, reason in acks.items():
        assert len(reason) >= 60, f"{rule}: reason too thin: {reason!r}"


def test_the_dev_deployment_acknowledges_exactly_the_known_rules(dev: Synth):
    nag_acks = {r for r in acknowledgments(dev.app) if r.startswith("AwsSolutions-")}
    assert nag_acks == EXPECTED_DEV_ACKS


@pytest.mark.parametrize("front_door", ["http", "url"])
def test_other_front_doors_acknowledge_only_what_every_stage_shares(front_door: str):
    acks = acknowledgments(synth_variant(front_door).app)
    assert {r for r in acks if r.startswith("AwsSolutions-")} == EXPECTED_DEV_ACKS - REST_ONLY_ACKS


def test_an_open_http_api_acknowledges_its_routes_without_authorization():
    acks = acknowledgments(synth_variant("http_open").app)
    assert "AwsSolutions-APIG4" in acks
    assert "authMode=none explicitly" in acks["AwsSolutions-APIG4"]


def test_cdk_nag_does_report_an_unacknowledged_finding():
    # Given an app with a bare bucket (no logs, no TLS policy) and nothing acknowledged
    app = App(context={"aws:cdk:bundling-stacks": []})
    s3.Bucket(Stack(app, "Bare"), "Bucket")
    # Then the same check the tests rely on reports it
    findings = nag_findings(app)
    assert any(f.startswith("AwsSolutions-S1 ") for f in findings)
    assert any(f.startswith("AwsSolutions-S10 ") for f in findings)


def lint(template: Path) -> list[str]:
    matches = lint_file(template, config=ManualArgs(ignore_checks=CFN_LINT_IGNORED))
    return [f"{template.name}:{m.linenumber} {m.rule.id} {m.message}" for m in matches]


def test_cfn_lint_passes_on_every_synthesized_template(variant: Synth):
    assembly = variant.app.synth()
    templates = [Path(assembly.directory) / s.template_file for s in assembly.stacks]
    assert len(templates) == len(variant.stacks)
    assert [problem for t in templates for problem in lint(t)] == []


def test_cfn_lint_catches_a_broken_template(tmp_path):
    broken = tmp_path / "broken.template.json"
    broken.write_text('{"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {}}}}')
    assert any(" E3003 " in problem for problem in lint(broken))
