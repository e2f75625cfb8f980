"""The HTTP-to-event adapter of ``tickerserve serve``: requests become the REST proxy events API
Gateway sends, and proxy responses become HTTP responses."""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from tests.support import DemoModels, load_event, populate
from tickerserve.cli.localserver import LocalServer, response_parts, rest_event
from tickerserve.cli.sigv4 import SignatureCheck
from tickerserve.http.api import Api
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.store import LocalStore

JSON = [("Host", "127.0.0.1:8000"), ("Content-Type", "application/json")]


def keys(value: Any, prefix: str = "") -> set[str]:
    """Every key path of nested dicts, e.g. ``requestContext.identity.sourceIp``."""
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    for key, item in value.items():
        found |= {f"{prefix}{key}"} | keys(item, f"{prefix}{key}.")
    return found


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, models: DemoModels) -> Api:
    root = tmp_path_factory.mktemp("store")
    populate(LocalStore(root), models)
    settings = Settings(store_path=str(root), cache_dir=str(root / "cache"))
    return Api(ModelService(settings))


def test_event_has_every_field_of_a_real_api_gateway_rest_event():
    # Given a real REST proxy event captured from API Gateway
    real = load_event("rest_predict.json")
    # When the adapter builds one for the same request
    event = rest_event("POST", "/predict", JSON, real["body"].encode())
    # Then it has every field the real one has (headers aside, which are the client's own)
    ignored = {k for k in keys(real) if k.startswith(("headers.", "multiValueHeaders."))}
    assert keys(real) - ignored <= keys(event)
    assert (event["httpMethod"], event["path"], event["resource"]) == (
        "POST",
        "/predict",
        "/predict",
    )
    assert event["body"] == real["body"] and event["isBase64Encoded"] is False


def test_model_path_fills_path_parameters_and_resource():
    event = rest_event("GET", "/models/BRK.B", JSON, b"")
    assert event["resource"] == "/models/{ticker}"
    assert event["pathParameters"] == {"ticker": "BRK.B"}
    assert event["requestContext"]["resourcePath"] == "/models/{ticker}"
    assert event["body"] is None


def test_percent_encoded_path_is_decoded_as_api_gateway_does():
    event = rest_event("GET", "/models/%5EGSPC", JSON, b"")
    assert event["path"] == "/models/^GSPC"
    assert event["pathParameters"] == {"ticker": "^GSPC"}


def test_query_string_keeps_repeated_and_blank_values():
    event = rest_event("GET", "/docs?format=json&tag=a&tag=b&flag=", JSON, b"")
    assert event["queryStringParameters"] == {"format": "json", "tag": "b", "flag": ""}
    assert event["multiValueQueryStringParameters"] == {
        "format": ["json"],
        "tag": ["a", "b"],
        "flag": [""],
    }
    assert rest_event("GET", "/health", JSON, b"")["queryStringParameters"] is None


def test_repeated_headers_keep_the_last_value_and_all_values():
    event = rest_event("GET", "/health", [*JSON, ("X-Tag", "a"), ("X-Tag", "b")], b"")
    assert event["headers"]["X-Tag"] == "b"
    assert event["multiValueHeaders"]["X-Tag"] == ["a", "b"]
    assert event["requestContext"]["domainName"] == "127.0.0.1:8000"


def test_a_body_that_is_not_utf8_is_passed_base64_encoded():
    event = rest_event("POST", "/predict", JSON, b"\xff\xfe")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


def test_every_request_gets_its_own_request_id_and_time():
    now = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    first, second = (rest_event("GET", "/health", JSON, b"", now=now) for _ in range(2))
    assert first["requestContext"]["requestId"] != second["requestContext"]["requestId"]
    assert first["requestContext"]["requestTime"] == "23/Nov/2026:09:30:00 +0000"
    assert first["requestContext"]["requestTimeEpoch"] == 1795426200000


def test_adapted_request_gets_the_same_answer_as_the_captured_event(api: Api):
    # Given a captured API Gateway event and the same HTTP request through the adapter
    real = load_event("rest_predict.json")
    real["headers"]["X-Request-Id"] = "req-1"
    adapted = rest_event(
        "POST", "/predict", [*JSON, ("X-Request-Id", "req-1")], real["body"].encode()
    )
    # When both are handled
    expected, actual = api.handle(real, None), api.handle(adapted, None)
    # Then the answers are the same
    assert actual["statusCode"] == expected["statusCode"] == 200
    assert json.loads(actual["body"]) == json.loads(expected["body"])


def test_path_parameter_route_is_served(api: Api):
    status, headers, body = response_parts(
        api.handle(rest_event("GET", "/models/aapl", JSON, b""), None)
    )
    assert status == 200
    assert ("Content-Type", "application/json") in headers
    assert json.loads(body)["model"]["name"] == "stocks/universal"


def test_response_parts_reads_rest_and_http_api_shapes():
    rest = {
        "statusCode": 404,
        "multiValueHeaders": {"Content-Type": ["application/json"], "Set-Cookie": ["a=1", "b=2"]},
        "body": '{"error": {}}',
        "isBase64Encoded": False,
    }
    assert response_parts(rest) == (
        404,
        [("Content-Type", "application/json"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        b'{"error": {}}',
    )
    v2 = {
        "statusCode": 200,
        "headers": {"Content-Type": "text/html"},
        "body": "PGI+",
        "isBase64Encoded": True,
    }
    assert response_parts(v2) == (200, [("Content-Type", "text/html")], b"<b>")


def test_adapter_and_docs_route_together_serve_the_openapi_document(
    tmp_path: Path, models: DemoModels
):
    # Given the API with docs, as the local server builds it
    populate(LocalStore(tmp_path / "store"), models)
    settings = Settings(store_path=str(tmp_path / "store"), cache_dir=str(tmp_path / "cache"))
    api = Api(ModelService(settings), docs=True)
    # When /openapi.json is requested through the adapter
    status, headers, body = response_parts(
        api.handle(rest_event("GET", "/openapi.json", JSON, b""), None)
    )
    # Then the document comes back as JSON
    assert (status, ("Content-Type", "application/json") in headers) == (200, True)
    assert json.loads(body)["paths"]["/predict"]["post"]["requestBody"]["required"] is True


@contextmanager
def serving(api: Any, log: Callable[[str], None], authorizer: Any = None) -> Iterator[LocalServer]:
    """The local server on a free port, in a thread of this process."""
    server = LocalServer(("127.0.0.1", 0), api, log=log, authorizer=authorizer)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def exchange(server: LocalServer, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes as a request; the status, headers and body of the answer."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=10) as sock:
        sock.sendall(raw)
        response = HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def test_the_log_line_is_written_before_the_answer_is_sent(api: Api):
    # Given a slow log sink (stderr piped into a busy reader)
    lines: list[str] = []

    def slow_log(line: str) -> None:
        time.sleep(0.2)
        lines.append(line)

    with serving(api, slow_log) as server:
        # When a client has its answer
        status, _, _ = exchange(server, b"GET /models/SMH HTTP/1.1\r\nHost: x\r\n\r\n")
        # Then the request's line is already in the log: nobody has to wait for it
        assert status == 200
        assert len(lines) == 1 and lines[0].startswith("GET /models/SMH 200 ")


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "CONNECT"])
def test_any_method_gets_the_apis_json_answer_not_an_html_page(api: Api, method: str):
    with serving(api, lambda line: None) as server:
        status, headers, body = exchange(server, f"{method} /health HTTP/1.1\r\n\r\n".encode())
    assert (status, headers["Allow"]) == (405, "GET")
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "method_not_allowed"


def test_a_malformed_request_line_is_a_json_400(api: Api):
    logged: list[str] = []
    with serving(api, logged.append) as server:
        status, headers, body = exchange(server, b"GET /health HTTP/9.Z\r\n\r\n")
    assert (status, headers["Content-Type"]) == (400, "application/json")
    assert json.loads(body)["error"]["code"] == "http_400"
    assert logged and "400 rejected" in logged[0]


def test_too_many_headers_is_a_json_431(api: Api):
    headers = "".join(f"X-H{i}: v\r\n" for i in range(120))
    with serving(api, lambda line: None) as server:
        status, _, body = exchange(server, f"GET /health HTTP/1.1\r\n{headers}\r\n".encode())
    assert status == 431
    assert json.loads(body)["error"]["code"] == "http_431"


class CountingApi:
    """Counts what reaches the API."""

    def __init__(self, api: Api | SlowApi) -> None:
        self.api = api
        self.events: list[dict[str, Any]] = []

    def handle(self, event: Any, context: Any) -> Any:
        self.events.append(event)
        return self.api.handle(event, context)


def test_a_request_the_authorizer_refuses_never_reaches_the_api(api: Api):
    # Given the local server checking signatures (serve --auth iam)
    key = ReadOnlyCredentials("AKIDLOCALEXAMPLE", "local-secret", None)
    counting, logged = CountingApi(api), list[str]()
    with serving(counting, logged.append, SignatureCheck(key)) as server:
        host, port = str(server.server_address[0]), server.server_address[1]
        # When an unsigned request arrives
        status, headers, body = exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        # Then it gets the deployed REST API's 403 in the API's error shape, and the API never
        # saw it
        assert (status, headers["Content-Type"]) == (403, "application/json")
        assert json.loads(body) == {
            "error": {"code": "forbidden", "message": "Missing Authentication Token"}
        }
        assert counting.events == [] and "403" in logged[0] and "refused" in logged[0]
        # And a request signed with the key is answered by the API
        request = AWSRequest(method="GET", url=f"http://{host}:{port}/health")
        SigV4Auth(key, "lambda", "us-east-1").add_auth(request)
        lines = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
        raw = f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n{lines}\r\n".encode()
        status, _, body = exchange(server, raw)
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert len(counting.events) == 1


class SlowApi:
    """Answers after a pause, long enough for a client to give up first."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def handle(self, event: Any, context: Any) -> Any:
        time.sleep(0.3)
        return self.api.handle(event, context)


def hang_up(server: LocalServer, raw: bytes, *, reset: bool, wait: float = 0.8) -> None:
    """Send ``raw``, then close the connection (with a TCP reset when ``reset``) and give the
    server time to notice."""
    host, port = server.server_address[:2]
    sock = socket.create_connection((str(host), port), timeout=10)
    sock.sendall(raw)
    time.sleep(0.05)
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    time.sleep(wait)


@pytest.mark.parametrize(
    ("raw", "reset", "expected"),
    [
        (
            b"POST /predict HTTP/1.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"ticker"',
            False,
            "POST /predict client disconnected after 9 of 100 body bytes",
        ),
        (
            b"POST /predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{",
            True,
            "POST /predict client disconnected while sending its body (Connection reset by peer)",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
            True,
            "GET /health client disconnected before its answer was sent (Connection reset by peer)",
        ),
        (b"GET /hea", True, "disconnected (Connection reset by peer)"),
    ],
    ids=["mid-body", "reset-mid-body", "reset-before-the-answer", "reset-mid-request-line"],
)
def test_a_client_that_disconnects_mid_request_is_one_log_line(
    api: Api, capsys: pytest.CaptureFixture[str], raw: bytes, reset: bool, expected: str
):
    # Given the local server with an API slow enough for the client to give up first
    counting, logged = CountingApi(SlowApi(api)), list[str]()
    with serving(counting, logged.append) as server:
        # When a client hangs up mid-request
        hang_up(server, raw, reset=reset)
        # Then the server logs one line saying so, prints no traceback, and keeps serving
        status, _, _ = exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    disconnects = [line for line in logged if "disconnected" in line]
    assert len(disconnects) == 1 and disconnects[0].endswith(expected), logged
    assert "Traceback" not in capsys.readouterr().err
    # ... and a body that never arrived in full never reached the API
    if raw.startswith(b"POST"):
        assert all(e["httpMethod"] == "GET" for e in counting.events)
