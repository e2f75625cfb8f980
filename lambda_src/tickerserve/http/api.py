"""HTTP API over the runtime: Powertools resolvers for API Gateway REST (v1) and HTTP (v2)
proxy events, plus direct invocation with the same JSON bodies.

Routes: POST /predict, POST /predict/batch, POST /outcomes, GET /models, GET /models/{ticker},
GET /health. POST /predict, the warm path, is answered through a lane of the resolver's own
parts without its per-request routing frames (``Api._predict_lane``): the same response.
Deployed, predicting and writing outcomes are separate entry points (``Entry``): the prediction
function refuses outcomes and the outcomes function serves nothing else, each with a 403
``wrong_entry_point`` that says where to go, so the permission to invoke one never grants the
other. The local server (``tickerserve serve``) is both.
Every client mistake is a 4xx with ``{"error": {"code", "message"}}``. With ``docs=True`` (the
local server, never the Lambda: generating the document imports pydantic) it also serves the
OpenAPI document at /openapi.json and Swagger UI at /docs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal

import orjson
from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import (
    ApiGatewayResolver,
    BaseRouter,
    ResponseBuilder,
    Route,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from tickerserve import __version__
from tickerserve.contract import LIMITS
from tickerserve.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    StorageUnavailable,
    TickerserveError,
    UnsupportedMediaType,
    WrongEntryPoint,
)
from tickerserve.http import events, openapi
from tickerserve.http.views import describe_models, describe_ticker, health
from tickerserve.layout import normalize_ticker, validate_signal, validate_timeframe
from tickerserve.serving import request_ids
from tickerserve.serving.capture import DISABLED, Capture
from tickerserve.serving.observability import logger
from tickerserve.serving.predict import predict, predict_batch
from tickerserve.serving.service import ModelService
from tickerserve.serving.traffic import Challengers
from tickerserve.storage.deadline import function_time
from tickerserve.storage.outcomes import receive as receive_outcomes

MAX_BODY_BYTES = LIMITS.body_bytes  # Lambda's synchronous payload limit
DEFAULT_RETRY_AFTER = 5  # seconds, for a 503 storage_unavailable that names no better time
JSON_TYPE = content_types.APPLICATION_JSON
PREDICT_PATH = "/predict"
DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"
TITLE = "tickerserve"
DESCRIPTION = (
    "Per-ticker models (LightGBM, XGBoost, scikit-learn trees and their ensembles) that pick "
    "an options strategy or forecast a value, optionally per timeframe."
)
# Every route and its methods (the decorators below register the same; a test compares them
# with the OpenAPI document): a known path asked with another method is a 405 with Allow.
ROUTES: dict[str, tuple[str, ...]] = {
    "/predict": ("POST",),
    "/predict/batch": ("POST",),
    "/outcomes": ("POST",),
    "/models": ("GET",),
    "/models/<ticker>": ("GET",),
    "/health": ("GET",),
}
DOCS_ROUTES: dict[str, tuple[str, ...]] = {DOCS_PATH: ("GET",), OPENAPI_PATH: ("GET",)}
# application/json and the structured +json types, with any parameters (charset=utf-8).
_JSON_MEDIA = re.compile(r"^\s*application/([\w.+-]+\+)?json\s*(;.*)?$", re.IGNORECASE)

# Response bodies are json.dumps(obj, separators=(",", ":"), allow_nan=False), character for
# character. orjson writes most of them (about 1 µs for an answer instead of 6); where its text
# could differ, the json module writes it: non-ASCII (json escapes it), DEL (escaped too), a
# null (also what orjson makes of NaN, which json refuses), a float below 1e-4 or with an
# exponent (json writes 1e-05, orjson 0.00001), and any type orjson would take but json not
# (subclasses, dataclasses, datetimes: orjson refuses them with these options).
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def _dumps(value: Any) -> str:
    try:
        text = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # a type orjson refuses (JSONEncodeError), or an int past 64 bits
        return _JSON.encode(value)
    # orjson writes every exponent with its sign ("3.2e-7", "1e+16"). A string holding one of
    # these only sends its body to the json module (a regular expression that told strings
    # from numbers would cost more than orjson saves).
    if (
        text.isascii()
        and b"null" not in text
        and b"e-" not in text
        and b"e+" not in text
        and b"0.0000" not in text
        and b"\x7f" not in text
    ):
        return text.decode()
    return _JSON.encode(value)


def error_response(error: TickerserveError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(error, StorageUnavailable):
        # Whole seconds, at least 1: when the store (or this sandbox's back-off) may answer.
        wait = error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allow)
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=error.to_body(),
        headers=headers or None,
    )


# What an Api answers: everything (the local server), predictions and model descriptions only
# (the prediction function), or outcomes only (the outcomes function).
Entry = Literal["all", "prediction", "outcomes"]


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
        self.routes = [
            (_route_pattern(path), methods)
            for path, methods in {**ROUTES, **(DOCS_ROUTES if docs else {})}.items()
        ]
        self.rest = (_DocumentedRestResolver if docs else APIGatewayRestResolver)(serializer=_dumps)
        self.http = APIGatewayHttpResolver(serializer=_dumps)
        for resolver in (self.rest, self.http):
            self._register(resolver)
        if docs:
            self._enable_docs(self.rest)
        # POST /predict's route in each resolver, for the prediction lane (``_predict_lane``).
        self._predict_routes = {"rest": _route_of(self.rest), "http": _route_of(self.http)}

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
            return _proxy_error(kind, BadRequest(problem, code="invalid_event"))
        method, path = events.method_and_path(event, kind)
        if events.has_control_characters(path):
            error = NotFound(f"no route for {method} {path[:80]!r}", code="route_not_found")
            return _proxy_error(kind, error)
        resolver = self.rest if kind == "rest" else self.http
        try:
            if method == "POST" and path.endswith(PREDICT_PATH):  # an HTTP API stage too
                answered = self._predict_lane(resolver, kind, event, context)
                if answered is not None:
                    return answered
            return resolver.resolve(event, context)  # type: ignore[arg-type]
        except Exception:  # routes map their own errors; this is the envelope or a bug
            logger.exception("unhandled error resolving a %s event", kind)
            return _proxy_error(kind, _internal_error())

    def _predict_lane(
        self, resolver: ApiGatewayResolver, kind: str, event: Any, context: LambdaContext | None
    ) -> dict[str, Any] | None:
        """``POST /predict`` answered with the resolver's own parts, minus its per-request
        routing and middleware frames (about half the HTTP layer's cost of a warm prediction,
        30-70 µs): Powertools' event class, the route's function and ``ResponseBuilder``, and
        the responses the exception handlers give. The same response as ``resolver.resolve``
        (a test compares them event by event); None where the resolver does more than that
        (middlewares, validation, debug output, a path it would rewrite), so it resolves."""
        route = self._predict_routes[kind]
        if (
            route is None
            or route.middlewares
            or resolver._router_middlewares
            or resolver._enable_validation
            or resolver._debug
        ):
            return None
        proxy = resolver._to_proxy_event(event)
        if proxy.http_method != "POST" or resolver._remove_prefix(proxy.path) != PREDICT_PATH:
            return None
        # What resolve() sets for the routes (class attributes there too).
        BaseRouter.current_event = proxy
        BaseRouter.lambda_context = context  # type: ignore[assignment]
        try:
            response: Response[Any] = Response(
                route.status_code, JSON_TYPE, self._post_predict(proxy)
            )
        except TickerserveError as exc:  # the domain_error handler's response
            response = _domain_error(exc)
        except Exception:  # the unexpected handler's
            response = _unexpected()
        builder: ResponseBuilder[Any] = ResponseBuilder(
            response=response, serializer=resolver._serializer, route=route
        )
        return builder.build(proxy, resolver._cors)

    def _post_predict(self, event: BaseProxyEvent) -> dict[str, Any]:
        """``POST /predict``: the route's work, for the resolver and the prediction lane."""
        self._check_entry("prediction")
        headers = event.headers  # built on every access: once here
        body = _json_body_of(event, headers)
        return predict(
            self.service,
            body,
            request_id=request_ids.from_headers(headers),
            source="api",
            capture=self.capture,
            challengers=self.challengers,
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
            return _internal_error().to_body()

    def _direct_action(self, event: Any) -> Any:
        if not isinstance(event, dict):
            raise BadRequest("event must be a JSON object", code="invalid_body")
        action = event.get("action")
        self._check_entry("outcomes" if action == "outcomes" else "prediction")
        single = partial(predict, capture=self.capture, challengers=self.challengers)
        batch = partial(predict_batch, capture=self.capture, challengers=self.challengers)
        if action is None:
            if "items" in event:
                return batch(self.service, event)
            return single(self.service, event)
        body = {k: v for k, v in event.items() if k != "action"}
        if action == "predict":
            return single(self.service, body)
        if action == "predict_batch":
            return batch(self.service, body)
        if action == "models":
            return describe_models(
                self.service, limit=body.get("limit"), next_token=body.get("next")
            )
        if action == "model":
            timeframe, signal = body.get("timeframe"), body.get("signal")
            return describe_ticker(
                self.service,
                _ticker(body.get("ticker")),
                None if timeframe is None else _timeframe(timeframe),
                None if signal is None else _signal(signal),
            )
        if action == "health":
            return health(self.service, cold=self.invocations == 1)[0]
        if action == "outcomes":
            return receive_outcomes(self.service.store, body)[0]
        raise BadRequest(
            "action must be one of predict, predict_batch, outcomes, models, model, health",
            code="unknown_action",
        )

    def _check_entry(self, wanted: Entry) -> None:
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

    # -- routes --------------------------------------------------------------------------
    def _register(self, app: ApiGatewayResolver) -> None:
        service = self.service
        body_of: Callable[[], Any] = lambda: _json_body(app)  # noqa: E731
        header_id: Callable[[], str | None] = lambda: request_ids.from_headers(  # noqa: E731
            app.current_event.headers
        )

        # The schemas are plain dicts; the request body is an extension because we parse it
        # ourselves (a pydantic Body parameter would put pydantic on the Lambda's warm path).
        @app.post(
            "/predict",
            summary="Predict the strategy for one ticker",
            responses=openapi.PREDICT_RESPONSES,
            openapi_extensions=openapi.PREDICT_BODY,
        )
        def post_predict() -> dict[str, Any]:
            return self._post_predict(app.current_event)

        @app.post(
            "/predict/batch",
            summary="Predict many tickers in one request",
            responses=openapi.BATCH_RESPONSES,
            openapi_extensions=openapi.BATCH_BODY,
        )
        def post_batch() -> Response[str]:
            self._check_entry("prediction")
            body = body_of()
            answer = predict_batch(
                service,
                body,
                request_id=header_id(),
                source="batch",
                capture=self.capture,
                challengers=self.challengers,
            )
            return Response(200, JSON_TYPE, batch_body(answer))

        @app.post(
            "/outcomes",
            summary="Record realized outcomes, joined to predictions by request_id",
            responses=openapi.OUTCOMES_RESPONSES,
            openapi_extensions=openapi.OUTCOMES_BODY,
        )
        def post_outcomes() -> Response[dict[str, Any]]:
            self._check_entry("outcomes")
            body, status = receive_outcomes(service.store, body_of())
            return Response(status, content_types.APPLICATION_JSON, body)

        @app.get(
            "/models",
            summary="What serves what, one page of ticker routes, without loading models",
            responses=openapi.MODELS_RESPONSES,
        )
        def get_models() -> dict[str, Any]:
            self._check_entry("prediction")
            event = app.current_event
            return describe_models(
                service,
                limit=event.get_query_string_value("limit"),
                next_token=event.get_query_string_value("next"),
            )

        @app.get(
            "/models/<ticker>",
            summary="The model serving one ticker",
            responses=openapi.MODEL_RESPONSES,
        )
        def get_model(ticker: str) -> dict[str, Any]:
            self._check_entry("prediction")
            timeframe = app.current_event.get_query_string_value("timeframe")
            signal = app.current_event.get_query_string_value("signal")
            return describe_ticker(
                service,
                _ticker(ticker),
                None if timeframe is None else _timeframe(timeframe),
                None if signal is None else _signal(signal),
            )

        @app.get(
            "/health",
            summary="Registry revision, loaded models, cold or warm",
            responses=openapi.HEALTH_RESPONSES,
        )
        def get_health() -> Response[dict[str, Any]]:
            self._check_entry("prediction")
            body, status = health(service, cold=self.invocations == 1)
            return Response(status, content_types.APPLICATION_JSON, body)

        app.exception_handler(TickerserveError)(_domain_error)

        @app.not_found
        def route_not_found(exc: NotFoundError) -> Response:
            event = app.current_event
            allow = next((m for p, m in self.routes if p.fullmatch(event.path)), None)
            # A method the path serves can land here too: Powertools' path patterns take fewer
            # characters than a path segment may hold (GET /models/§). That is no route, not 405.
            if allow is not None and event.http_method not in allow:
                return error_response(
                    MethodNotAllowed(
                        f"{event.http_method} is not allowed on {event.path}; "
                        f"use {' or '.join(allow)}",
                        allow=allow,
                    )
                )
            return error_response(
                NotFound(f"no route for {event.http_method} {event.path}", code="route_not_found")
            )

        @app.exception_handler(Exception)
        def unexpected(exc: Exception) -> Response:
            return _unexpected()

    @staticmethod
    def _enable_docs(app: APIGatewayRestResolver) -> None:
        app.configure_openapi(title=TITLE, version=__version__, description=DESCRIPTION)
        app.enable_swagger(path=DOCS_PATH)  # Swagger UI with its assets inlined, no CDN

        @app.get(OPENAPI_PATH, include_in_schema=False)
        def openapi_document() -> Response[str]:
            document = json.loads(app.get_openapi_json_schema())
            return Response(200, content_types.APPLICATION_JSON, _dumps(_used_schemas(document)))


def _used_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """The document without component schemas nothing refers to: Powertools always adds its
    pydantic validation errors (HTTPValidationError, ...), which are not this API's errors."""
    schemas = document.get("components", {}).get("schemas", {})
    reference = re.compile(r'"#/components/schemas/([^"]+)"')
    outside = {k: v for k, v in document.items() if k != "components"}
    wanted, kept = set(reference.findall(json.dumps(outside))), {}
    while wanted:
        name = wanted.pop()
        if name in schemas and name not in kept:
            kept[name] = schemas[name]
            wanted |= set(reference.findall(json.dumps(schemas[name])))
    components = {k: v for k, v in document.get("components", {}).items() if k != "schemas"}
    if kept:
        components["schemas"] = kept
    trimmed = {k: v for k, v in document.items() if k != "components"}
    return {**trimmed, "components": components} if components else trimmed


class _DocumentedRestResolver(APIGatewayRestResolver):
    """The local server's resolver: its OpenAPI document also carries the query and path
    parameters with their patterns (``openapi.PARAMETERS``), which Powertools would derive only
    from pydantic-typed handler arguments."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        from aws_lambda_powertools.event_handler.openapi.models import Parameter

        document = super().get_openapi_schema(*args, **kwargs)
        for path, parameters in openapi.PARAMETERS.items():
            operation = (document.paths or {})[path].get
            assert operation is not None  # every path in PARAMETERS is a GET route
            operation.parameters = [Parameter.model_validate(p) for p in parameters]
        return document


def _domain_error(exc: TickerserveError) -> Response:
    """A domain error's response (an exception handler of both resolvers)."""
    if exc.status >= 500:
        logger.warning("request failed: %s", exc.message, extra={"code": exc.code})
    return error_response(exc)


def _unexpected() -> Response:
    """A bug's response, logged with its traceback (called inside the ``except``)."""
    logger.exception("unhandled error")
    return error_response(_internal_error())


# The resolver's internals the prediction lane reads (Powertools 3.x); one missing (another
# version) leaves every request to resolve().
_LANE_NEEDS = (
    "_static_routes",
    "_to_proxy_event",
    "_remove_prefix",
    "_router_middlewares",
    "_enable_validation",
    "_debug",
    "_serializer",
    "_cors",
)


def _route_of(resolver: ApiGatewayResolver) -> Route | None:
    """The resolver's ``POST /predict`` route, or None where the lane cannot run."""
    if not all(hasattr(resolver, name) for name in _LANE_NEEDS):
        return None
    return next(
        (r for r in resolver._static_routes if r.method == "POST" and r.path == PREDICT_PATH),
        None,
    )


def _proxy_error(kind: events.Kind, error: TickerserveError) -> dict[str, Any]:
    """An error answered without Powertools, in the proxy response shape of the event kind."""
    body = _dumps(error.to_body())
    if kind == "rest":
        headers: dict[str, Any] = {"multiValueHeaders": {"Content-Type": [JSON_TYPE]}}
    else:
        headers = {"headers": {"Content-Type": JSON_TYPE}}
    return {"statusCode": error.status, **headers, "body": body, "isBase64Encoded": False}


def _internal_error() -> TickerserveError:
    return TickerserveError("internal error; see the function's logs", code="internal_error")


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
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return None if remaining is None else remaining() / 1000


def _route_pattern(path: str) -> re.Pattern[str]:
    """``/models/<ticker>`` as the regular expression of the paths it serves."""
    return re.compile(re.sub(r"<\w+>", "[^/]+", re.escape(path)))


def _json_body(app: ApiGatewayResolver) -> Any:
    event = app.current_event
    return _json_body_of(event, event.headers)


def _json_body_of(event: BaseProxyEvent, headers: Mapping[str, str]) -> Any:
    media_type = headers.get("content-type")
    if media_type and not _JSON_MEDIA.match(media_type):
        raise UnsupportedMediaType(
            f"Content-Type {media_type[:80]!r} is not JSON; send application/json"
        )
    raw = event.body
    if raw is None or raw == "":
        raise BadRequest("request body is required (JSON)", code="invalid_body")
    if len(raw) > MAX_BODY_BYTES * 4 // 3 + 4:  # base64 grows a body by a third
        raise PayloadTooLarge(f"body exceeds {MAX_BODY_BYTES} bytes", code="body_too_large")
    try:
        text = event.decoded_body if event.is_base64_encoded else raw
    except ValueError:
        raise BadRequest("body is not valid base64", code="invalid_body") from None
    if text is None or len(text) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body exceeds {MAX_BODY_BYTES} bytes", code="body_too_large")
    return parse_json(text)


def parse_json(text: str) -> Any:
    """The request body's JSON. orjson parses a body about six times faster than the json
    module (a 36-feature row: 1.8 vs 11.6 µs; a 1,000-item batch about 11 ms less); what it
    refuses (NaN or Infinity literals, lone surrogates, nesting past 1,024) goes to the json
    module, so those bodies get the answer or the error they got before. One difference is
    kept: an integer literal beyond 64 bits reads as the nearest float, not as an int (the
    same number to a model, which takes floats; RFC 8259 allows it)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not valid JSON: {str(exc)[:120]}", code="invalid_json") from None


def batch_body(answer: dict[str, Any]) -> str:
    """A batch's answer as JSON text. orjson writes it in about a tenth of the json module's
    time (a 1,000-item batch: about 0.4 instead of 5.5 ms); its text is the same JSON value
    (numbers and strings parse alike), only some spelled differently: a float below 1e-4
    without an exponent (0.000032, json 3.2e-05), an exponent without its leading zero (1.5e-7),
    non-ASCII as UTF-8 rather than escaped. Anything orjson cannot write as json would (a
    null, which is also what it makes of NaN, where the json module refuses; a type it
    refuses) goes to the json module, so those answers and errors are as before."""
    try:
        text = orjson.dumps(answer)
    except TypeError:  # a type orjson refuses, or an int past 64 bits
        return _dumps(answer)
    return _dumps(answer) if b"null" in text else text.decode()
