"""The REST API front door (``apiType: rest``): one method per route, authorization, logs,
throttling, and the gateway's own answers in the API's error shape.

No body validation at the gateway: the handler validates every request itself and answers
with the codes the README and the OpenAPI document promise (``invalid_json``,
``missing_field``, 413 ``batch_too_large``, ...), so a deployed client sees exactly what a
local one sees. What only the gateway can answer (403, 429, 413 above 10 MB, 502, 504) uses
the API's error shape with the codes listed in the runtime's ``contract.json``.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import ApiSettings, ApiType
from infra.constructs.front_door import OUTCOMES, ROUTES, RequestMetrics, Route
from infra.constructs.log_retention import retained_log_group
from infra.runtime_contract import GATEWAY_ERRORS


class PredictionApi(Construct):
    """API Gateway REST API in front of the prediction function's alias (a ``FrontDoor``)."""

    api_type: ApiType = "rest"
    signing_service = "execute-api"
    invoke_actions = ("execute-api:Invoke",)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        outcomes: lambda_.IFunction,
        settings: ApiSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = retained_log_group(self, "AccessLogs", settings.log_retention_days)
        self.auth_mode = auth_mode = settings.auth_mode
        self.stage_name = stage = settings.stage
        self.api = apigw.RestApi(
            self,
            "Api",
            description="tickerserve: per-ticker model predictions",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway needs an account-level role to write logs; retained on delete
            # because it is shared by every API in the account and region.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage,
                throttling_rate_limit=settings.throttle_rate_limit,
                throttling_burst_limit=settings.throttle_burst_limit,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # Request bodies carry trading features; never copy them into logs.
                data_trace_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
            default_method_options=self._method_options(auth_mode),
        )
        # The stack outputs the URL under a stable name instead of this hashed one.
        self.api.node.try_remove_child("Endpoint")
        # Each keeps the gateway's own status (``status`` in contract.json documents it).
        for error in GATEWAY_ERRORS:
            self.api.add_gateway_response(
                f"Error{error.response_type}",
                type=apigw.ResponseType.of(error.response_type),
                templates={
                    "application/json": (
                        f'{{"error": {{"code": "{error.code}", '
                        '"message": $context.error.messageString}}'
                    )
                },
            )
        # allow_test_invoke=False: no extra invoke permission for the console's test button.
        integration = apigw.LambdaIntegration(handler, proxy=True, allow_test_invoke=False)
        to_outcomes = apigw.LambdaIntegration(outcomes, proxy=True, allow_test_invoke=False)
        # One method per route: each is its own IAM resource (route_arn). Outcomes go to their
        # own function and always need IAM: an API key is accepted by every key-required
        # method of the stage, so only IAM keeps a key that may predict from writing them.
        self.methods = [
            self.api.root.resource_for_path(route.path).add_method(
                route.method,
                to_outcomes,
                authorization_type=apigw.AuthorizationType.IAM,
                api_key_required=False,
            )
            if route == OUTCOMES
            else self.api.root.resource_for_path(route.path).add_method(route.method, integration)
            for route in ROUTES
        ]
        if auth_mode == "api_key":
            self._usage_plan(stage, settings.throttle_rate_limit, settings.throttle_burst_limit)
        Validations.of(self.api).acknowledge(*_acknowledgments(auth_mode))

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def outcomes_url(self) -> str:
        return self.api.url

    def route_arn(self, route: Route) -> str:
        return self.api.arn_for_execute_api(route.method, route.path, self.stage_name)

    def metrics(self, period: Duration) -> RequestMetrics:
        stage = self.api.deployment_stage
        return RequestMetrics(
            requests=stage.metric_count(period=period, statistic="Sum"),
            client_errors=stage.metric_client_error(period=period, statistic="Sum"),
            server_errors=stage.metric_server_error(period=period, statistic="Sum"),
            latency=lambda statistic: stage.metric_latency(period=period, statistic=statistic),
        )

    @staticmethod
    def _method_options(auth_mode: str) -> apigw.MethodOptions:
        if auth_mode == "iam":
            return apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM)
        if auth_mode == "api_key":
            return apigw.MethodOptions(
                authorization_type=apigw.AuthorizationType.NONE, api_key_required=True
            )
        return apigw.MethodOptions(authorization_type=apigw.AuthorizationType.NONE)

    def _usage_plan(self, stage: str, rate: float, burst: int) -> None:
        self.api_key = self.api.add_api_key("ApiKey", description=f"tickerserve {stage}")
        plan = self.api.add_usage_plan(
            "UsagePlan",
            description=f"tickerserve {stage}: per-key throttling",
            throttle=apigw.ThrottleSettings(rate_limit=rate, burst_limit=burst),
        )
        plan.add_api_key(self.api_key)
        plan.add_api_stage(stage=self.api.deployment_stage)


_PUSH_TO_LOGS = (
    "arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)
_WHY_NOT_COGNITO = {
    "iam": "Methods use IAM (SigV4) authorization: callers are trading bots and agents "
    "that already hold AWS credentials; a Cognito user pool would add a second identity store",
    "api_key": "This stage sets authMode=api_key explicitly: callers are identified by API "
    "key and limited by a usage plan; IAM is the default for every other stage",
    "none": "This stage sets authMode=none explicitly (a throwaway test stage); every "
    "other stage uses IAM authorization",
}


def _acknowledgments(auth_mode: str) -> list[Acknowledgment]:
    acks = [
        Acknowledgment(
            id=f"AwsSolutions-IAM4[Policy::{_PUSH_TO_LOGS}]",
            reason="The account-level API Gateway logging role must carry exactly this "
            "AWS-maintained policy (the documented setup for access and execution logs)",
        ),
        Acknowledgment(id="AwsSolutions-COG4", reason=_WHY_NOT_COGNITO[auth_mode]),
        Acknowledgment(
            id="AwsSolutions-APIG2",
            reason="Request validation is the handler's: it checks every body fully and "
            "answers the documented codes (invalid_json, missing_field, batch_too_large, ...); "
            "a gateway validator would answer the same mistakes with its own bad_request",
        ),
    ]
    if auth_mode != "iam":
        acks.append(Acknowledgment(id="AwsSolutions-APIG4", reason=_WHY_NOT_COGNITO[auth_mode]))
    return acks
