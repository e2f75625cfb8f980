"""The README's curl examples, run literally against a local server, so the README cannot rot.

Convention: every ```bash block with a line ``# expect: STATUS [path=value ...]``, anywhere in
README.md, holds one ``curl`` command (backslash continuations allowed), where ``path`` is a
dotted path into the JSON answer (list items by index) and ``value`` the expected scalar as JSON
would print it, strings unquoted; in the section ``## Try it`` every bash block is one. A
```json block right after it is an example answer: it must have the same shape (keys, list
lengths, value types), not the same numbers. ``$API`` stands for the base URL the README
defines for ``make serve`` (``export API=...``).

Commands run with the real ``curl`` when the machine has one, and always also through a small
parser into urllib, so the check does not depend on curl being installed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.costs import main as costs_main
from tests.integration.conftest import DemoBucket
from tests.integration.serving import ROOT, TICKERSERVE, Running, http, running
from tests.support import free_port
from tickerserve.storage.registry import Registry

README = ROOT / "README.md"
SECTION = "## Try it"
README_URL = "http://127.0.0.1:8000"  # where `make serve` listens
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
_EXPECT = re.compile(r"^# expect: (\d{3})((?: \S+=\S+)*)\s*$")
_CURL_FLAGS = {"-s", "--silent", "-S", "--show-error"}


@dataclass(frozen=True)
class Example:
    expect: str
    command: str
    status: int
    fields: dict[str, str]
    output: Any | None

    @property
    def argv(self) -> list[str]:
        """The command's words, ``$API`` given the README's local value."""
        words = shlex.split(self.command.replace("\\\n", " "))
        return [w.replace("${API}", README_URL).replace("$API", README_URL) for w in words]


def read_examples() -> list[Example]:
    text = README.read_text()
    assert f"\n{SECTION}\n" in text, f"README.md has no {SECTION!r} section"
    try_it = text.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    blocks = [(m.group(1), m.group(2), m.start()) for m in _BLOCK.finditer(text)]
    start = text.index(try_it)
    examples: list[Example] = []
    for i, (language, body, at) in enumerate(blocks):
        lines = body.splitlines()
        expects = [m for m in map(_EXPECT.match, lines) if m]
        in_try_it = start <= at < start + len(try_it)
        if language != "bash" or not (expects or in_try_it):
            continue
        assert len(expects) == 1, f"each example block needs one '# expect:' line:\n{body}"
        command = "\n".join(line for line in lines if not line.startswith("#")).strip()
        assert command.startswith("curl "), f"one curl command per block:\n{body}"
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        output = json.loads(following[1]) if following and following[0] == "json" else None
        fields = dict(f.split("=", 1) for f in expects[0].group(2).split())
        examples.append(
            Example(expects[0].group(0), command, int(expects[0].group(1)), fields, output)
        )
    return examples


def readme_api() -> str | None:
    """The value the README gives ``$API`` for the local run (``export API=...``)."""
    found = re.findall(r"^export API=(\S+)$", README.read_text(), re.M)
    return found[0] if len(found) == 1 else None


EXAMPLES = read_examples()


def to_request(argv: list[str]) -> tuple[str, str, dict[str, str], str | None]:
    """Method, URL, headers and body of a curl command line (the options the README uses)."""
    assert argv[0] == "curl"
    method, url, headers, data = None, None, {}, None
    args = iter(argv[1:])
    for arg in args:
        if arg in _CURL_FLAGS:
            continue
        if arg in ("-X", "--request"):
            method = next(args)
        elif arg in ("-H", "--header"):
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data", "--data-raw"):
            data = next(args)
        elif arg.startswith("-"):
            raise AssertionError(f"README curl uses {arg}, which this test does not understand")
        else:
            url = arg
    assert url is not None, f"no URL in {argv}"
    if data is not None:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")  # as curl does
    return method or ("POST" if data is not None else "GET"), url, headers, data


def run_with_curl(argv: list[str]) -> tuple[int, bytes]:
    result = subprocess.run(
        [*argv, "--write-out", "\n%{http_code}"], capture_output=True, timeout=60, check=True
    )
    body, _, status = result.stdout.rpartition(b"\n")
    return int(status), body


def run_with_urllib(argv: list[str]) -> tuple[int, bytes]:
    method, url, headers, data = to_request(argv)
    reply = http(url, method, data, headers)
    return reply.status, reply.body


def value_at(answer: Any, path: str) -> Any:
    for part in path.split("."):
        answer = answer[int(part)] if isinstance(answer, list) else answer[part]
    return answer


def assert_same_shape(documented: Any, actual: Any, where: str = "answer") -> None:
    if isinstance(documented, dict):
        assert isinstance(actual, dict), where
        assert set(documented) == set(actual), f"{where}: keys differ from the README"
        for key, value in documented.items():
            assert_same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(actual, list) and len(actual) == len(documented), where
        for i, (d, a) in enumerate(zip(documented, actual, strict=True)):
            assert_same_shape(d, a, f"{where}.{i}")
    else:
        assert _kind(documented) == _kind(actual), (
            f"{where}: README shows {documented!r}, the server answers {actual!r}"
        )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else type(value).__name__


def test_every_expect_line_in_the_readme_is_a_tested_example():
    # Given every '# expect:' line of the README, in any section
    lines = [line for line in README.read_text().splitlines() if line.startswith("# expect:")]
    # Then each belongs to an example the suite runs, the Outcomes section's included
    assert sorted(e.expect for e in EXAMPLES) == sorted(lines)
    section = README.read_text().split("\n### Outcomes\n", 1)[1].split("\n### ", 1)[0]
    assert any(e.command in section for e in EXAMPLES)


def test_the_readme_defines_api_for_the_local_run():
    # Given examples that name the server as $API
    uses = [e for e in EXAMPLES if "$API" in e.command]
    assert uses, "no example uses $API any more: drop this test and the definition"
    # Then the README says what $API is for make serve, once, as a line a shell runs
    assert readme_api() == README_URL


def test_the_examples_cover_what_a_new_user_tries_first():
    # Given the parsed README examples
    paths = {(e.status, to_request(e.argv)[1].removeprefix(README_URL)) for e in EXAMPLES}
    # Then they show a prediction, a batch, an unknown ticker and a bad body, against make serve
    assert (200, "/predict") in paths
    assert (200, "/predict/batch") in paths
    assert {e.fields.get("error.code") for e in EXAMPLES if e.status == 404} == {"unknown_ticker"}
    assert any(e.status == 400 for e in EXAMPLES)
    assert any(e.fields.get("model.name") == "stocks/universal" for e in EXAMPLES)
    assert all(to_request(e.argv)[1].startswith(README_URL) for e in EXAMPLES)


@pytest.mark.parametrize("runner", ["curl", "urllib"])
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.expect[10:60] for e in EXAMPLES])
def test_readme_example_answers_as_documented(local_server: Running, example: Example, runner: str):
    # Given the README's command aimed at the test server instead of make serve's port
    argv = [a.replace(README_URL, local_server.url) for a in example.argv]
    if runner == "curl" and shutil.which("curl") is None:
        pytest.skip("curl is not installed; the urllib run covers this example")
    # When it runs
    status, body = run_with_curl(argv) if runner == "curl" else run_with_urllib(argv)
    # Then the status, the named fields and the shape of the answer are what the README says
    assert status == example.status, body
    answer = json.loads(body)
    for path, expected in example.fields.items():
        actual = value_at(answer, path)
        assert (actual if isinstance(actual, str) else json.dumps(actual)) == expected, path
    if example.output is not None:
        assert_same_shape(example.output, answer)


def python_example() -> str:
    """The ```python block of the README's SigV4 client section."""
    section = (
        README.read_text().split("### Calling the API from Python", 1)[1].split("\n### ", 1)[0]
    )
    blocks = [m.group(2) for m in _BLOCK.finditer(section) if m.group(1) == "python"]
    assert len(blocks) == 1, "one python example in the SigV4 section"
    return blocks[0]


@pytest.fixture(scope="module")
def signing_server(
    demo_bucket: DemoBucket, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """``tickerserve serve --auth iam``: checks each request's SigV4 signature against the
    test's dummy AWS credentials (conftest), as API Gateway or a function URL would."""
    tmp = tmp_path_factory.mktemp("serve-iam")
    port = free_port()
    argv = [*TICKERSERVE, *demo_bucket.target, "serve", "--auth", "iam", "--port", str(port)]
    argv += ["--cache-dir", str(tmp / "cache")]
    with running(argv, port=port, log=tmp / "serve.log") as server:
        yield server


def write_outputs(folder: Path, url: str, service: str) -> None:
    """The ``cdk-outputs.json`` make deploy writes, pointing at ``url``."""
    outputs = {"Tickerserve-dev-Serving": {"ApiUrl": f"{url}/", "SigningService": service}}
    (folder / "cdk-outputs.json").write_text(json.dumps(outputs))


@pytest.mark.parametrize("service", ["execute-api", "lambda"])
def test_python_sigv4_client_example_runs_as_written(
    signing_server: Running, tmp_path: Path, service: str
):
    # Given the outputs file of a deployed REST or HTTP API (execute-api) or function URL
    # (lambda), pointing at a server that checks signatures, and the test's AWS credentials
    write_outputs(tmp_path, signing_server.url, service)
    # When the README's example runs
    result = subprocess.run(
        [sys.executable, "-c", python_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then it signs, sends and prints a prediction, and an error's code
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("1.0.0 ")
    assert second == "unknown_ticker"
    assert "POST /predict 200 " in signing_server.output()


def client(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The example's ``call`` function (its definitions, run as written; not its calls)."""
    definitions, calls = python_example().split("\nrow = ", 1)
    assert "call(" in calls
    monkeypatch.chdir(folder)
    namespace: dict[str, Any] = {}
    exec(compile(definitions, "README.md", "exec"), namespace)
    return namespace["call"]


def test_the_example_is_refused_with_another_secret_key(
    signing_server: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Given a caller whose secret key is not the one the server knows
    write_outputs(tmp_path, signing_server.url, "execute-api")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    # When it calls; Then the server refuses it as the deployed API does
    error = client(tmp_path, monkeypatch)("GET", "health")["error"]
    assert error["code"] == "forbidden"
    assert "signature we calculated does not match" in error["message"]


class _GatewayRefusals(BaseHTTPRequestHandler):
    """Answers as an HTTP API or a function URL refuses, before any function runs."""

    ANSWERS = {
        "/unsigned": (403, b'{"message":"Forbidden"}'),
        "/busy": (429, b'{"Message":"Rate Exceeded."}'),
        "/crashed": (502, b"Internal Server Error"),
        "/missing": (404, b'{"message":"Not Found"}'),
    }

    def do_GET(self) -> None:
        status, body = self.ANSWERS[self.path]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_example_reads_the_gateways_own_refusals_as_the_apis_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Given a front door that answers in its own shape ({"message"}, {"Message"}, plain text)
    server = HTTPServer(("127.0.0.1", 0), _GatewayRefusals)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        write_outputs(tmp_path, f"http://127.0.0.1:{server.server_address[1]}", "lambda")
        call = client(tmp_path, monkeypatch)
        # Then the example's client gives each as the API's error shape and code
        answers = {
            path: call("GET", path.lstrip("/"))["error"] for path in _GatewayRefusals.ANSWERS
        }
    finally:
        server.shutdown()
        server.server_close()
    assert answers["/unsigned"] == {"code": "forbidden", "message": "Forbidden"}
    assert answers["/busy"] == {"code": "throttled", "message": "Rate Exceeded."}
    assert answers["/crashed"] == {"code": "gateway_error", "message": "Internal Server Error"}
    assert answers["/missing"] == {"code": "client_error", "message": "Not Found"}


def test_registry_example_is_one_the_function_reads():
    # Given the complete registry the README shows
    section = README.read_text().split("A complete registry, as the CLI writes it", 1)[1]
    block = next(m.group(2) for m in _BLOCK.finditer(section) if m.group(1) == "json")
    registry = Registry.from_json(block.encode())
    # Then it routes and resolves as its text says
    assert registry.route("SOXX", None, None).model == "etfs/SMH"
    assert registry.route("AAPL", None, "h1").model == "stocks/AAPL/h1"
    assert registry.route("AAPL", signal="volatility").model == "stocks/AAPL/volatility"
    assert json.loads(block)["schema"] == 3  # as the CLI writes it now
    assert registry.route("TSLA", "stock", None).model == "stocks/universal"  # the fallback
    assert registry.resolve("etfs/SMH").version == "1.0.1"
    assert registry.resolve("etfs/SMH", alias="challenger").version == "1.0.2"
    assert [t.version for t in registry.models["etfs/SMH"].history["production"]] == ["1.0.0"]


def test_the_cost_tables_are_what_bench_costs_prints_for_the_quoted_inputs(capsys):
    # Given the README's cost section: the command with the measured inputs, and its tables
    section = README.read_text().split("\n## What it costs\n", 1)[1].split("\n## ", 1)[0]
    (block,) = [m.group(2) for m in _BLOCK.finditer(section) if "reproduce: " in m.group(2)]
    command = block.rsplit("reproduce: ", 1)[1].strip()
    argv = shlex.split(command)
    assert argv[:3] == [".venv/bin/python", "-m", "bench.costs"]
    # When the script runs with those inputs
    assert costs_main(argv[3:]) == 0
    # Then it prints exactly the tables the README shows
    assert capsys.readouterr().out.strip() == block.strip()
