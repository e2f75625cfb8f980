"""A local HTTP endpoint over the Lambda code path: each request becomes an API Gateway REST
(v1) proxy event for ``Api.handle``, and its answer becomes the HTTP response. With an
authorizer (``serve --auth iam``), a request it refuses is answered as the deployed API's
gateway answers it (403 ``forbidden``) and never reaches the API.

Standard library only. Connections are served on threads, but events go through the API one
at a time, as in one Lambda execution environment (the Powertools resolver also keeps the
current event on itself, so it must not see two at once).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from tickerserve.contract import GATEWAY_ERRORS, GATEWAY_PAYLOAD_BYTES

STAGE = "local"
MAX_REQUEST_BYTES = GATEWAY_PAYLOAD_BYTES  # API Gateway's request payload limit (contract.json)
_MODEL_PATH = re.compile(r"/models/([^/]+)")


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be listened on now (to fail before slow start-up work)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class EventHandler(Protocol):
    def handle(self, event: Any, context: Any) -> Any: ...


class Refused(Protocol):
    @property
    def response_type(self) -> str: ...  # the API Gateway response type that answers it

    @property
    def message(self) -> str: ...


class Authorizer(Protocol):
    """Decides, before the API sees a request, whether it may (``None``) or why not."""

    def check(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> Refused | None: ...


def gateway_answer(response_type: str) -> tuple[int, str]:
    """Status and code the deployed REST API answers a gateway refusal with (contract.json)."""
    error = next(e for e in GATEWAY_ERRORS if e.response_type == response_type)
    return error.status or 403, error.code


def rest_event(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The API Gateway REST proxy event for one HTTP request (``target`` is the request line's
    path and query). Bodies that are not UTF-8 are passed base64-encoded."""
    now = now or datetime.now(UTC)
    url = urlsplit(target)
    path = unquote(url.path) or "/"
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value  # API Gateway keeps the last value in ``headers``
        multi.setdefault(name, []).append(value)
    query: dict[str, list[str]] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query.setdefault(name, []).append(value)
    match = _MODEL_PATH.fullmatch(path)
    resource, path_parameters = (
        ("/models/{ticker}", {"ticker": match.group(1)}) if match else (path, None)
    )
    text, is_base64 = _body_text(body)
    user_agent = _header(single, "User-Agent")
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "authorizer": None,
            "domainName": _header(single, "Host") or "localhost",
            "domainPrefix": "local",
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": source_ip,
                "user": None,
                "userAgent": user_agent,
                "userArn": None,
            },
            # No stage prefix, as behind a custom domain: the docs page then calls /predict.
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": "local",
            "resourcePath": resource,
            "stage": STAGE,
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _body_text(body: bytes) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def response_parts(response: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body bytes of a proxy response (REST v1 or HTTP v2 shape)."""
    headers: list[tuple[str, str]] = []
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    seen = {name.lower() for name, _ in headers}
    headers.extend(
        (name, str(v))
        for name, v in (response.get("headers") or {}).items()
        if name.lower() not in seen
    )
    raw = response.get("body") or ""
    body = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode("utf-8")
    return int(response.get("statusCode", 200)), headers, body


class LocalServer(ThreadingHTTPServer):
    """Serves ``api`` on ``address``; ``log`` receives one line per request."""

    daemon_threads = True  # an open keep-alive connection must not block shutdown

    def __init__(
        self,
        address: tuple[str, int],
        api: EventHandler,
        log: Callable[[str], None],
        authorizer: Authorizer | None = None,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _RequestHandler)
        self.api = api
        self.log = log
        self.authorizer = authorizer
        self.api_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that disconnects while its request line or headers are read is one log
        line; anything else keeps socketserver's traceback (a bug worth seeing)."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            host, port = client_address[:2]
            reason = getattr(error, "strerror", None) or error
            self.log(f"client {host}:{port} disconnected ({reason})")
            return
        super().handle_error(request, client_address)

    def invoke(self, event: dict[str, Any]) -> Mapping[str, Any]:
        with self.api_lock:
            response = self.api.handle(event, None)
        if not isinstance(response, Mapping) or "statusCode" not in response:
            raise TypeError(f"the API returned {type(response).__name__}, not a proxy response")
        return response


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    server_version = "tickerserve-local"
    # Headers and body go out in two writes; with Nagle's algorithm the body then waits for
    # the client's delayed ACK (about 40 ms per request on a keep-alive connection).
    disable_nagle_algorithm = True

    def __getattr__(self, name: str) -> Any:
        # http.server looks up ``do_<METHOD>`` and answers an HTML 501 page when it is
        # missing; every method (TRACE, PROPFIND, ...) goes to the API instead, which
        # answers in JSON (405 with Allow on a known path, 404 elsewhere), as the handler does.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        started = time.perf_counter()
        request_id = "-"
        try:
            body = self._read_body()
            if body is None:
                return
            refused = self._refusal(body)
            if refused is not None:
                status, code = gateway_answer(refused.response_type)
                request_id = f"refused: {refused.message}"
                headers = [("Content-Type", "application/json")]
                payload = _error_body(code, refused.message)
            else:
                event = rest_event(
                    self.command,
                    self.path,
                    self.headers.items(),
                    body,
                    source_ip=self.client_address[0],
                )
                request_id = event["requestContext"]["requestId"]
                status, headers, payload = response_parts(self.server.invoke(event))
        except Exception as exc:  # the API maps its own errors; this is a bug in the adapter
            status, headers = 500, [("Content-Type", "application/json")]
            payload = _error_body("internal_error", f"local server: {type(exc).__name__}: {exc}")
        elapsed = (time.perf_counter() - started) * 1000
        # Logged before the answer leaves: whoever has the answer can already read its line.
        self.server.log(f"{self.command} {self.path} {status} {elapsed:.1f} ms {request_id}")
        self._write(status, headers, payload)

    def _refusal(self, body: bytes) -> Refused | None:
        """Why the authorizer refuses this request (None: it may reach the API)."""
        authorizer = self.server.authorizer
        if authorizer is None:
            return None
        return authorizer.check(self.command, self.path, self.headers.items(), body)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering a request whose body cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._reject(HTTPStatus.LENGTH_REQUIRED, "length_required", "send Content-Length")
            return None
        raw = self.headers.get("Content-Length", "0").strip() or "0"
        if not raw.isdigit():
            self._reject(HTTPStatus.BAD_REQUEST, "invalid_body", "invalid Content-Length")
            return None
        length = int(raw)
        if length > MAX_REQUEST_BYTES:
            self._reject(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "body_too_large",
                f"body exceeds {MAX_REQUEST_BYTES} bytes",
            )
            return None
        try:
            body = self.rfile.read(length)
        except (ConnectionError, TimeoutError) as exc:
            self._gone(f"while sending its body ({exc.strerror or exc})")
            return None
        if len(body) < length:  # the client closed the connection mid-body
            self._gone(f"after {len(body)} of {length} body bytes")
            return None
        return body

    def _gone(self, when: str) -> None:
        """A client that went away: one log line (never a traceback), nothing answered."""
        self.close_connection = True
        self.server.log(f"{self.command} {self.path} client disconnected {when}")

    def _reject(self, status: HTTPStatus, code: str, message: str) -> None:
        self.close_connection = True  # the unread body would be parsed as the next request
        headers = [("Content-Type", "application/json"), ("Connection", "close")]
        self.server.log(f"{self.command} {self.path} {int(status)} rejected: {message}")
        self._write(int(status), headers, _error_body(code, message))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, an oversized header) as the
        API's JSON error body instead of an HTML page."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # a malformed request line: no version was read
            self.request_version = "HTTP/1.0"  # ... and 0.9 would drop the status line
        status = HTTPStatus(code)
        text = message or status.phrase
        self.server.log(f"{self.requestline!r} {code} rejected: {text}")
        body = _error_body(f"http_{code}", f"{text}: {explain}" if explain else text)
        headers = [("Content-Type", "application/json"), ("Connection", "close")]
        self._write(code, headers, body)

    def _write(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (ConnectionError, TimeoutError) as exc:
            self._gone(f"before its answer was sent ({exc.strerror or exc})")

    def log_message(self, format: str, *args: Any) -> None:
        # http.server's own lines (malformed request lines, timeouts) keep the one-line format.
        self.server.log(f"{self.address_string()} {format % args}")


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()
