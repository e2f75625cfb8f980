"""Proxy responses written without Powertools: the JSON text its ``ResponseBuilder`` writes for
each event kind, keys in the same order, for answers and every error's headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.utilities.data_classes import (
    APIGatewayProxyEvent,
    APIGatewayProxyEventV2,
)

from tests.support import load_event
from tickerserve.errors import (
    BadRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    StorageUnavailable,
    TickerserveError,
    UnsupportedMediaType,
    WrongEntryPoint,
)
from tickerserve.http import proxy
from tickerserve.http.bodies import dumps

KINDS = {"rest": "rest_predict.json", "http": "http_predict.json", "url": "url_predict.json"}


def powertools_text(fixture: str, response: Response[Any]) -> str:
    """What Powertools' resolver returns for ``response`` to the fixture's event, as JSON."""
    event = load_event(fixture)
    proxy_event: Any = (APIGatewayProxyEvent if "httpMethod" in event else APIGatewayProxyEventV2)(
        event
    )
    builder: ResponseBuilder[Any] = ResponseBuilder(response, serializer=dumps)
    return json.dumps(builder.build(proxy_event))


def kind_of(name: str) -> Any:
    return "rest" if name == "rest" else "http"


@pytest.mark.parametrize("name", sorted(KINDS))
def test_an_answer_is_written_as_powertools_writes_it(name):
    answer = {"ticker": "SMH", "probabilities": {"A": 0.25, "B": 0.75}, "note": "é"}
    expected = powertools_text(KINDS[name], Response(200, "application/json", answer))
    assert json.dumps(proxy.json_response(kind_of(name), answer)) == expected


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize(
    ("error", "headers"),
    [
        (BadRequest("bad", code="invalid_json"), {}),
        (UnsupportedMediaType("not json"), {}),
        (PayloadTooLarge("big", code="body_too_large"), {}),
        (WrongEntryPoint("elsewhere"), {}),
        (MethodNotAllowed("no", allow=("GET", "POST")), {"Allow": "GET, POST"}),
        (StorageUnavailable("down"), {"Retry-After": "5"}),
        (StorageUnavailable("down", retry_after=0.2), {"Retry-After": "1"}),
        (StorageUnavailable("down", retry_after=2.5), {"Retry-After": "3"}),
        (TickerserveError("bug", code="internal_error"), {}),
    ],
)
def test_every_error_is_written_as_powertools_writes_it(name, error, headers):
    # Given the response the resolvers' handlers give: the error's body, its extra headers
    response = Response(error.status, "application/json", error.to_body(), headers=headers)
    expected = powertools_text(KINDS[name], response)
    # Then the lane writes the same text: status, body, header names, values and order
    assert json.dumps(proxy.error_response(kind_of(name), error)) == expected
