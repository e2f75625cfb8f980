"""Structured logging and CloudWatch metrics (Powertools), shared by handler and runtime.

Runtime modules log through the standard library; their records are emitted as
Powertools JSON with the request's correlation id.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from tickerserve.metric_names import PREDICTION

# Names from metric_names.json, which the stack's alarms and dashboard are built from.
SERVICE_NAME = PREDICTION.service
NAMESPACE = PREDICTION.namespace

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE_NAME)
# Several stages share an account: each function's metrics (and alarms) are its own.
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    metrics.set_default_dimensions(
        **{PREDICTION.function_dimension: os.environ["AWS_LAMBDA_FUNCTION_NAME"]}
    )
copy_config_to_registered_loggers(source_logger=logger, include={"tickerserve"})
# Warm invocations usually add no metric (counters move only on loads, reloads and failures);
# Powertools would warn about that on every flush.
warnings.filterwarnings("ignore", message="No application metrics to publish")
logging.getLogger("tickerserve").setLevel(logger.log_level)


def count(name: str, value: float = 1) -> None:
    """Add to a counter metric flushed at the end of the invocation."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_for_model(name: str, model: str, value: float, *, fd: int = 1) -> None:
    """Add to a per-model counter: one CloudWatch embedded-metric-format line of its own (the
    model is a dimension the invocation's other metrics do not carry), written at once to the
    function's stdout. Called only with something to count (request warnings), so a healthy
    warm request writes no line. Its dimensions are the invocation's (``service``, and
    ``function`` when deployed) and the model's, as the stack's alarm query names them.

    Written here rather than with Powertools' ``single_metric``, which costs about 20 us a line
    (its validation, the ``json`` module and ``print``; 57 us on a loaded machine) against 2 us
    for this one: a client whose every row warns would otherwise pay a tenth of a prediction.
    """
    dimensions = {PREDICTION.service_dimension: SERVICE_NAME, **metrics.default_dimensions}
    dimensions[PREDICTION.model_dimension] = model
    line = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": MetricUnit.Count.value}],
                }
            ],
        },
        **dimensions,
        name: value,
    }
    data = memoryview(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    while data:  # one write of a whole short line: atomic on the runtime's pipe
        data = data[os.write(fd, data) :]


class Gauge:
    """A value sampled at most once per ``every`` seconds per sandbox (at an invocation's
    end), so a healthy function does not add a metric line to every request."""

    def __init__(
        self,
        name: str,
        unit: MetricUnit,
        every: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.unit, self.every, self.clock = name, unit, every, clock
        self._next = 0.0

    def sample(self, value: float | None) -> bool:
        """Emit ``value`` if it is due (and known); True when it was emitted."""
        now = self.clock()
        if value is None or now < self._next:
            return False
        self._next = now + self.every
        metrics.add_metric(name=self.name, unit=self.unit, value=round(value, 3))
        return True


# How stale the registry a sandbox serves is (seconds since its last successful read),
# sampled once a minute: the alarm takes the maximum over its period.
REGISTRY_STALENESS = Gauge(PREDICTION.registry_staleness, MetricUnit.Seconds, every=60.0)
# How many per-model settings (capture, shadow, canary) the registry a sandbox serves holds but
# cannot read (each acts as off for its model alone), sampled once a minute while there are any.
INVALID_SETTINGS = Gauge(PREDICTION.invalid_settings, MetricUnit.Count, every=60.0)


Handler = Callable[[Any, Any], Any]


def with_request_context(handler: Handler) -> Handler:
    """Tag log lines with the Lambda context and the API Gateway request id.

    Like ``Logger.inject_lambda_context``, but the sandbox's static keys are set once and an
    invocation only updates two keys: the full decorator costs 20-30 us per warm request,
    a tenth of a prediction's budget.
    """
    invocations = 0

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        nonlocal invocations
        invocations += 1
        if invocations <= 2:  # the first call is the cold start; the second clears the flag
            logger.append_keys(
                cold_start=invocations == 1,
                function_name=getattr(context, "function_name", None),
                function_memory_size=getattr(context, "memory_limit_in_mb", None),
                function_arn=getattr(context, "invoked_function_arn", None),
            )
        request = event.get("requestContext") if isinstance(event, dict) else None
        logger.append_keys(
            function_request_id=getattr(context, "aws_request_id", None),
            correlation_id=request.get("requestId") if isinstance(request, dict) else None,
        )
        return handler(event, context)

    return wrapper
