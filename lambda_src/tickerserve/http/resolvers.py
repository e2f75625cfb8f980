"""Powertools' resolvers for API Gateway REST (v1) and HTTP (v2) proxy events, with every route
of ``routes.ROUTES`` registered on an ``Api``, its exception handlers, and (``docs=True``, the
local server) the OpenAPI document and Swagger UI.

Built on the first event that needs one (``Api.rest``, ``Api.http``): the prediction
function's ``POST /predict`` is answered without them, so neither the handler's import nor a
prediction pays for Powertools' event handler package (about 80 ms of a cold start).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Route
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from tickerserve import __version__
from tickerserve.errors import MethodNotAllowed, NotFound, TickerserveError
from tickerserve.http import openapi, proxy
from tickerserve.http.bodies import batch_body, dumps, json_body
from tickerserve.http.routes import DOCS_PATH, DOCS_ROUTES, OPENAPI_PATH, PREDICT_PATH, ROUTES
from tickerserve.http.views import describe_models, health
from tickerserve.serving import request_ids
from tickerserve.storage.outcomes import receive as receive_outcomes

if TYPE_CHECKING:
    from tickerserve.http.api import Api

TITLE = "tickerserve"
DESCRIPTION = (
    "Per-ticker models (LightGBM, XGBoost, scikit-learn trees and their ensembles) that pick "
    "an options strategy or forecast a value, optionally per timeframe."
)
# The resolver internals ``plain`` reads (Powertools 3.x); one missing (another version) reads
# as "resolve() may do more", so every request is resolved.
_LANE_NEEDS = ("_static_routes", "_router_middlewares", "_enable_validation", "_debug")


def build(api: Api, kind: str, *, docs: bool = False) -> ApiGatewayResolver:
    """The REST (``kind`` "rest") or HTTP resolver with the API's routes registered."""
    if kind == "rest":
        resolver: ApiGatewayResolver = (
            _DocumentedRestResolver if docs else APIGatewayRestResolver
        )(serializer=dumps)
    else:
        resolver = APIGatewayHttpResolver(serializer=dumps)
    table = {**ROUTES, **(DOCS_ROUTES if docs else {})}
    _register(resolver, api, [(_route_pattern(path), methods) for path, methods in table.items()])
    if docs and isinstance(resolver, APIGatewayRestResolver):
        _enable_docs(resolver)
    return resolver


def plain(resolver: ApiGatewayResolver) -> bool:
    """True when ``resolve()`` adds nothing to what ``POST /predict``'s route answers: no
    middleware on the resolver or the route, no request validation, no debug output. Anything
    else (or a Powertools without these internals) and the request is resolved."""
    if not all(hasattr(resolver, name) for name in _LANE_NEEDS):
        return False
    route: Route | None = next(
        (r for r in resolver._static_routes if r.method == "POST" and r.path == PREDICT_PATH),
        None,
    )
    return not (
        route is None
        or route.middlewares
        or resolver._router_middlewares
        or resolver._enable_validation
        or resolver._debug
    )


def error_response(error: TickerserveError) -> Response[Any]:
    """A domain error as Powertools' ``Response``, with ``proxy.error_headers``."""
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=error.to_body(),
        headers=proxy.error_headers(error),
    )


def _register(
    app: ApiGatewayResolver, api: Api, patterns: list[tuple[re.Pattern[str], Any]]
) -> None:
    def body_of() -> Any:
        event = app.current_event
        return json_body(event.headers.get("content-type"), event.body, event.is_base64_encoded)

    def header_id() -> str | None:
        return request_ids.from_headers(app.current_event.headers)

    # The schemas are plain dicts; the request body is an extension because we parse it
    # ourselves (a pydantic Body parameter would put pydantic on the Lambda's warm path).
    @app.post(
        PREDICT_PATH,
        summary="Predict the strategy for one ticker",
        responses=openapi.PREDICT_RESPONSES,
        openapi_extensions=openapi.PREDICT_BODY,
    )
    def post_predict() -> dict[str, Any]:
        return api.predict_event(app.current_event.raw_event)

    @app.post(
        "/predict/batch",
        summary="Predict many tickers in one request",
        responses=openapi.BATCH_RESPONSES,
        openapi_extensions=openapi.BATCH_BODY,
    )
    def post_batch() -> Response[str]:
        api.check_entry("prediction")
        answer = api.batch(body_of(), request_id=header_id())
        return Response(200, content_types.APPLICATION_JSON, batch_body(answer))

    @app.post(
        "/outcomes",
        summary="Record realized outcomes, joined to predictions by request_id",
        responses=openapi.OUTCOMES_RESPONSES,
        openapi_extensions=openapi.OUTCOMES_BODY,
    )
    def post_outcomes() -> Response[dict[str, Any]]:
        api.check_entry("outcomes")
        body, status = receive_outcomes(api.service.store, body_of())
        return Response(status, content_types.APPLICATION_JSON, body)

    @app.get(
        "/models",
        summary="What serves what, one page of ticker routes, without loading models",
        responses=openapi.MODELS_RESPONSES,
    )
    def get_models() -> dict[str, Any]:
        api.check_entry("prediction")
        event = app.current_event
        return describe_models(
            api.service,
            limit=event.get_query_string_value("limit"),
            next_token=event.get_query_string_value("next"),
        )

    @app.get(
        "/models/<ticker>",
        summary="The model serving one ticker",
        responses=openapi.MODEL_RESPONSES,
    )
    def get_model(ticker: str) -> dict[str, Any]:
        api.check_entry("prediction")
        event = app.current_event
        return api.model_view(
            ticker,
            event.get_query_string_value("timeframe"),
            event.get_query_string_value("signal"),
        )

    @app.get(
        "/health",
        summary="Registry revision, loaded models, cold or warm",
        responses=openapi.HEALTH_RESPONSES,
    )
    def get_health() -> Response[dict[str, Any]]:
        api.check_entry("prediction")
        body, status = health(api.service, cold=api.invocations == 1)
        return Response(status, content_types.APPLICATION_JSON, body)

    @app.exception_handler(TickerserveError)
    def domain_error(exc: TickerserveError) -> Response[Any]:
        return error_response(proxy.failed(exc))

    @app.not_found
    def route_not_found(exc: NotFoundError) -> Response[Any]:
        event = app.current_event
        allow = next((m for p, m in patterns if p.fullmatch(event.path)), None)
        # A method the path serves can land here too: Powertools' path patterns take fewer
        # characters than a path segment may hold (GET /models/§). That is no route, not 405.
        if allow is not None and event.http_method not in allow:
            return error_response(
                MethodNotAllowed(
                    f"{event.http_method} is not allowed on {event.path}; use {' or '.join(allow)}",
                    allow=allow,
                )
            )
        return error_response(
            NotFound(f"no route for {event.http_method} {event.path}", code="route_not_found")
        )

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[Any]:
        return error_response(proxy.unexpected())


def _enable_docs(app: APIGatewayRestResolver) -> None:
    app.configure_openapi(title=TITLE, version=__version__, description=DESCRIPTION)
    app.enable_swagger(path=DOCS_PATH)  # Swagger UI with its assets inlined, no CDN

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi_document() -> Response[str]:
        document = json.loads(app.get_openapi_json_schema())
        return Response(200, content_types.APPLICATION_JSON, dumps(_used_schemas(document)))


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


def _route_pattern(path: str) -> re.Pattern[str]:
    """``/models/<ticker>`` as the regular expression of the paths it serves."""
    return re.compile(re.sub(r"<\w+>", "[^/]+", re.escape(path)))
