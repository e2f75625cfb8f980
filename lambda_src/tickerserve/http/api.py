"""HTTP API over the runtime: API Gateway REST (v1) and HTTP (v2) proxy events, function URL
events, and direct invocation with the same JSON bodies.

Routes (``routes.ROUTES``): POST /predict, POST /predict/batch, POST /outcomes, GET /models,
GET /models/{ticker}, GET /health. POST /predict, the warm path, is answered straight from the
event dict (``Api._predict_lane``): its headers and body read as Powertools reads them, the
response written in the shape its resolver writes (``proxy``), byte for byte the same (a test
compares them event by event). Every other request goes to Powertools' resolvers
(``resolvers``), built on the first event that needs one, so the prediction function's import
and its first prediction never load Powertools' event handler.
Deployed, predicting and writing outcomes are separate entry points (``Entry``): the prediction
function refuses outcomes and the outcomes function serves nothing else, each with a 403
``wrong_entry_point`` that says where to go, so the permission to invoke one never grants the
other. The local server (``tickerserve serve``) is both.
Every client mistake is a 4xx with ``{"error": {"code", "message"}}``. With ``docs=True`` (the
local server, never the Lambda: generating the document imports pydantic) it also serves the
OpenAPI document at /openapi.json and Swagger UI at /docs.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from tickerserve.errors import BadRequest, NotFound, TickerserveError, WrongEntryPoint
from tickerserve.http import events, proxy
from tickerserve.http.bodies import MAX_BODY_BYTES, batch_body, json_body, parse_json
from tickerserve.http.routes import DOCS_PATH, OPENAPI_PATH, PREDICT_PATH, ROUTES
from tickerserve.layout import normalize_ticker, validate_signal, validate_timeframe
from tickerserve.serving import request_ids
from tickerserve.serving.capture import DISABLED, Capture
from tickerserve.serving.observability import logger
from tickerserve.serving.predict import predict, predict_batch
from tickerserve.serving.service import ModelService
from tickerserve.serving.traffic import Challengers
from tickerserve.storage.deadline import function_time

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = [
    "DOCS_PATH",
    "MAX_BODY_BYTES",
    "OPENAPI_PATH",
    "ROUTES",
    "Api",
    "Entry",
    "batch_body",
    "parse_json",
]

# What an Api answers: everything (the local server), predictions and model descriptions only
# (the prediction function), or outcomes only (the outcomes function).
Entry = Literal["all", "prediction", "outcomes"]
# Powertools' resolvers print every event and their middleware frames with POWERTOOLS_DEV on
# (read when one is built); the lane prints nothing, so with it on every request resolves.
_FALSE = ("", "0", "n", "no", "f", "false", "off")


class Api:
    """The routes, bound to one ``ModelService``."""

    def __init__(
        self,
        service: ModelService,
        *,
        docs: bool = False,
        capture: Capture = DISABLED,
        entry: Entry = "all",
    ) -> None:
        self.service = service
        self.entry = entry
        self.capture = capture
        self.challengers = Challengers(service)  # shadow aliases, scored beside the answer
        self.invocations = 0
        self.docs = docs
        self._lane = os.environ.get("POWERTOOLS_DEV", "0").strip().lower() in _FALSE

    # Powertools' resolvers, each built (Powertools' event handler imported) on first use.
    @cached_property
    def rest(self) -> ApiGatewayResolver:
        from tickerserve.http import resolvers

        return resolvers.build(self, "rest", docs=self.docs)

    @cached_property
    def http(self) -> ApiGatewayResolver:
        from tickerserve.http import resolvers

        return resolvers.build(self, "http", docs=self.docs)

    def prepare_snapshot(self) -> None:
        """Build both resolvers now (SnapStart's before-snapshot hook): a restored sandbox then
        answers every route without importing Powertools' event handler."""
        self.rest, self.http  # noqa: B018  # the cached properties build them

    # -- entry point ---------------------------------------------------------------------
    def handle(self, event: Any, context: LambdaContext | None) -> Any:
        """Dispatch a REST v1, HTTP v2 or direct-invoke event. No store call outlives the
        invocation: each ends a margin before Lambda's timeout would (``function_time``)."""
        with function_time(_remaining_seconds(context)):
            return self._dispatch(event, context)

    def _dispatch(self, event: Any, context: LambdaContext | None) -> Any:
        self.invocations += 1
        kind = events.kind_of(event)
        if kind == "direct":
            return self.direct(event)
        problem = events.envelope_problem(event, kind)
        if problem is not None:
            return proxy.error_response(kind, BadRequest(problem, code="invalid_event"))
        method, path = events.method_and_path(event, kind)
        if path != PREDICT_PATH and events.has_control_characters(path):  # "/predict" has none
            error = NotFound(f"no route for {method} {path[:80]!r}", code="route_not_found")
            return proxy.error_response(kind, error)
        try:
            if method == "POST" and path.endswith(PREDICT_PATH):  # an HTTP API stage too
                answered = self._predict_lane(kind, event)
                if answered is not None:
                    return answered
            resolver = self.rest if kind == "rest" else self.http
            return resolver.resolve(event, context)  # type: ignore[arg-type]
        except Exception:  # routes map their own errors; this is the envelope or a bug
            logger.exception("unhandled error resolving a %s event", kind)
            return proxy.error_response(kind, proxy.internal_error())

    def _predict_lane(self, kind: events.Kind, event: dict[str, Any]) -> dict[str, Any] | None:
        """``POST /predict`` answered from the event dict: the route's work and the response
        Powertools' resolver would write, without its event, routing, middleware and response
        objects (30-35 µs of a warm prediction). None where the resolver may answer
        otherwise, so it resolves: its debug output on, a resolver already built that has
        middlewares or validation (or lacks the internals that tell), an event without the
        stage the resolver reads, or a path it would not route to ``POST /predict``."""
        if not self._lane:
            return None
        built = self.__dict__.get(kind)  # where cached_property keeps a built resolver
        if built is not None:
            from tickerserve.http import resolvers  # loaded with the resolver

            if not resolvers.plain(built):
                return None
        if events.routed_path(event, kind) != PREDICT_PATH:
            return None
        try:
            answer = self.predict_event(event)
        except TickerserveError as exc:  # the resolver's domain_error handler's answer
            return proxy.error_response(kind, proxy.failed(exc))
        except Exception:  # its unexpected handler's
            return proxy.error_response(kind, proxy.unexpected())
        return proxy.json_response(kind, answer)

    def predict_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """``POST /predict``'s work from a proxy event's headers and body fields (the lane and
        the resolver's route both)."""
        self.check_entry("prediction")
        content_type, request_id = events.content_type_and_request_id(event.get("headers"))
        body = json_body(content_type, event.get("body"), event.get("isBase64Encoded"))
        return predict(
            self.service,
            body,
            request_id=request_ids.valid(request_id),
            source="api",
            capture=self.capture,
            challengers=self.challengers,
        )

    def batch(self, body: Any, *, request_id: str | None) -> dict[str, Any]:
        """``POST /predict/batch``'s answer to a parsed body."""
        return predict_batch(
            self.service,
            body,
            request_id=request_id,
            source="batch",
            capture=self.capture,
            challengers=self.challengers,
        )

    def model_view(self, ticker: Any, timeframe: Any, signal: Any) -> dict[str, Any]:
        """``GET /models/{ticker}``'s answer, each part checked (400 when malformed)."""
        from tickerserve.http.views import describe_ticker  # with what it reads, on first use

        return describe_ticker(
            self.service,
            _ticker(ticker),
            None if timeframe is None else _timeframe(timeframe),
            None if signal is None else _signal(signal),
        )

    def direct(self, event: Any) -> Any:
        """Direct ``lambda invoke``: a predict body, a batch body, or ``{"action": ...}``.
        Returns the response body itself (errors as ``{"error": ...}``)."""
        try:
            return self._direct_action(event)
        except TickerserveError as exc:
            return exc.to_body()
        except Exception:
            logger.exception("unhandled error on direct invocation")
            return proxy.internal_error().to_body()

    def _direct_action(self, event: Any) -> Any:
        if not isinstance(event, dict):
            raise BadRequest("event must be a JSON object", code="invalid_body")
        action = event.get("action")
        self.check_entry("outcomes" if action == "outcomes" else "prediction")
        if action is None:
            body = event
            action = "predict_batch" if "items" in event else "predict"
        else:
            body = {k: v for k, v in event.items() if k != "action"}
        if action == "predict":
            return predict(self.service, body, capture=self.capture, challengers=self.challengers)
        if action == "predict_batch":
            return predict_batch(
                self.service, body, capture=self.capture, challengers=self.challengers
            )
        # The model views and outcomes are imported when first asked: a prediction needs neither.
        from tickerserve.http.views import describe_models, health
        from tickerserve.storage.outcomes import receive as receive_outcomes

        if action == "models":
            return describe_models(
                self.service, limit=body.get("limit"), next_token=body.get("next")
            )
        if action == "model":
            return self.model_view(body.get("ticker"), body.get("timeframe"), body.get("signal"))
        if action == "health":
            return health(self.service, cold=self.invocations == 1)[0]
        if action == "outcomes":
            return receive_outcomes(self.service.store, body)[0]
        raise BadRequest(
            "action must be one of predict, predict_batch, outcomes, models, model, health",
            code="unknown_action",
        )

    def check_entry(self, wanted: Entry) -> None:
        """Refuse what this entry point does not do (403), naming the one that does."""
        if self.entry in ("all", wanted):
            return
        if wanted == "outcomes":
            raise WrongEntryPoint(
                "outcomes are not accepted by the prediction entry point: write them through "
                "the outcomes one (POST /outcomes behind API Gateway, the stack's OutcomesUrl "
                "for a function URL, or invoke the stack's OutcomesFunctionName)"
            )
        raise WrongEntryPoint(
            "this entry point only records outcomes (POST /outcomes); predictions and model "
            "descriptions are served by the prediction function"
        )


def _ticker(raw: Any) -> str:
    try:
        return normalize_ticker(raw)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_ticker") from None


def _timeframe(raw: Any) -> str:
    try:
        return validate_timeframe(raw)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_timeframe") from None


def _signal(raw: Any) -> str:
    try:
        return validate_signal(raw)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_signal") from None


def _remaining_seconds(context: Any) -> float | None:
    """The invocation's time left (Lambda's context), or None without one (a local server)."""
    if context is None:  # no getattr: its AttributeError costs the local server's requests
        return None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return None if remaining is None else remaining() / 1000
