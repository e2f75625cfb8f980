"""API Gateway proxy responses written from plain values, in the shape Powertools' resolvers
give each event kind (``ResponseBuilder.build`` with the event's header serializer): REST v1
answers carry ``multiValueHeaders``, HTTP v2 and function URL answers ``headers`` and
``cookies``. The prediction lane and the errors raised before any route runs answer with these;
a test compares them with the resolvers' own answers event by event.
"""

from __future__ import annotations

import math
from typing import Any

from tickerserve.errors import MethodNotAllowed, StorageUnavailable, TickerserveError
from tickerserve.http.bodies import JSON_TYPE, dumps
from tickerserve.http.events import Kind
from tickerserve.serving.observability import logger

DEFAULT_RETRY_AFTER = 5  # seconds, for a 503 storage_unavailable that names no better time


def response(kind: Kind, status: int, body: str, headers: dict[str, str]) -> dict[str, Any]:
    """A text body's proxy response, keys in Powertools' order (the same JSON text once the
    runtime writes it)."""
    if kind == "rest":
        return _rest(status, body, {name: [value] for name, value in headers.items()})
    return _http(status, body, dict(headers))


def json_response(kind: Kind, body: Any) -> dict[str, Any]:
    """A 200 with ``body`` as JSON text (``response`` with the JSON header, its headers
    written out: every warm prediction answers with it)."""
    if kind == "rest":
        return _rest(200, dumps(body), {"Content-Type": [JSON_TYPE]})
    return _http(200, dumps(body), {"Content-Type": JSON_TYPE})


def _rest(status: int, body: str, headers: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "body": body,
        "isBase64Encoded": False,
        "multiValueHeaders": headers,
    }


def _http(status: int, body: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "body": body,
        "isBase64Encoded": False,
        "headers": headers,
        "cookies": [],
    }


def error_headers(error: TickerserveError) -> dict[str, str]:
    """An error response's headers: Retry-After on a 503 from the store, Allow on a 405, then
    Content-Type (where Powertools' ``Response`` puts it: after the ones it was given)."""
    headers: dict[str, str] = {}
    if isinstance(error, StorageUnavailable):
        # Whole seconds, at least 1: when the store (or this sandbox's back-off) may answer.
        wait = error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allow)
    headers["Content-Type"] = JSON_TYPE
    return headers


def error_response(kind: Kind, error: TickerserveError) -> dict[str, Any]:
    """A domain error's proxy response: its status, headers and ``{"error": ...}`` body."""
    return response(kind, error.status, dumps(error.to_body()), error_headers(error))


def failed(error: TickerserveError) -> TickerserveError:
    """A domain error that ends a request, logged when it is the server's (5xx)."""
    if error.status >= 500:
        logger.warning("request failed: %s", error.message, extra={"code": error.code})
    return error


def unexpected() -> TickerserveError:
    """A bug's error, logged with its traceback (call inside the ``except``)."""
    logger.exception("unhandled error")
    return internal_error()


def internal_error() -> TickerserveError:
    return TickerserveError("internal error; see the function's logs", code="internal_error")
