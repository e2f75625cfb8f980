"""Run ``tickerserve serve`` (or the ``make serve`` orchestration) as a subprocess on 127.0.0.1
and talk plain HTTP to it with the standard library."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("tickerserve")  # the installed console script
TICKERSERVE = (
    [str(_SCRIPT)]
    if _SCRIPT.is_file()
    else [sys.executable, "-c", "from tickerserve.cli.main import main; main()"]
)
START_TIMEOUT = 90.0  # two shared cores: a cold interpreter with LightGBM can take a while
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    url: str,
    method: str = "GET",
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One request; 4xx and 5xx come back as a ``Reply`` like any other status."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.headers, exc.read())


def post_json(url: str, body: Any) -> Reply:
    return http(url, "POST", json.dumps(body), {"Content-Type": "application/json"})


def is_listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def child_env(**extra: str) -> dict[str, str]:
    """This environment (dummy AWS credentials from conftest) without a store preset."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERSERVE_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@dataclass
class Running:
    """A started child process whose output goes to ``log``."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and wait for the exit code (killing the group if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"still running {STOP_TIMEOUT}s after signal {signum}") from None


@contextmanager
def running(
    argv: Sequence[str],
    *,
    port: int,
    log: Path,
    env: Mapping[str, str] | None = None,
    ignored: Sequence[int] = (),
) -> Iterator[Running]:
    """Start ``argv`` in its own process group, wait until ``port`` accepts connections,
    and always stop the whole group afterwards (no orphan, whatever the test did).
    ``ignored``: signals the child starts with ignored, as a script's background job
    (``cmd &``) starts with SIGINT ignored."""

    def inherit() -> None:
        for signum in ignored:
            signal.signal(signum, signal.SIG_IGN)

    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env or child_env()),
            cwd=ROOT,
            start_new_session=True,
            preexec_fn=inherit if ignored else None,
        )
    child = Running(process, log, port)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not is_listening(port):
            if process.poll() is not None:
                raise AssertionError(f"exited with {process.returncode}:\n{child.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not listening after {START_TIMEOUT}s:\n{child.output()}")
            time.sleep(0.1)
        yield child
    finally:
        if process.poll() is None:
            process.terminate()
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # anything the child left behind
        process.wait()
