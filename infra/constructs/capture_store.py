"""Where captured predictions are kept and queried: the capture bucket (retained), a Glue
table over ``capture/`` with partition projection on ``dt``, and an Athena workgroup with its
own results location, so ``SELECT ... FROM capture WHERE dt = ... AND model = ...`` works
with no crawler and no setup.

The records are the runtime's capture contract (``tickerserve/serving/capture.py``): gzip JSON lines
under ``capture/dt=YYYY-MM-DD/``; the model is a column, not a path segment (model names
contain ``/``).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import CaptureSettings
from infra.runtime_contract import LAYOUT_NAMES

# The runtime's layout (layout.json): records under capture/dt=YYYY-MM-DD/.
CAPTURE_PREFIX = LAYOUT_NAMES.capture_prefix
PARTITION = LAYOUT_NAMES.partition_key
# Where Firehose puts what it could not deliver (the capture pipeline writes it).
ERROR_PREFIX = "capture-errors/"
RESULTS_PREFIX = "athena-results/"
# This bucket's server access logs, in the storage stack's access-log bucket.
ACCESS_LOG_PREFIX = "capture/"
TABLE = "capture"
RESULTS_DAYS = 7  # Athena writes every result set; they are only needed while being read
PROJECTION_START = "2024-01-01"
MAX_SCAN_BYTES = 10 * 1024**3  # a runaway query stops at 10 GiB scanned (about $0.05)

_OUTPUT = "struct<label:string,probabilities:map<string,double>,value:double>"
# Column -> Hive type, in the record's own field order.
COLUMNS: dict[str, str] = {
    "kind": "string",
    "v": "int",
    "time": "string",
    "request_id": "string",
    "source": "string",
    "ticker": "string",
    "signal": "string",
    "timeframe": "string",
    "model": "string",
    "version": "string",
    "alias": "string",
    "role": "string",
    "task": "string",
    "features": "map<string,double>",
    "output": _OUTPUT,
    "challengers": "array<struct<alias:string,version:string,output:"
    f"{_OUTPUT},latency_us:bigint,error:string>>",
    "latency_us": "bigint",
    # The answer's warnings (a row unlike the version's reference), when it has ranges.
    "warnings": "array<struct<feature:string,code:string,value:double,range:array<double>>>",
}


def capture_bucket_name(scope: Construct, stage: str) -> str:
    """The capture bucket's name, fixed per stage, account and region (like the model
    bucket's): the serving stack's delivery stream finds it without a cross-stack export."""
    stack = Stack.of(scope)
    return f"tickerserve-{stage}-capture-{stack.account}-{stack.region}"


def glue_database_name(stage: str) -> str:
    return f"tickerserve_{stage.replace('-', '_')}"


class CaptureStore(Construct):
    """The capture bucket, its Glue database and table, and an Athena workgroup."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        bucket_settings: dict[str, Any],
        access_logs: s3.IBucket,
        settings: CaptureSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=capture_bucket_name(self, stage),
            **bucket_settings,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=ACCESS_LOG_PREFIX,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="capture",
                    prefix=CAPTURE_PREFIX,
                    expiration=Duration.days(settings.retention_days),
                ),
                s3.LifecycleRule(
                    id="errors",
                    prefix=ERROR_PREFIX,
                    expiration=Duration.days(settings.retention_days),
                ),
                s3.LifecycleRule(
                    id="results", prefix=RESULTS_PREFIX, expiration=Duration.days(RESULTS_DAYS)
                ),
                s3.LifecycleRule(
                    id="uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
            ],
        )
        self.database_name = glue_database_name(stage)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="tickerserve: captured predictions (Athena: FROM capture)",
            ),
        )
        location = f"s3://{self.bucket.bucket_name}/{CAPTURE_PREFIX}"
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE,
                description="One row per scored prediction (capture record "
                f"v{LAYOUT_NAMES.capture_version})",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "json",
                    "compressionType": "gzip",
                    # Partition projection: Athena computes the dt partitions from the
                    # query's WHERE clause; nothing registers partitions, no crawler runs.
                    "projection.enabled": "true",
                    f"projection.{PARTITION}.type": "date",
                    f"projection.{PARTITION}.format": "yyyy-MM-dd",
                    f"projection.{PARTITION}.range": f"{PROJECTION_START},NOW",
                    f"projection.{PARTITION}.interval": "1",
                    f"projection.{PARTITION}.interval.unit": "DAYS",
                    "storage.location.template": f"{location}{PARTITION}=${{{PARTITION}}}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=PARTITION, type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.openx.data.jsonserde.JsonSerDe",
                        # A line that is not a record (there should be none) is skipped.
                        parameters={"ignore.malformed.json": "true"},
                    ),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=name, type=type_)
                        for name, type_ in COLUMNS.items()
                    ],
                ),
            ),
        )
        self.table.node.add_dependency(self.database)
        self.workgroup_name = f"tickerserve-{stage}"
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=self.workgroup_name,
            description="tickerserve: queries over captured predictions",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                # Every query of the workgroup writes encrypted results to the capture
                # bucket's own prefix, whatever the client asks for.
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=MAX_SCAN_BYTES,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.bucket.bucket_name}/{RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
