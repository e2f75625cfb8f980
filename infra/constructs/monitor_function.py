"""The monitor function: its own asset and role, an EventBridge Scheduler schedule, alarms on
drift and on a recommended switch, and dashboard widgets over every model's series.

Metric names and the namespace come from the runtime's ``metric_names.json`` (the file
``tickerserve.monitor.cloudwatch`` emits from), the bucket's names from its ``layout.json``,
and the environment's names are the ones ``tickerserve.settings.MONITOR_ENV_NAMES`` lists (a
test checks; infra never imports tickerserve).
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.bytecode import find_python
from infra.config import MonitorSettings
from infra.constructs.dependency_layer import RUNTIME, lambda_architecture
from infra.constructs.function_role import function_role
from infra.constructs.log_retention import retained_log_group
from infra.constructs.nag import nag_spelling
from infra.function_asset import CODE_ROOT, MONITOR_FILES, stage_function_code
from infra.runtime_contract import LAYOUT_NAMES, MONITOR_METRIC_NAMES, MONITOR_METRICS

HANDLER = "tickerserve.monitor.handler.lambda_handler"
NAMESPACE: str = MONITOR_METRICS["namespace"]
DIMENSION: str = MONITOR_METRICS["model_dimension"]
FIGURES = MONITOR_METRIC_NAMES
MEMORY_MB = 2048
TIMEOUT_MINUTES = 15
DAY = Duration.days(1)


class MonitorFunction(Construct):
    """Runs ``tickerserve.monitor`` on a schedule against the model (and capture) bucket;
    ``settings`` is the ``monitor`` section of the stage's config."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        layer: lambda_.ILayerVersion,
        architecture: str,
        registry_key: str,
        log_retention_days: int,
        topic: sns.ITopic,
        dashboard: cw.Dashboard,
        settings: MonitorSettings,
        capture_bucket: s3.IBucket | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        capture = capture_bucket or bucket
        self.log_group = retained_log_group(self, "Logs", log_retention_days)
        self.role = function_role(
            self,
            self.log_group,
            "tickerserve monitor: read models, capture, outcomes; append history",
        )
        names = LAYOUT_NAMES
        history = bucket.arn_for_objects(names.monitoring_history_objects)
        reads = [
            bucket.arn_for_objects(names.model_objects),
            bucket.arn_for_objects(names.baseline_objects),
            bucket.arn_for_objects(f"{names.outcomes_prefix}*"),
            bucket.arn_for_objects(f"{names.metadata_prefix}*"),
            capture.arn_for_objects(f"{names.capture_prefix}*"),
        ]
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=reads))
        # The history, and the salt request ids are keyed with (written once, create-only).
        writes = [history, bucket.arn_for_objects(names.monitor_salt_key)]
        if settings.auto_promote:
            writes.append(bucket.arn_for_objects(registry_key))
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=writes))
        # Removes only its own redundant archive after losing a rotation race.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:DeleteObject"],
                resources=[bucket.arn_for_objects(names.monitoring_archive_objects)],
            )
        )
        for listed in {bucket, capture}:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[listed.bucket_arn],
                    conditions={
                        "StringLike": {
                            "s3:prefix": [
                                f"{names.capture_prefix}*",
                                f"{names.outcomes_prefix}*",
                                f"{names.metadata_prefix}*",
                                names.model_objects,
                            ]
                        }
                    },
                )
            )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_architecture(architecture),
            handler=HANDLER,
            # Sources and CPython 3.13 bytecode, as the prediction function ships them (the
            # one warning when Python 3.13 is missing comes from the prediction function).
            code=lambda_.Code.from_asset(
                str(stage_function_code(CODE_ROOT, MONITOR_FILES, python=find_python()).path)
            ),
            layers=[layer],
            role=self.role,
            memory_size=MEMORY_MB,
            timeout=Duration.minutes(TIMEOUT_MINUTES),
            # One run at a time: a retried invocation must not race the scheduled one.
            reserved_concurrent_executions=1,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            description="tickerserve: daily drift, performance and champion vs challenger",
            # Exactly the names tickerserve.settings.MONITOR_ENV_NAMES lists; a test checks it.
            environment={
                "TICKERSERVE_BUCKET": bucket.bucket_name,
                "TICKERSERVE_STORE_PATH": "",
                "TICKERSERVE_REGISTRY_KEY": registry_key,
                "TICKERSERVE_CAPTURE_BUCKET": capture.bucket_name,
                "TICKERSERVE_MONITOR_DAYS": str(settings.days),
                "TICKERSERVE_MONITOR_THRESHOLDS": json.dumps(
                    settings.thresholds(), separators=(",", ":")
                ),
                "TICKERSERVE_MONITOR_AUTO_PROMOTE": "true" if settings.auto_promote else "false",
            },
        )
        # Its own role (rather than the one CDK would share between schedule targets), so its
        # single grant can be reviewed here.
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="tickerserve monitor schedule: invoke the monitor function",
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule=scheduler.ScheduleExpression.expression(settings.schedule),
            enabled=settings.enabled,
            description="tickerserve monitor run",
            target=targets.LambdaInvoke(
                self.function,
                input=scheduler.ScheduleTargetInput.from_object(
                    {"scheduled_time": scheduler.ContextAttribute.scheduled_time}
                ),
                retry_attempts=2,
                max_event_age=Duration.hours(6),
                role=self.scheduler_role,
            ),
        )
        self.alarms = self._alarms(topic, settings)
        self._widgets(dashboard, settings)
        self._acknowledge(bucket, capture)

    def _metric(self, name: str, statistic: str = "Maximum") -> cw.Metric:
        """The worst over all models (the series without a dimension)."""
        return cw.Metric(namespace=NAMESPACE, metric_name=name, statistic=statistic, period=DAY)

    def _alarms(self, topic: sns.ITopic, settings: MonitorSettings) -> list[cw.Alarm]:
        specs = {
            "FeatureDrift": (self._metric(FIGURES["feature_drift_max"]), settings.psi_drift,
                             cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                             f"a model's input drifted (feature PSI >= {settings.psi_drift})"),
            "PerformanceDrift": (self._metric(FIGURES["drift_pct"]), settings.retrain_drift_pct,
                                 cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                 f"a model degraded more than {settings.retrain_drift_pct}% "
                                 "against its baseline: retrain"),
            "EstimatedPerformanceDrift": (
                self._metric(FIGURES["estimated_drift_pct"]), settings.retrain_drift_pct,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                f"a model's accuracy estimated from its confidence (before outcomes arrive) is "
                f"more than {settings.retrain_drift_pct}% under its baseline's",
            ),
            # named after its metric
            FIGURES["switch_recommended"]: (self._metric(FIGURES["switch_recommended"]), 1,
                                  cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                                  "a challenger beat its champion: switch recommended"),
            "MonitorErrors": (self.function.metric_errors(period=DAY, statistic="Sum"), 1,
                              cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                              "the monitor function failed"),
        }  # fmt: skip
        alarms = []
        for name, (metric, threshold, operator, what) in specs.items():
            alarm = metric.create_alarm(
                self,
                name,
                alarm_description=f"tickerserve monitor: {what}",
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=operator,
                # No run (or no model with that figure) is not an alarm.
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            alarm.add_ok_action(cw_actions.SnsAction(topic))
            alarms.append(alarm)
        return alarms

    def _widgets(self, dashboard: cw.Dashboard, settings: MonitorSettings) -> None:
        """One graph per figure with a line per model: a SEARCH query, so models added
        later appear without a redeploy (not one widget per model). The bands are the
        configured thresholds the alarms use."""

        def per_model(name: str, label: str) -> cw.MathExpression:
            return cw.MathExpression(
                expression=f"SEARCH('{{{NAMESPACE},{DIMENSION}}} MetricName=\"{name}\"', "
                f"'Maximum', 86400)",
                using_metrics={},
                label=label,
                period=DAY,
            )

        dashboard.add_widgets(
            cw.GraphWidget(
                title="Monitor: largest feature PSI per model",
                left=[per_model(FIGURES["feature_drift_max"], "PSI")],
                left_annotations=[cw.HorizontalAnnotation(value=settings.psi_drift, label="drift")],
            ),
            cw.GraphWidget(
                title="Monitor: drift % vs baseline per model",
                left=[
                    per_model(FIGURES["drift_pct"], "drift %"),
                    per_model(FIGURES["estimated_drift_pct"], "estimated drift %"),
                ],
                left_annotations=[
                    cw.HorizontalAnnotation(value=settings.retrain_drift_pct, label="retrain")
                ],
            ),
            cw.GraphWidget(
                title="Monitor: challenger win rate per model",
                left=[per_model(FIGURES["challenger_win_rate"], "win rate")],
                left_annotations=[
                    cw.HorizontalAnnotation(value=settings.switch_win_rate, label="switch")
                ],
            ),
            cw.GraphWidget(
                title="Monitor: output PSI and drifted feature share per model",
                left=[
                    per_model(FIGURES["output_psi"], "output PSI"),
                    per_model(FIGURES["drifted_feature_share"], "drifted share"),
                ],
            ),
            cw.AlarmStatusWidget(title="Monitor alarms", alarms=list(self.alarms)),
        )

    def _acknowledge(self, bucket: s3.IBucket, capture: s3.IBucket) -> None:
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="Pinned to python3.13 on purpose: the shared dependency layer is built "
                "for CPython 3.13; runtime and layer move to a newer Python together",
            )
        )

        def _spell(arn: str) -> str:
            return nag_spelling(self, arn)

        acks = [
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="cloudwatch:PutMetricData has no resource-level permissions (limited by "
                "the cloudwatch:namespace condition to Tickerserve/Monitor); X-Ray has none",
            )
        ]
        names = LAYOUT_NAMES
        patterns = {
            names.model_objects: "versions of any model (model names are data)",
            names.baseline_objects: "baselines of any model version",
            f"{names.outcomes_prefix}*": "the realized outcomes the monitor joins",
            f"{names.metadata_prefix}*": "the registry and the histories it reads",
            names.monitoring_history_objects: "the monitoring history and its rotated archives",
            names.monitoring_archive_objects: "its own redundant rotation archive",
        }
        for pattern, what in patterns.items():
            acks.append(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{_spell(bucket.arn_for_objects(pattern))}]",
                    reason=f"Object keys under a prefix: {what}; the narrowest grant that covers "
                    "models published after deployment",
                )
            )
        captured = _spell(capture.arn_for_objects(f"{names.capture_prefix}*"))
        acks.append(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{captured}]",
                reason="Capture objects are partitioned by day "
                f"({names.capture_prefix}{names.partition_key}=YYYY-MM-DD/): "
                "read-only, the capture prefix only",
            )
        )
        Validations.of(self.role).acknowledge(*acks)
        function_id = Stack.of(self).get_logical_id(
            self.function.node.default_child  # type: ignore[arg-type]
        )
        Validations.of(self.scheduler_role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{function_id}.Arn>:*]",
                reason="lambda:InvokeFunction on the monitor function and its versions (CDK's "
                "grantInvoke); the schedule can invoke nothing else",
            )
        )
