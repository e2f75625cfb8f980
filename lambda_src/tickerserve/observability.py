"""Structured logging and CloudWatch metrics (Powertools), shared by handler and runtime.

Runtime modules log through the standard library; their records are emitted as
Powertools JSON with the request's correlation id.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

SERVICE_NAME = "tickerserve"
NAMESPACE = "Tickerserve"

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE_NAME)
copy_config_to_registered_loggers(source_logger=logger, include={"tickerserve"})
logging.getLogger("tickerserve").setLevel(logger.log_level)


def count(name: str, value: float = 1) -> None:
    """Add to a counter metric flushed at the end of the invocation."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
