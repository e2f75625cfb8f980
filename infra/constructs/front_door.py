"""What every front door (``apiType``: REST API, HTTP API or function URL) gives the stack.

The function answers the same bodies and codes behind each; ``POST /outcomes`` reaches the
outcomes function instead, under IAM authorization whatever the stage's ``authMode``. The front
doors differ in what happens before a function runs (authorization, throttling, the gateway's
own errors, access logs) and in the metrics that count requests. Each front door construct
offers the same few things, so the serving stack, the alarms and the dashboard do not care which
one a stage deploys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_logs as logs

from infra.config import ApiType


@dataclass(frozen=True)
class Route:
    """One route of the API, as API Gateway spells it (``/models/{ticker}``)."""

    method: str
    path: str


# The handler's routes (tickerserve.http.api.ROUTES; a test checks that they agree).
ROUTES = (
    Route("POST", "/predict"),
    Route("POST", "/predict/batch"),
    Route("GET", "/models"),
    Route("GET", "/models/{ticker}"),
    Route("GET", "/health"),
    # The handler validates outcomes item by item (per-item errors, never a whole 400).
    Route("POST", "/outcomes"),
)
# Served by the outcomes function, always under IAM authorization (issue 19): the permission
# to predict never includes the permission to write the outcomes the monitor judges by.
OUTCOMES = Route("POST", "/outcomes")


@dataclass(frozen=True)
class RequestMetrics:
    """A front door's request metrics over one period: what the alarms and dashboard watch."""

    requests: cw.Metric
    client_errors: cw.Metric
    server_errors: cw.Metric
    latency: Callable[[str], cw.Metric]  # by statistic: "p50", "p99"


class FrontDoor(Protocol):
    """The part of a front door construct the serving stack uses."""

    @property
    def api_type(self) -> ApiType: ...

    @property
    def url(self) -> str:
        """The base URL callers append a route to (ends with ``/``)."""
        ...

    @property
    def outcomes_url(self) -> str:
        """The base URL outcome writers append ``outcomes`` to (the same as ``url`` behind
        API Gateway; a function URL stage has a second URL, on the outcomes function)."""
        ...

    @property
    def signing_service(self) -> str:
        """The service a SigV4 signature names: ``execute-api`` or ``lambda``."""
        ...

    @property
    def invoke_actions(self) -> tuple[str, ...]:
        """The IAM actions a caller needs on ``route_arn(route)``."""
        ...

    @property
    def access_logs(self) -> logs.ILogGroup | None: ...

    def route_arn(self, route: Route) -> str:
        """The resource an IAM policy names to allow ``route`` (and only it, where the front
        door can tell routes apart)."""
        ...

    def metrics(self, period: Duration) -> RequestMetrics: ...
