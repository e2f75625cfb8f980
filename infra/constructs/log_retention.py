"""CloudWatch Logs retention: the config's days as the CDK enum the constructs take."""

from __future__ import annotations

from aws_cdk import aws_logs as logs

from infra.config import LOG_RETENTION_DAYS

# RetentionDays lists CloudWatch's finite periods in the same order (ONE_DAY ... TEN_YEARS).
RETENTION = dict(
    zip(LOG_RETENTION_DAYS, list(logs.RetentionDays)[: len(LOG_RETENTION_DAYS)], strict=True)
)


def log_retention(days: int) -> logs.RetentionDays:
    """The CDK retention period for ``days`` (one of ``LOG_RETENTION_DAYS``)."""
    return RETENTION[days]
