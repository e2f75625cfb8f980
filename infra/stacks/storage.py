"""The storage stack: the model bucket, the capture bucket with its Glue table and Athena
workgroup, and their access-log bucket; the buckets are retained."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import CaptureSettings
from infra.constructs.capture_store import CAPTURE_PREFIX, PARTITION, TABLE, CaptureStore

# Noncurrent versions (old registry revisions, deleted objects) kept for rollback and audit.
NONCURRENT_DAYS = 90
NONCURRENT_KEEP = 10
ACCESS_LOG_DAYS = 365


def model_bucket_name(scope: Construct, stage: str) -> str:
    """The model bucket's name: fixed per stage, account and region.

    A known name (rather than a cross-stack reference) keeps the serving stack
    independent of the storage stack's exports, and makes its IAM policy readable.
    """
    stack = Stack.of(scope)
    return f"tickerserve-{stage}-models-{stack.account}-{stack.region}"


# The baseline both buckets share: private, encrypted, TLS 1.2+ only, kept on stack deletion.
SECURE_BUCKET: dict[str, Any] = {
    "encryption": s3.BucketEncryption.S3_MANAGED,
    "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
    "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    "enforce_ssl": True,
    "minimum_tls_version": 1.2,
    "removal_policy": RemovalPolicy.RETAIN,
}


class StorageStack(Stack):
    """Models outlive any serving deployment: this stack is replaced rarely, never emptied."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        capture: CaptureSettings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # Server access logging only delivers to SSE-S3 buckets (SECURE_BUCKET's choice).
            **SECURE_BUCKET,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(ACCESS_LOG_DAYS))],
        )
        Validations.of(self.access_logs).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This is the access-log target of the model bucket; logging it into "
                "itself would loop and another log bucket would only move the finding",
            )
        )
        self.bucket = s3.Bucket(
            self,
            "Models",
            bucket_name=model_bucket_name(self, stage),
            versioned=True,
            **SECURE_BUCKET,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="models/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(NONCURRENT_DAYS),
                    noncurrent_versions_to_retain=NONCURRENT_KEEP,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                    expired_object_delete_marker=True,
                )
            ],
        )
        CfnOutput(self, "BucketName", value=self.bucket.bucket_name, description="model bucket")
        self.capture: CaptureStore | None = None
        if capture is not None:
            self.capture = CaptureStore(
                self,
                "Capture",
                stage=stage,
                bucket_settings=SECURE_BUCKET,
                access_logs=self.access_logs,
                settings=capture,
            )
            CfnOutput(
                self,
                "CaptureBucketName",
                value=self.capture.bucket.bucket_name,
                description=f"captured predictions ({CAPTURE_PREFIX}{PARTITION}=YYYY-MM-DD/)",
            )
            CfnOutput(
                self,
                "CaptureQuery",
                value=f"SELECT * FROM {self.capture.database_name}.{TABLE} "
                f"WHERE {PARTITION} = '<YYYY-MM-DD>' LIMIT 10",
                description=f"Athena workgroup {self.capture.workgroup_name}",
            )
