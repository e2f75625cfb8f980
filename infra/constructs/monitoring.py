"""Alarms, their topic, and a dashboard.

Alarms on what clients see (5xx, function errors, throttles, p99 latency: the requests and
latency as the stage's front door counts them, API Gateway's or the function URL's metrics)
and on what warm sandboxes hide behind good answers: versions that fail to load, registry
reads that fail, answers from a last good version, and a registry that has not been read for
too long (the function's own metrics, named in the runtime's ``metric_names.json``; an alarm
on one of them is named after it). Request warnings (answers whose rows are unlike their
version's reference) are counted per model: one Metrics Insights alarm watches every model's
series on its own, so models published later are watched without a redeploy. The README has a
runbook line per alarm.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import AlarmSettings
from infra.constructs.front_door import FrontDoor
from infra.runtime_contract import PREDICTION_METRIC_NAMES, PREDICTION_METRICS

# The function's metrics, from the runtime's metric_names.json (what serving/observability.py
# emits; infra never imports it): namespace, the service dimension and one dimension per
# function, and the names by key.
NAMESPACE: str = PREDICTION_METRICS["namespace"]
SERVICE: str = PREDICTION_METRICS["service"]
NAMES = PREDICTION_METRIC_NAMES
MODEL: str = PREDICTION_METRICS["model_dimension"]  # a per-model metric's dimension


def dimensions(function: lambda_.IFunction) -> dict[str, str]:
    """The dimensions the function's own metrics carry."""
    return {
        PREDICTION_METRICS["service_dimension"]: SERVICE,
        PREDICTION_METRICS["function_dimension"]: function.function_name,
    }


class Monitoring(Construct):
    """Alarms notify an encrypted SNS topic; the dashboard shows the same metrics."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        front: FrontDoor,
        function: lambda_.Function,
        settings: AlarmSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = function
        # A customer managed key: CloudWatch cannot publish to a topic encrypted
        # with the AWS managed SNS key.
        key = kms.Key(
            self, "TopicKey", enable_key_rotation=True, description="tickerserve alarm topic"
        )
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(self, "Topic", master_key=key, enforce_ssl=True)
        if settings.email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.email))

        period = Duration.minutes(settings.period_minutes)
        requests = front.metrics(period)

        def own(name: str, statistic: str) -> cw.Metric:
            return cw.Metric(
                namespace=NAMESPACE,
                metric_name=name,
                dimensions_map=dimensions(function),
                statistic=statistic,
                period=period,
            )

        metrics = {
            "Api5xx": (requests.server_errors,
                       settings.api_5xx_errors, "API returned 5xx responses"),
            "FunctionErrors": (function.metric_errors(period=period, statistic="Sum"),
                               settings.function_errors, "prediction function errors"),
            "Throttles": (function.metric_throttles(period=period, statistic="Sum"),
                          settings.throttles, "prediction function throttled"),
            "LatencyP99": (requests.latency("p99"),
                           settings.p99_latency_ms, "API p99 latency (ms)"),
        }  # fmt: skip
        # The function's own metrics: each alarm is named after its metric.
        own_alarms = {
            "model_load_failures": ("Sum", settings.model_load_failures,
                                    "model versions failed to load"),
            "registry_failures": ("Sum", settings.registry_failures, "registry reads failed"),
            "served_last_good": ("Sum", settings.served_last_good,
                                 "answers served from a last good version"),
            "registry_staleness": ("Maximum", settings.registry_staleness_seconds,
                                   "seconds since a sandbox last read the registry"),
            # Always an operator's mistake: one is enough (the model serves as if it were off).
            "invalid_settings": ("Maximum", 1, "per-model settings the registry cannot read"),
        }  # fmt: skip
        for which, (statistic, threshold, what) in own_alarms.items():
            metrics[NAMES[which]] = (own(NAMES[which], statistic), threshold, what)
        self.alarms: list[cw.Alarm] = []
        for name, (metric, threshold, what) in metrics.items():
            alarm = metric.create_alarm(
                self,
                name,
                alarm_description=f"tickerserve: {what} >= {threshold}",
                threshold=threshold,
                evaluation_periods=settings.evaluation_periods,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # No traffic is not an outage.
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            alarm.add_ok_action(cw_actions.SnsAction(self.topic))
            self.alarms.append(alarm)

        warnings = self._request_warnings(function, period, settings.request_warnings)
        self.alarms.append(warnings.create_alarm(
            self,
            NAMES["request_warnings"],
            alarm_description=f"tickerserve: one model's answers carried request warnings >= "
            f"{settings.request_warnings} (a feature out of its version's range, or missing "
            "where its reference had none)",
            threshold=settings.request_warnings,
            evaluation_periods=settings.evaluation_periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,  # no warnings: no line
        ))  # fmt: skip
        for action in (self.alarms[-1].add_alarm_action, self.alarms[-1].add_ok_action):
            action(cw_actions.SnsAction(self.topic))

        self.dashboard = cw.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Requests and errors",
                left=[requests.requests, requests.client_errors, requests.server_errors],
            ),
            cw.GraphWidget(
                title="Latency (ms)",
                left=[requests.latency(p) for p in ("p50", "p90", "p99")],
                right=[function.metric_duration(period=period, statistic="p99")],
            ),
            cw.GraphWidget(
                title="Function",
                left=[
                    function.metric_invocations(period=period, statistic="Sum"),
                    function.metric_errors(period=period, statistic="Sum"),
                    function.metric_throttles(period=period, statistic="Sum"),
                ],
                right=[function.metric("ConcurrentExecutions", period=period, statistic="Maximum")],
            ),
            cw.GraphWidget(
                title="Hidden failures (served from memory or a last good version)",
                left=[
                    *(
                        own(NAMES[which], "Sum")
                        for which in (
                            "model_load_failures",
                            "registry_failures",
                            "served_last_good",
                        )
                    ),
                    own(NAMES["invalid_settings"], "Maximum"),
                ],
                right=[own(NAMES["registry_staleness"], "Maximum")],
                right_y_axis=cw.YAxisProps(label="registry age (s)", show_units=False),
            ),
            cw.GraphWidget(
                title="Request warnings per model (rows unlike the version's reference)",
                left=[warnings],
                left_annotations=[
                    cw.HorizontalAnnotation(
                        value=settings.request_warnings, label="alarm", color="#d62728"
                    )
                ],
                legend_position=cw.LegendPosition.RIGHT,
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms)),
        )

    def watch_outcomes(self, *, function: lambda_.IFunction, settings: AlarmSettings) -> cw.Alarm:
        """The outcomes function's errors: outcomes it could not record are evidence lost."""
        period = Duration.minutes(settings.period_minutes)
        alarm = function.metric_errors(period=period, statistic="Sum").create_alarm(
            self,
            "OutcomesErrors",
            alarm_description="tickerserve: outcomes function errors >= "
            f"{settings.function_errors}",
            threshold=settings.function_errors,
            evaluation_periods=settings.evaluation_periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm

    @staticmethod
    def _request_warnings(
        function: lambda_.IFunction, period: Duration, threshold: int
    ) -> cw.MathExpression:
        """Each model's request warnings per period: a Metrics Insights query grouped by the
        model dimension (an alarm on it judges every returned series on its own)."""
        schema = ", ".join(
            f'"{key}"'
            for key in (
                PREDICTION_METRICS["service_dimension"],
                PREDICTION_METRICS["function_dimension"],
                MODEL,
            )
        )
        query = (
            f'SELECT SUM("{NAMES["request_warnings"]}") FROM SCHEMA("{NAMESPACE}", {schema}) '
            f'WHERE "{PREDICTION_METRICS["function_dimension"]}" = '
            f"'{function.function_name}' GROUP BY \"{MODEL}\""
        )
        return cw.MathExpression(
            expression=query,
            using_metrics={},
            period=period,
            label=f"request warnings (alarm >= {threshold} per period)",
        )

    def watch_capture(
        self,
        *,
        settings: AlarmSettings,
        delivery: firehose.IDeliveryStream | None,
        buffer_seconds: int,
    ) -> list[cw.Alarm]:
        """Alarms and a dashboard row for shadow, canary and capture: the function's
        ``ShadowFailures``, ``CanaryFallbacks`` and ``CaptureFailures``, and, when capture is
        deployed, the capture pipeline's Firehose delivery into S3 (failed writes, records
        waiting longer than their buffer allows)."""
        period = Duration.minutes(settings.period_minutes)
        above = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD

        def own(name: str) -> cw.Metric:
            return cw.Metric(
                namespace=NAMESPACE,
                metric_name=name,
                dimensions_map=dimensions(self.function),
                statistic="Sum",
                period=period,
            )

        metrics = {}
        for key, what in (
            ("shadow_failures", "shadow challenger rows that could not be scored"),
            ("canary_fallbacks", "canary requests the champion answered instead"),
            ("capture_failures", "capture records that could not be written"),
        ):
            metrics[NAMES[key]] = (own(NAMES[key]), getattr(settings, key), above, what)
        if delivery is not None:
            # With dynamic partitioning a record may take 1.5 buffers to land; beyond twice the
            # buffer (and Firehose's own 15-minute limit) delivery is failing or stuck.
            late = max(900, 2 * buffer_seconds)
            metrics |= {
                "CaptureDeliveryFailed": (
                    delivery.metric("DeliveryToS3.Success", statistic="Minimum", period=period),
                    1, cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                    "capture: share of Firehose writes to S3 that succeeded"),
                "CaptureDeliveryLate": (
                    delivery.metric(
                        "DeliveryToS3.DataFreshness", statistic="Maximum", period=period
                    ),
                    late, above, "capture: age (s) of the oldest record not yet in S3"),
            }  # fmt: skip
        alarms: list[cw.Alarm] = []
        for name, (metric, threshold, comparison, what) in metrics.items():
            alarm = metric.create_alarm(
                self,
                name,
                alarm_description=f"tickerserve: {what} "
                f"{'>=' if comparison == above else '<'} {threshold}",
                threshold=threshold,
                evaluation_periods=settings.evaluation_periods,
                comparison_operator=comparison,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,  # no traffic is no fault
            )
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            alarm.add_ok_action(cw_actions.SnsAction(self.topic))
            alarms.append(alarm)
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Shadow, canary and capture",
                left=[
                    own(NAMES[key])
                    for key in ("shadow_failures", "canary_fallbacks", "capture_failures")
                ],
                right=[]
                if delivery is None
                else [
                    delivery.metric(
                        "DeliveryToS3.DataFreshness", statistic="Maximum", period=period
                    )
                ],
                right_y_axis=cw.YAxisProps(label="capture delivery age (s)", show_units=False),
            ),
            cw.AlarmStatusWidget(title="Shadow, canary and capture alarms", alarms=alarms),
        )
        return alarms
