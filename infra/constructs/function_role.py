"""A Lambda function's own role: assumed by Lambda, allowed to write only its own log group.

An explicit role instead of the default one, which carries the broad
AWSLambdaBasicExecutionRole managed policy (any log group in the account); each function adds
the data permissions it needs to it.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct


def function_role(scope: Construct, log_group: logs.LogGroup, description: str) -> iam.Role:
    """Role ``Role`` under ``scope``, writing to ``log_group`` and nothing else yet."""
    role = iam.Role(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    log_group.grant(role, "logs:CreateLogStream", "logs:PutLogEvents")
    return role
