"""The model bucket: versioned, encrypted, TLS-only, private, logged, retained."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.conftest import Synth, function_with_handler, resources


def model_bucket(dev: Synth) -> dict:
    buckets = [
        b for b in resources(dev.storage, "AWS::S3::Bucket").values()
        if "VersioningConfiguration" in b["Properties"]
    ]  # fmt: skip
    assert len(buckets) == 1
    return buckets[0]


def test_model_bucket_is_versioned_encrypted_private_and_logged(dev: Synth):
    props = model_bucket(dev)["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "DestinationBucketName" in props["LoggingConfiguration"]
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_model_bucket_name_is_the_one_the_serving_stack_reads(dev: Synth):
    # Both stacks derive it from stage, account and region; see model_bucket_name.
    name = model_bucket(dev)["Properties"]["BucketName"]
    assert "tickerserve-dev-models-" in str(name)
    function = function_with_handler(dev.serving)
    assert function["Properties"]["Environment"]["Variables"]["TICKERSERVE_BUCKET"] == name


def test_both_buckets_are_retained_when_the_stack_is_deleted(dev: Synth):
    for bucket in resources(dev.storage, "AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Retain"
        assert bucket["UpdateReplacePolicy"] == "Retain"


def test_noncurrent_versions_expire_but_recent_ones_are_kept_for_rollback(dev: Synth):
    rules = model_bucket(dev)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 30
    assert rule["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"] >= 1
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 7


def test_every_bucket_refuses_requests_without_tls(dev: Synth):
    policies = resources(dev.storage, "AWS::S3::BucketPolicy").values()
    assert len(policies) == 3  # models, capture, access logs
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny"
            and s["Condition"].get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in statements
        )
        assert any(
            s["Effect"] == "Deny"
            and s["Condition"].get("NumericLessThan", {}).get("s3:TlsVersion") == 1.2
            for s in statements
        )


def test_bucket_name_is_an_output(dev: Synth):
    dev.storage.has_output("BucketName", {"Value": Match.any_value()})
