"""The serving stack: dependency layer, prediction function, REST API, alarms."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Stack, Validations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import LOG_RETENTION_DAYS, ServingConfig
from infra.constructs.api import PredictionApi
from infra.constructs.dependency_layer import DependencyLayer
from infra.constructs.firewall import ApiFirewall
from infra.constructs.monitoring import Monitoring
from infra.constructs.prediction_function import PredictionFunction
from infra.stacks.storage import model_bucket_name

# RetentionDays lists CloudWatch's finite periods in the same order (ONE_DAY ... TEN_YEARS).
RETENTION = dict(
    zip(LOG_RETENTION_DAYS, list(logs.RetentionDays)[: len(LOG_RETENTION_DAYS)], strict=True)
)


class ServingStack(Stack):
    """Everything that serves predictions; replaceable without touching the models."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServingConfig,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The storage stack's bucket unless the stage names an existing one.
        bucket_name = config.bucket_name or model_bucket_name(self, config.stage)
        bucket = s3.Bucket.from_bucket_name(self, "Models", bucket_name)
        retention = RETENTION[config.log_retention_days]
        layer = DependencyLayer(self, "Dependencies", architecture=config.architecture)
        self.prediction = PredictionFunction(
            self,
            "Prediction",
            bucket=bucket,
            layer=layer.layer,
            architecture=config.architecture,
            memory_mb=config.memory_mb,
            timeout_seconds=config.timeout_seconds,
            ephemeral_storage_mb=config.ephemeral_storage_mb,
            reserved_concurrency=config.reserved_concurrency,
            provisioned_concurrency=config.provisioned_concurrency,
            snap_start=config.snap_start,
            log_retention=retention,
            registry_key=config.registry_key,
            registry_ttl_seconds=config.registry_ttl_seconds,
            memory_budget_mb=config.memory_budget_mb,
            disk_budget_mb=config.disk_budget_mb,
            preload=config.preload,
        )
        self.api = PredictionApi(
            self,
            "Api",
            handler=self.prediction.alias,
            stage=config.stage,
            auth_mode=config.auth_mode,
            throttle_rate_limit=config.throttle_rate_limit,
            throttle_burst_limit=config.throttle_burst_limit,
            log_retention=retention,
        )
        stage = self.api.api.deployment_stage
        if config.waf:
            ApiFirewall(self, "Firewall", stage=stage)
        else:
            Validations.of(stage).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-APIG3",
                    reason="WAF is opt-in per stage (waf: true; on in prod). Without it, stage "
                    "throttling caps all traffic and, under the default IAM authorization, "
                    "API Gateway rejects unsigned requests before the function runs",
                )
            )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            stage=stage,
            function=self.prediction.function,
            thresholds=config.alarms,
        )
        CfnOutput(self, "ApiUrl", value=self.api.api.url, description="API base URL")
        CfnOutput(self, "BucketName", value=bucket.bucket_name, description="model bucket")
        CfnOutput(
            self,
            "FunctionName",
            value=self.prediction.function.function_name,
            description="prediction function",
        )
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        if config.auth_mode == "api_key":
            CfnOutput(self, "ApiKeyId", value=self.api.api_key.key_id)
