"""The prediction Lambda function: code, settings, a least-privilege role, logs, alias."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Annotations, Duration, Size, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.aws_lambda import Alias
from constructs import Construct

from infra.bytecode import MISSING_PYTHON_WARNING, find_python
from infra.config import FunctionSettings
from infra.constructs.dependency_layer import RUNTIME, lambda_architecture
from infra.constructs.function_role import function_role
from infra.constructs.log_retention import retained_log_group
from infra.constructs.nag import nag_spelling
from infra.function_asset import CODE_ROOT, PREDICTION_FILES, stage_function_code
from infra.runtime_contract import LAYOUT_NAMES

HANDLER = "tickerserve.handler.lambda_handler"
ALIAS_NAME = "live"
CACHE_DIR = "/tmp/tickerserve"
# Model artifacts live at {model name}/versions/{version}/{file}; see DESIGN "Bucket layout".
MODEL_OBJECTS = LAYOUT_NAMES.model_objects
# POST /outcomes writes realized results here: the only place the outcomes function may write.
OUTCOME_OBJECTS = f"{LAYOUT_NAMES.outcomes_prefix}*"


class PredictionFunction(Construct):
    """The function behind every API route, published as the ``live`` alias."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        layer: lambda_.ILayerVersion,
        settings: FunctionSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.code = stage_function_code(CODE_ROOT, PREDICTION_FILES, python=find_python())
        if not self.code.bytecode:
            # One warning for both assets: the layer is built by the same missing interpreter.
            Annotations.of(self).add_warning_v2("tickerserve:noBytecode", MISSING_PYTHON_WARNING)
        self.log_group = retained_log_group(self, "Logs", settings.log_retention_days)
        registry_key = settings.registry_key
        self.role = function_role(
            self, self.log_group, "tickerserve prediction function: read models, write its own logs"
        )
        # Reads only the objects the runtime reads and writes nothing: outcomes are the
        # outcomes function's (a separate permission; see outcomes_function.py).
        model_objects = bucket.arn_for_objects(MODEL_OBJECTS)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[model_objects, bucket.arn_for_objects(registry_key)],
            )
        )
        # Without s3:ListBucket, S3 answers a GET of a missing key with 403 AccessDenied
        # instead of 404 NoSuchKey, so a pinned version that does not exist (a client
        # mistake, 4xx) would look like a storage failure (503). S3 checks ListBucket on
        # the bucket ARN for that decision, with the requested key as s3:prefix, so the
        # grant is limited to listing the same keys the function may already read.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [MODEL_OBJECTS, registry_key]}},
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_architecture(settings.architecture),
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(self.code.path)),
            layers=[layer],
            role=self.role,
            memory_size=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
            ephemeral_storage_size=Size.mebibytes(settings.ephemeral_storage_mb),
            reserved_concurrent_executions=settings.reserved_concurrency,
            snap_start=(
                lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if settings.snap_start else None
            ),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            description="tickerserve: per-ticker LightGBM predictions",
            # Exactly the names tickerserve.settings reads (ENV_NAMES); a test checks it.
            environment={
                "TICKERSERVE_BUCKET": bucket.bucket_name,
                # Empty means "not set": in AWS the store is always S3, never a local folder.
                "TICKERSERVE_STORE_PATH": "",
                "TICKERSERVE_REGISTRY_KEY": registry_key,
                "TICKERSERVE_REGISTRY_TTL": str(settings.registry_ttl_seconds),
                "TICKERSERVE_CACHE_DIR": CACHE_DIR,
                "TICKERSERVE_MEMORY_MB": str(settings.memory_budget_mb),
                "TICKERSERVE_DISK_MB": str(settings.disk_budget_mb),
                "TICKERSERVE_PRELOAD": ",".join(settings.preload),
                # Capture records are log lines the capture pipeline picks up.
                "TICKERSERVE_CAPTURE": "on" if settings.capture_on else "off",
            },
        )
        self.alias: Alias = self.function.add_alias(
            ALIAS_NAME,
            provisioned_concurrent_executions=settings.provisioned_concurrency or None,
        )
        if settings.snap_start:
            Annotations.of(self.function).acknowledge_warning(
                "@aws-cdk/aws-lambda:snapStartRequirePublish",
                "the live alias always points at a published version (current_version)",
            )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="Pinned to python3.13 on purpose: the dependency layer is built for "
                "CPython 3.13 (cp313 wheels and bytecode) and the bundle test imports it under "
                "3.13; runtime and layer move to a newer Python together",
            )
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Only xray:PutTraceSegments and xray:PutTelemetryRecords (active "
                "tracing) use Resource '*': X-Ray has no resource-level permissions",
            ),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{nag_spelling(self, model_objects)}]",
                reason="s3:GetObject on {model}/versions/{version}/{file} only: model names "
                "are data (etfs/SMH, stocks/universal, new ones), so this key pattern is the "
                "narrowest grant that serves a newly published model without a redeploy",
            ),
        )
