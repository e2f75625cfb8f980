"""CloudWatch Logs retention: the config's days as the CDK enum, and the stacks' log groups."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import LOG_RETENTION_DAYS

# RetentionDays lists CloudWatch's finite periods in the same order (ONE_DAY ... TEN_YEARS).
RETENTION = dict(
    zip(LOG_RETENTION_DAYS, list(logs.RetentionDays)[: len(LOG_RETENTION_DAYS)], strict=True)
)


def log_retention(days: int) -> logs.RetentionDays:
    """The CDK retention period for ``days`` (one of ``LOG_RETENTION_DAYS``)."""
    return RETENTION[days]


def retained_log_group(scope: Construct, construct_id: str, days: int) -> logs.LogGroup:
    """A log group kept ``days`` days and removed with its stack (logs are not data to keep)."""
    return logs.LogGroup(
        scope, construct_id, retention=log_retention(days), removal_policy=RemovalPolicy.DESTROY
    )
