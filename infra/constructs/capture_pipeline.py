"""The capture pipeline: the prediction function's capture log lines → a CloudWatch Logs
subscription filter → a Firehose delivery stream → the capture bucket as gzip JSON lines under
``capture/dt=YYYY-MM-DD/``, the day taken from each record's own ``time``.

Firehose does the work that would otherwise be a hand-written Lambda: it decompresses what
CloudWatch Logs sends, keeps only each log event's message (the record itself), reads the
day out of the record with a JQ query (dynamic partitioning) and gzips what it delivers.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Size, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as destinations
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import CaptureSettings
from infra.constructs.capture_store import ERROR_PREFIX as ERROR_ROOT
from infra.constructs.log_retention import retained_log_group
from infra.constructs.nag import nag_spelling
from infra.runtime_contract import LAYOUT_NAMES

# Matches the runtime's capture records ({"kind": "capture", ...}) and no other log line.
FILTER_PATTERN = logs.FilterPattern.string_value("$.kind", "=", LAYOUT_NAMES.capture_kind)
# The record's own time is "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC): its first ten characters.
DAY_QUERY = ".time[0:10]"
# The runtime's layout (layout.json): capture/dt=YYYY-MM-DD/, the day partition's key.
DATA_ROOT = LAYOUT_NAMES.capture_prefix
PARTITION = LAYOUT_NAMES.partition_key
DATA_PREFIX = f"{DATA_ROOT}{PARTITION}=!{{partitionKeyFromQuery:{PARTITION}}}/"
ERROR_PREFIX = f"{ERROR_ROOT}!{{firehose:error-output-type}}/{PARTITION}=!{{timestamp:yyyy-MM-dd}}/"
FILE_EXTENSION = ".jsonl.gz"
# Dynamic partitioning needs at least 64 MiB of buffer; the interval (settings) bounds how
# late a record lands in S3 at low traffic.
BUFFER_SIZE_MIB = 64


class CapturePipeline(Construct):
    """Subscription filter and delivery stream from ``log_group`` into ``bucket``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_group: logs.ILogGroup,
        bucket: s3.IBucket,
        settings: CaptureSettings,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # Firehose's own delivery errors (permissions, a bucket gone) are logged here.
        self.errors = retained_log_group(self, "DeliveryErrors", log_retention_days)
        # The L2 destination would grant its role read-write (delete included) on the whole
        # bucket; it gets an immutable view instead, and the role exactly what Firehose's S3
        # destination needs: write under its two prefixes, list and locate the bucket.
        self.role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com"),
            description="tickerserve capture: Firehose writes capture/ and capture-errors/",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[
                    bucket.arn_for_objects(f"{DATA_ROOT}*"),
                    bucket.arn_for_objects(f"{ERROR_ROOT}*"),
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn],
            )
        )
        self.errors.grant(self.role, "logs:PutLogEvents")
        destination = firehose.S3Bucket(
            bucket,
            role=self.role.without_policy_updates(),
            data_output_prefix=DATA_PREFIX,
            error_output_prefix=ERROR_PREFIX,
            compression=firehose.Compression.GZIP,
            file_extension=FILE_EXTENSION,
            buffering_interval=Duration.seconds(settings.buffer_seconds),
            buffering_size=Size.mebibytes(BUFFER_SIZE_MIB),
            dynamic_partitioning=firehose.DynamicPartitioningProps(enabled=True),
            processors=[
                firehose.DecompressionProcessor(),
                firehose.CloudWatchLogProcessor(data_message_extraction=True),
                firehose.MetadataExtractionProcessor.jq16({PARTITION: DAY_QUERY}),
            ],
            logging_config=firehose.EnableLogging(self.errors),
        )
        self.stream = firehose.DeliveryStream(
            self,
            "Stream",
            destination=destination,
            encryption=firehose.StreamEncryption.aws_owned_key(),
        )
        # Firehose checks its permissions when the stream is created.
        self.stream.node.add_dependency(self.role)
        self.filter = logs.SubscriptionFilter(
            self,
            "Filter",
            log_group=log_group,
            destination=destinations.FirehoseDestination(self.stream),
            filter_pattern=FILTER_PATTERN,
        )
        objects = [
            nag_spelling(self, bucket.arn_for_objects(p + "*")) for p in (DATA_ROOT, ERROR_ROOT)
        ]
        Validations.of(self.role).acknowledge(
            *[
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{arn}]",
                    reason="Firehose writes one object per buffer under its own prefix of the "
                    "capture bucket (data partitioned by day, delivery errors apart); object "
                    "names are generated, so the prefix is the narrowest grant",
                )
                for arn in objects
            ]
        )
        # The L2 adds a stack-wide mapping of Firehose's CIDR blocks, read only by its
        # ``connections`` (Redshift and HTTP destinations in a VPC): for S3 it is dead weight
        # that cfn-lint flags (W7001). Anything that did read it would now fail synth.
        Stack.of(self).node.try_remove_child(_CIDR_MAPPING)


_CIDR_MAPPING = "@aws-cdk--aws-kinesisfirehose.CidrBlocks"
