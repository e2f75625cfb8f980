"""Which kind of event reached the function, and whether its envelope can be routed.

API Gateway always sends well-formed proxy events; a hand-made ``aws lambda invoke`` may not
(a ``body`` that is an object, no ``requestContext``). Powertools reads the envelope before any
route runs, so a malformed one would escape as an exception (a function error) or a 500. These
checks make every such event a 400 ``invalid_event`` in the shape its caller expects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from itertools import chain, repeat
from typing import Any, Literal

Kind = Literal["rest", "http", "direct"]

# C0 controls and DEL never appear in a route, and Powertools' route patterns end in ``$``,
# which would let ``/health\n`` match ``/health``.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def kind_of(event: Any) -> Kind:
    """REST v1 carries ``httpMethod``; HTTP v2 ``version: "2.0"`` and ``routeKey``; anything
    else is a direct invocation (a predict body, a batch body or an action)."""
    if isinstance(event, dict):
        if "httpMethod" in event:
            return "rest"
        if event.get("version") == "2.0" and "routeKey" in event:
            return "http"
    return "direct"


def envelope_problem(event: dict[str, Any], kind: Kind) -> str | None:
    """What makes a proxy event unroutable, or None when Powertools can resolve it."""
    sound = _sound_rest(event) if kind == "rest" else _sound_http(event)
    return None if sound else _problems(event, kind)  # every warm request: the quick check


def _problems(event: dict[str, Any], kind: Kind) -> str | None:
    """The first problem of the envelope, checked one field at a time."""
    if kind == "rest":
        return (
            _text(event, "httpMethod")
            or _text(event, "path")
            or _object(event, "requestContext")
            or _optional_text(event, "body")
            or _optional_flag(event, "isBase64Encoded")
            or _string_map(event, "headers")
            or _string_map(event, "queryStringParameters")
            or _string_map(event, "pathParameters")
            or _string_map(event, "stageVariables")
            or _list_map(event, "multiValueHeaders")
            or _list_map(event, "multiValueQueryStringParameters")
        )
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    return _first(
        _text(event, "rawPath"),
        _optional_text(event, "rawQueryString"),
        _object(event, "requestContext"),
        None if isinstance(http, dict) else "requestContext.http must be an object",
        _text(http, "method", "requestContext.http.") if isinstance(http, dict) else None,
        _optional_text(event, "body"),
        _optional_flag(event, "isBase64Encoded"),
        *(_string_map(event, name) for name in _HTTP_MAPS),
        _string_list(event, "cookies"),
    )


def _sound_rest(event: dict[str, Any]) -> bool:
    """True when a REST event passes every check ``_problems`` makes, in one pass at about a
    third of their cost: ``str.join`` refuses anything but strings in C, where the checks call
    ``isinstance`` per element and a function per field. (Strict types, where the checks take
    subclasses too: the same on JSON; for anything else the checks decide.)"""
    get = event.get
    if not (
        type(get("httpMethod")) is str
        and type(get("path")) is str
        and type(get("requestContext")) is dict
        and type(get("body")) in _TEXT_OR_NONE
        and type(get("isBase64Encoded")) in _FLAG_OR_NONE
    ):
        return False
    if not _sound_string_maps(get):
        return False
    try:
        for name in _REST_LIST_MAPS:
            value = get(name)
            if value is not None:
                if type(value) is not dict:
                    return False
                "".join(value)
                for values in value.values():
                    if type(values) is not list:
                        return False
                    "".join(values)
    except TypeError:  # a key or value that is not a string
        return False
    return True


def _sound_string_maps(get: Callable[[str], Any]) -> bool:
    """Whether each of ``_HTTP_MAPS`` the event holds (``get`` is its ``dict.get``) maps
    strings to strings (checked by ``str.join``, in C)."""
    try:
        for name in _HTTP_MAPS:
            value = get(name)
            if value is not None:
                if type(value) is not dict:
                    return False
                "".join(value)
                "".join(value.values())
    except TypeError:  # a key or value that is not a string
        return False
    return True


def _sound_http(event: dict[str, Any]) -> bool:
    """``_sound_rest`` for an HTTP API (v2) event."""
    get = event.get
    context = get("requestContext")
    http = context.get("http") if type(context) is dict else None
    if not (
        type(get("rawPath")) is str
        and type(get("rawQueryString")) in _TEXT_OR_NONE
        and type(http) is dict
        and type(http.get("method")) is str
        and type(get("body")) in _TEXT_OR_NONE
        and type(get("isBase64Encoded")) in _FLAG_OR_NONE
    ):
        return False
    if not _sound_string_maps(get):
        return False
    cookies = get("cookies")
    try:
        if cookies is not None:
            if type(cookies) is not list:
                return False
            "".join(cookies)
    except TypeError:  # a cookie that is not a string
        return False
    return True


_REST_LIST_MAPS = ("multiValueHeaders", "multiValueQueryStringParameters")
_TEXT_OR_NONE = (str, type(None))
_FLAG_OR_NONE = (bool, type(None))


def method_and_path(event: dict[str, Any], kind: Kind) -> tuple[str, str]:
    """The HTTP method and path of a proxy event whose envelope passed ``envelope_problem``."""
    if kind == "rest":
        return event["httpMethod"], event["path"]
    return event["requestContext"]["http"]["method"], event["rawPath"]


def has_control_characters(path: str) -> bool:
    return _CONTROL.search(path) is not None


def routed_path(event: dict[str, Any], kind: Kind) -> str | None:
    """The path Powertools' resolver routes for a proxy event that passed ``envelope_problem``:
    REST's ``path``; an HTTP API's raw path less its named stage, cut as Powertools cuts it (by
    the stage name's length, ``"$default"`` cutting nothing). None where the event names no
    stage: Powertools would fail on it, so only its resolver may answer."""
    if kind == "rest":
        path: str = event["path"]
        return path
    stage = event["requestContext"].get("stage")
    if not isinstance(stage, str):
        return None
    raw: str = event["rawPath"]
    return raw if stage == "$default" else raw[len(stage) + 1 :]


def content_type_and_request_id(headers: dict[str, str] | None) -> tuple[str | None, str | None]:
    """An event's ``Content-Type`` and ``X-Request-Id`` header values, read from its
    single-value ``headers`` as Powertools' case-insensitive view reads them: in any letter
    case, and where a name comes twice in different cases, the later one."""
    content_type = request_id = None
    if headers:
        for name, value in headers.items():
            if len(name) == 12:  # both names are 12 characters: lower() only those that may be
                lowered = name.lower()
                if lowered == "content-type":
                    content_type = value
                elif lowered == "x-request-id":
                    request_id = value
    return content_type, request_id


_HTTP_MAPS = ("headers", "queryStringParameters", "pathParameters", "stageVariables")


def _first(*problems: str | None) -> str | None:
    return next((p for p in problems if p is not None), None)


def _text(event: dict[str, Any], name: str, where: str = "") -> str | None:
    return None if isinstance(event.get(name), str) else f"{where}{name} must be a string"


def _optional_text(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None or isinstance(value, str):
        return None
    return f"{name} must be a string (a JSON body as text) or null, not {_type(value)}"


def _optional_flag(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    return None if value is None or isinstance(value, bool) else f"{name} must be true or false"


def _object(event: dict[str, Any], name: str) -> str | None:
    return None if isinstance(event.get(name), dict) else f"{name} must be an object"


# The element checks iterate in C (map over isinstance): a real event's dozen headers, twice
# (single and multi-value), cost about 1 µs instead of 4.
def _all_strings(values: Iterable[Any]) -> bool:
    return all(map(isinstance, values, repeat(str)))


def _string_map(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None or (
        isinstance(value, dict) and _all_strings(value) and _all_strings(value.values())
    ):
        return None
    return f"{name} must be an object of strings or null"


def _list_map(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None or (
        isinstance(value, dict)
        and _all_strings(value)
        and all(map(isinstance, value.values(), repeat(list)))
        and _all_strings(chain.from_iterable(value.values()))
    ):
        return None
    return f"{name} must be an object of string lists or null"


def _string_list(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None or (isinstance(value, list) and _all_strings(value)):
        return None
    return f"{name} must be a list of strings or null"


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean"}.get(type(value), "a number")
