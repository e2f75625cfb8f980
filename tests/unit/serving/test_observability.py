"""Logs and metrics: counters and sampled gauges land in the invocation's metric set, and each
log line carries the Lambda context and the API Gateway request id as correlation id."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from tests.support import FakeClock, load_event
from tickerserve.metric_names import PREDICTION
from tickerserve.serving.observability import (
    Gauge,
    count,
    count_for_model,
    logger,
    metrics,
    with_request_context,
)


@pytest.fixture(autouse=True)
def no_leftover_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def context(request_id: str) -> SimpleNamespace:
    return SimpleNamespace(
        function_name="tickerserve-dev",
        memory_limit_in_mb=1024,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:tickerserve-dev",
        aws_request_id=request_id,
    )


def test_counters_add_up_within_an_invocation():
    count("ModelLoads")
    count("ModelLoads", 2)
    assert metrics.metric_set["ModelLoads"]["Unit"] == "Count"
    assert metrics.metric_set["ModelLoads"]["Value"] == [1.0, 2.0]


def test_a_gauge_is_sampled_at_most_once_per_period_and_never_when_unknown():
    clock = FakeClock()
    gauge = Gauge("Staleness", MetricUnit.Seconds, every=60.0, clock=clock)
    assert gauge.sample(None) is False
    assert gauge.sample(12.34567) is True
    clock.advance(59)
    assert gauge.sample(50.0) is False
    clock.advance(1)
    assert gauge.sample(80.0) is True
    assert metrics.metric_set["Staleness"]["Value"] == [12.346, 80.0]
    assert metrics.metric_set["Staleness"]["Unit"] == "Seconds"


def test_log_lines_carry_the_context_and_the_correlation_id():
    # Given a handler that records the keys its log lines carry
    seen: list[dict[str, object]] = []

    @with_request_context
    def handler(event, ctx):
        seen.append(dict(logger.get_current_keys()))
        return "ok"

    # When it is invoked cold, then warm without and with an API Gateway event
    event = load_event("rest_predict.json")
    assert handler(event, context("lambda-1")) == "ok"
    assert handler({"action": "health"}, context("lambda-2")) == "ok"
    assert handler(event, context("lambda-3")) == "ok"
    # Then only the first is the cold start, and each carries its own ids
    assert [keys["cold_start"] for keys in seen] == [True, False, False]
    assert [keys["function_request_id"] for keys in seen] == ["lambda-1", "lambda-2", "lambda-3"]
    gateway_id = event["requestContext"]["requestId"]
    assert [keys["correlation_id"] for keys in seen] == [gateway_id, None, gateway_id]
    assert seen[0]["function_name"] == "tickerserve-dev"
    assert seen[0]["function_memory_size"] == 1024


def test_a_per_model_count_is_its_own_line_with_the_model_as_a_dimension(capfd):
    # One EMF line of its own on stdout (the invocation's other metrics carry no model
    # dimension), as CloudWatch reads the embedded metric format
    count_for_model(PREDICTION.request_warnings, "etfs/SMH", 3)
    (line,) = capfd.readouterr().out.splitlines()
    emf = json.loads(line)
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == PREDICTION.namespace
    assert directive["Metrics"] == [{"Name": "RequestWarnings", "Unit": "Count"}]
    assert directive["Dimensions"] == [["service", "Model"]]
    assert (emf["service"], emf["Model"], emf["RequestWarnings"]) == ("tickerserve", "etfs/SMH", 3)
    assert abs(emf["_aws"]["Timestamp"] / 1000 - time.time()) < 60
    assert metrics.metric_set == {}  # nothing left for the invocation's own flush


def test_deployed_a_per_model_count_carries_the_function_as_the_alarm_query_expects(capfd):
    # The stack's alarm reads SCHEMA(namespace, service, function, Model): exactly these
    metrics.set_default_dimensions(**{PREDICTION.function_dimension: "tickerserve-prod"})
    try:
        count_for_model(PREDICTION.request_warnings, "stocks/universal", 1)
    finally:
        metrics.clear_default_dimensions()
    emf = json.loads(capfd.readouterr().out)
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert sorted(directive["Dimensions"][0]) == sorted(
        [PREDICTION.service_dimension, PREDICTION.function_dimension, PREDICTION.model_dimension]
    )
    assert (emf["function"], emf["Model"]) == ("tickerserve-prod", "stocks/universal")
