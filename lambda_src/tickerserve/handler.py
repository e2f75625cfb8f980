"""AWS Lambda entry point: ``tickerserve.handler.lambda_handler``.

Init (once per sandbox): settings from the environment, the model service (its S3 client is
created on first use), optional preload, SnapStart hooks (see ``tickerserve.serving.snapstart``).
Each invocation: dispatch to the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tickerserve.http.api import Api
from tickerserve.serving import snapstart
from tickerserve.serving.capture import DISABLED, Capture, LogSink
from tickerserve.serving.observability import (
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
API = Api(SERVICE, capture=CAPTURE)
if SETTINGS.preload:
    SERVICE.preload(SETTINGS.preload)
snapstart.register(SERVICE)


@metrics.log_metrics(capture_cold_start_metric=True)
@with_request_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    try:
        return API.handle(event, context)
    finally:  # after the request's registry re-check had its chance: what it left us with
        REGISTRY_STALENESS.sample(SERVICE.registry_age())
