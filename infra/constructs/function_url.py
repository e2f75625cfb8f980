"""The function URL front door (``apiType: url``): a Lambda function URL on the ``live`` alias.

No gateway and no request price: Lambda receives the HTTP request itself (payload format 2.0)
and every path reaches the function, which answers unknown routes and methods with its own 404
and 405. What it lacks: request throttling (the stage's ``reservedConcurrency`` caps it
instead), access logs, API keys, AWS WAF, custom domains and per-route permissions: one URL
is one IAM resource, the alias; so ``POST /outcomes`` has a URL of its own, on the outcomes
function (the prediction URL answers it with 403 ``wrong_entry_point``). Lambda's own refusals
(403, 413, 429, 502) carry its ``{"Message": ...}`` body.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import ApiSettings, ApiType
from infra.constructs.front_door import OUTCOMES, RequestMetrics, Route

LAMBDA_NAMESPACE = "AWS/Lambda"


class FunctionUrlFront(Construct):
    """A function URL (IAM-authorized unless the stage says ``authMode: none``)."""

    api_type: ApiType = "url"
    signing_service = "lambda"
    # Function URLs created since October 2025 need both (InvokeFunction may be limited to
    # calls through the URL with the condition lambda:InvokedViaFunctionUrl).
    invoke_actions = ("lambda:InvokeFunctionUrl", "lambda:InvokeFunction")
    access_logs: logs.ILogGroup | None = None

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.Alias,
        outcomes: lambda_.Alias,
        settings: ApiSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = handler
        self.outcomes = outcomes
        self.function_url = lambda_.FunctionUrl(
            self,
            "Url",
            function=handler,
            auth_type=(
                lambda_.FunctionUrlAuthType.AWS_IAM
                if settings.auth_mode == "iam"
                else lambda_.FunctionUrlAuthType.NONE
            ),
            # The whole answer at once, as behind API Gateway (streaming is for Node.js).
            invoke_mode=lambda_.InvokeMode.BUFFERED,
        )
        # One URL is one IAM resource, so outcomes get a URL of their own, on the outcomes
        # function, IAM-authorized whatever the stage's authMode (issue 19).
        self.outcomes_function_url = lambda_.FunctionUrl(
            self,
            "OutcomesUrl",
            function=outcomes,
            auth_type=lambda_.FunctionUrlAuthType.AWS_IAM,
            invoke_mode=lambda_.InvokeMode.BUFFERED,
        )

    @property
    def url(self) -> str:
        return self.function_url.url

    @property
    def outcomes_url(self) -> str:
        return self.outcomes_function_url.url

    def route_arn(self, route: Route) -> str:
        # Every route but outcomes: one URL on the prediction alias.
        return self.outcomes.function_arn if route == OUTCOMES else self.handler.function_arn

    def metrics(self, period: Duration) -> RequestMetrics:
        # Per URL: the function's name and the alias it is on (Resource "name:live").
        function_name = self.handler.version.lambda_.function_name
        dimensions = {
            "FunctionName": function_name,
            "Resource": f"{function_name}:{self.handler.alias_name}",
        }

        def metric(name: str, statistic: str) -> cw.Metric:
            return cw.Metric(
                namespace=LAMBDA_NAMESPACE,
                metric_name=name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=period,
            )

        return RequestMetrics(
            requests=metric("UrlRequestCount", "Sum"),
            client_errors=metric("Url4xxCount", "Sum"),
            server_errors=metric("Url5xxCount", "Sum"),
            latency=lambda statistic: metric("UrlRequestLatency", statistic),
        )
