"""The HTTP API front door (``apiType: http``): API Gateway's HTTP API, payload format 2.0.

A third of the REST API's request price. One route per API route, each with the IAM authorizer
(or none, where the stage says ``authMode: none``; ``POST /outcomes`` always has it, and goes to
the outcomes function), stage throttling and JSON access logs. What
it lacks: API keys and usage plans, AWS WAF, X-Ray, and custom gateway responses: its own
refusals (403, 404 for an unknown route, 413, 429, 503, 504) carry API Gateway's
``{"message": ...}`` body, not the API's error shape (the README's table says which).
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk.aws_apigatewayv2_authorizers import HttpIamAuthorizer
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from infra.config import ApiSettings, ApiType
from infra.constructs.front_door import OUTCOMES, ROUTES, RequestMetrics, Route
from infra.constructs.log_retention import retained_log_group

# HTTP API access log variables (the caller's IAM identity where the IAM authorizer ran).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.user",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "error": "$context.error.message",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(
        self, destination: apigwv2.IAccessLogDestination, log_format: apigw.AccessLogFormat
    ):
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


class HttpApiFront(Construct):
    """An HTTP API with one named stage in front of the prediction function's alias."""

    api_type: ApiType = "http"
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
        self.stage_name = settings.stage
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="tickerserve: per-ticker model predictions",
            # A named stage like the REST API's (https://…/dev/), not the $default one.
            create_default_stage=False,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name=settings.stage,
            auto_deploy=True,
            # Every route's default; a route can get its own (RouteSettings) where it needs one.
            throttle=apigwv2.ThrottleSettings(
                rate_limit=settings.throttle_rate_limit, burst_limit=settings.throttle_burst_limit
            ),
            access_log_settings=_AccessLogSettings(
                apigwv2.LogGroupLogDestination(self.access_logs),
                # JSON like the REST API's access log (HTTP APIs name the route by routeKey);
                # request bodies are never logged.
                apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
            ),
        )
        # Payload format 2.0; the invoke permission is scoped to each route's own ARN.
        integration = HttpLambdaIntegration("Prediction", handler, scope_permission_to_route=True)
        to_outcomes = HttpLambdaIntegration("Outcomes", outcomes, scope_permission_to_route=True)
        iam_authorizer = HttpIamAuthorizer()
        authorizer = iam_authorizer if settings.auth_mode == "iam" else apigwv2.HttpNoneAuthorizer()
        # Outcomes go to their own function and always need IAM (issue 19).
        self.routes = [
            route
            for r in ROUTES
            for route in self.api.add_routes(
                path=r.path,
                methods=[apigwv2.HttpMethod(r.method)],
                integration=to_outcomes if r == OUTCOMES else integration,
                authorizer=iam_authorizer if r == OUTCOMES else authorizer,
            )
        ]
        if settings.auth_mode != "iam":
            Validations.of(self.api).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-APIG4",
                    reason="This stage sets authMode=none explicitly (a throwaway test stage); "
                    "every other stage uses the IAM authorizer on every route",
                )
            )

    @property
    def url(self) -> str:
        stack = Stack.of(self)
        return (
            f"https://{self.api.api_id}.execute-api.{stack.region}.{stack.url_suffix}/"
            f"{self.stage_name}/"
        )

    @property
    def outcomes_url(self) -> str:
        return self.url

    def route_arn(self, route: Route) -> str:
        return self.api.arn_for_execute_api(route.method, route.path, self.stage_name)

    def metrics(self, period: Duration) -> RequestMetrics:
        stage = self.stage
        return RequestMetrics(
            requests=stage.metric_count(period=period, statistic="Sum"),
            client_errors=stage.metric_client_error(period=period, statistic="Sum"),
            server_errors=stage.metric_server_error(period=period, statistic="Sum"),
            latency=lambda statistic: stage.metric_latency(period=period, statistic=statistic),
        )
