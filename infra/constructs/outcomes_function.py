"""The outcomes function: the entry point that records realized outcomes, and nothing else.

Predicting and writing outcomes are separate permissions in every auth mode (issue 19): the
monitor decides which model trades from outcomes, so whoever may call predict must not be able
to write them. This function runs the prediction function's code with the outcomes entry point
(``tickerserve.handler.outcomes_handler``): it answers ``POST /outcomes`` and the direct
``{"action": "outcomes"}`` only, and may write only under ``outcomes/`` (it reads nothing). The
prediction function, in turn, refuses outcomes and may no longer write anywhere. API Gateway
routes ``POST /outcomes`` here under IAM authorization, a function URL stage gets a second URL
on this function's alias, and a direct caller needs ``lambda:InvokeFunction`` on this
function, which a predict-only policy never names.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.aws_lambda import Alias
from constructs import Construct

from infra.config import FunctionSettings
from infra.constructs.dependency_layer import RUNTIME, lambda_architecture
from infra.constructs.function_role import function_role
from infra.constructs.log_retention import retained_log_group
from infra.constructs.nag import nag_spelling
from infra.constructs.prediction_function import ALIAS_NAME, CACHE_DIR, OUTCOME_OBJECTS

HANDLER = "tickerserve.handler.outcomes_handler"
# A batch of at most 1,000 outcomes is validated and written as one object: no models load.
MEMORY_MB = 512
TIMEOUT_SECONDS = 29


class OutcomesFunction(Construct):
    """The outcomes entry point, published as its own ``live`` alias."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        bucket: s3.IBucket,
        layer: lambda_.ILayerVersion,
        settings: FunctionSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = retained_log_group(self, "Logs", settings.log_retention_days)
        self.role = function_role(
            self, self.log_group, "tickerserve outcomes function: write outcomes and its own logs"
        )
        outcome_objects = bucket.arn_for_objects(OUTCOME_OBJECTS)
        # Create-only puts of one object per received batch; nothing else, not even reads.
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[outcome_objects])
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_architecture(settings.architecture),
            handler=HANDLER,
            code=code,
            layers=[layer],
            role=self.role,
            memory_size=MEMORY_MB,
            timeout=Duration.seconds(min(TIMEOUT_SECONDS, settings.timeout_seconds)),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            description="tickerserve: records realized outcomes (POST /outcomes)",
            # The names tickerserve.settings reads, as the prediction function's; no preload,
            # no capture: this function serves no model.
            environment={
                "TICKERSERVE_BUCKET": bucket.bucket_name,
                "TICKERSERVE_STORE_PATH": "",
                "TICKERSERVE_REGISTRY_KEY": settings.registry_key,
                "TICKERSERVE_REGISTRY_TTL": str(settings.registry_ttl_seconds),
                "TICKERSERVE_CACHE_DIR": CACHE_DIR,
                "TICKERSERVE_MEMORY_MB": str(settings.memory_budget_mb),
                "TICKERSERVE_DISK_MB": str(settings.disk_budget_mb),
                "TICKERSERVE_PRELOAD": "",
                "TICKERSERVE_CAPTURE": "off",
            },
        )
        self.alias: Alias = self.function.add_alias(ALIAS_NAME)
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="Pinned to python3.13 on purpose, like the prediction function whose "
                "code and dependency layer it runs",
            )
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Only xray:PutTraceSegments and xray:PutTelemetryRecords (active "
                "tracing) use Resource '*': X-Ray has no resource-level permissions",
            ),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{nag_spelling(self, outcome_objects)}]",
                reason="s3:PutObject under outcomes/ only (POST /outcomes): one object per "
                "received batch, keyed by day and content hash, so the key is data",
            ),
        )
