"""The serving stack: dependency layer, prediction function, outcomes function, capture
pipeline, the front door (REST API, HTTP API or function URL: ``apiType``), alarms, and the
scheduled monitor function."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import ApiSettings, ServingConfig
from infra.constructs.api import PredictionApi
from infra.constructs.capture_pipeline import CapturePipeline
from infra.constructs.capture_store import capture_bucket_name
from infra.constructs.dependency_layer import DependencyLayer
from infra.constructs.firewall import ApiFirewall
from infra.constructs.front_door import FrontDoor
from infra.constructs.function_url import FunctionUrlFront
from infra.constructs.http_api import HttpApiFront
from infra.constructs.monitor_function import MonitorFunction
from infra.constructs.monitoring import Monitoring
from infra.constructs.outcomes_function import OutcomesFunction
from infra.constructs.prediction_function import PredictionFunction
from infra.stacks.storage import model_bucket_name


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
        layer = DependencyLayer(self, "Dependencies", architecture=config.architecture)
        self.prediction = PredictionFunction(
            self,
            "Prediction",
            bucket=bucket,
            layer=layer.layer,
            settings=config.function,
        )
        captured: s3.IBucket | None = None
        if config.capture_on:
            # The storage stack's capture bucket, found by its fixed name like the models'.
            captured = s3.Bucket.from_bucket_name(
                self, "CaptureBucket", capture_bucket_name(self, config.stage)
            )
            self.capture = CapturePipeline(
                self,
                "Capture",
                log_group=self.prediction.log_group,
                bucket=captured,
                settings=config.capture,
                log_retention_days=config.log_retention_days,
            )
        # Writing outcomes is a separate permission: a function of its own (issue 19).
        self.outcomes = OutcomesFunction(
            self,
            "Outcomes",
            code=lambda_.Code.from_asset(str(self.prediction.code.path)),
            bucket=bucket,
            layer=layer.layer,
            settings=config.function,
        )
        self.api = front_door(
            self,
            "Api",
            handler=self.prediction.alias,
            outcomes=self.outcomes.alias,
            settings=config.api,
        )
        # WAF attaches only to a REST API stage (the config refuses waf with another apiType).
        if isinstance(self.api, PredictionApi):
            stage = self.api.api.deployment_stage
            if config.waf:
                ApiFirewall(self, "Firewall", stage=stage)
            else:
                Validations.of(stage).acknowledge(
                    Acknowledgment(
                        id="AwsSolutions-APIG3",
                        reason="WAF is opt-in per stage (waf: true; on in prod). Without it, "
                        "stage throttling caps all traffic and, under the default IAM "
                        "authorization, API Gateway rejects unsigned requests before the "
                        "function runs",
                    )
                )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            front=self.api,
            function=self.prediction.function,
            settings=config.alarms,
        )
        self.monitoring.watch_outcomes(function=self.outcomes.function, settings=config.alarms)
        self.monitoring.watch_capture(
            settings=config.alarms,
            delivery=self.capture.stream if config.capture_on else None,
            buffer_seconds=config.capture.buffer_seconds,
        )
        self.monitor = MonitorFunction(
            self,
            "Monitor",
            bucket=bucket,
            layer=layer.layer,
            architecture=config.architecture,
            registry_key=config.registry_key,
            log_retention_days=config.log_retention_days,
            topic=self.monitoring.topic,
            dashboard=self.monitoring.dashboard,
            settings=config.monitor,
            # Deployed capture lands in the capture bucket (outcomes stay in the model bucket).
            capture_bucket=captured,
        )
        CfnOutput(self, "ApiUrl", value=self.api.url, description="API base URL")
        CfnOutput(
            self,
            "SigningService",
            value=self.api.signing_service,
            description=f"the service a SigV4 signature names for this {self.api.api_type} API",
        )
        CfnOutput(self, "BucketName", value=bucket.bucket_name, description="model bucket")
        CfnOutput(
            self,
            "FunctionName",
            value=self.prediction.function.function_name,
            description="prediction function",
        )
        CfnOutput(
            self,
            "MonitorFunctionName",
            value=self.monitor.function.function_name,
            description="scheduled monitor function (make e2e invokes it)",
        )
        CfnOutput(
            self,
            "OutcomesUrl",
            value=self.api.outcomes_url,
            description="base URL of POST /outcomes (IAM-authorized)",
        )
        CfnOutput(
            self,
            "OutcomesFunctionName",
            value=self.outcomes.function.function_name,
            description='outcomes function (direct invoke: {"action": "outcomes"})',
        )
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        if isinstance(self.api, PredictionApi) and config.auth_mode == "api_key":
            CfnOutput(self, "ApiKeyId", value=self.api.api_key.key_id)


def front_door(
    scope: Construct,
    construct_id: str,
    *,
    handler: lambda_.Alias,
    outcomes: lambda_.Alias,
    settings: ApiSettings,
) -> FrontDoor:
    """The stage's front door (``apiType``) in front of the functions' aliases."""
    if settings.api_type == "http":
        return HttpApiFront(
            scope, construct_id, handler=handler, outcomes=outcomes, settings=settings
        )
    if settings.api_type == "url":
        return FunctionUrlFront(
            scope, construct_id, handler=handler, outcomes=outcomes, settings=settings
        )
    return PredictionApi(scope, construct_id, handler=handler, outcomes=outcomes, settings=settings)
