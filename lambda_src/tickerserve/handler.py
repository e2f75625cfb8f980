"""AWS Lambda entry points: ``tickerserve.handler.lambda_handler`` (the prediction function)
and ``tickerserve.handler.outcomes_handler`` (the outcomes function).

Init (once per sandbox): settings from the environment, the model service (its S3 client is
created on first use), optional preload, SnapStart hooks (see ``tickerserve.serving.snapstart``:
the snapshot also holds both APIs' Powertools resolvers, which a cold start builds only for a
request other than ``POST /predict``).
Each invocation: dispatch to the API. The two functions run the same code with different
entry points (``Api.entry``): predicting and writing outcomes are separate permissions, so
neither function does the other's work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tickerserve.http.api import Api
from tickerserve.serving import snapstart
from tickerserve.serving.capture import DISABLED, Capture, LogSink
from tickerserve.serving.observability import (
    INVALID_SETTINGS,
    REGISTRY_STALENESS,
    count,
    count_for_model,
    metrics,
    with_request_context,
)
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SETTINGS = Settings.from_env()
SERVICE = ModelService(SETTINGS, on_event=count, on_model_event=count_for_model)
# Capture records leave as log lines (CloudWatch Logs -> Firehose -> the capture bucket).
CAPTURE = Capture(LogSink(), on_event=count) if SETTINGS.capture else DISABLED
API = Api(SERVICE, capture=CAPTURE, entry="prediction")
OUTCOMES_API = Api(SERVICE, entry="outcomes")
if SETTINGS.preload:
    SERVICE.preload(SETTINGS.preload)
snapstart.register(SERVICE, API.prepare_snapshot, OUTCOMES_API.prepare_snapshot)


@metrics.log_metrics(capture_cold_start_metric=True)
@with_request_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    try:
        return API.handle(event, context)
    finally:  # after the request's registry re-check had its chance: what it left us with
        REGISTRY_STALENESS.sample(SERVICE.registry_age())
        INVALID_SETTINGS.sample(SERVICE.invalid_settings or None)  # nothing while there are none


@with_request_context
def outcomes_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    """The outcomes function: ``POST /outcomes`` and ``{"action": "outcomes", ...}`` only."""
    return OUTCOMES_API.handle(event, context)
