"""A moto S3 server as a child process: what ``make serve``, the tests and the benchmark run on
127.0.0.1 instead of S3.

The child runs in its own session, so a Ctrl-C in the terminal reaches only the parent, which
still needs the server to write the last captured records and save the bucket before it stops
it. It also exits by itself when its parent dies without stopping it (``kill -9``, a crash),
so no orphan keeps holding the port for the next ``make serve``.

    python -m tickerserve.cli.moto_process --parent-pid PID -H 127.0.0.1 -p 5555
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tickerserve.cli.errors import Failed
from tickerserve.cli.stop_signals import signals_ignored

STOP_TIMEOUT = 10.0
START_TIMEOUT = 60.0
PARENT_POLL_SECONDS = 0.5


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child (if still running) and reap it; a second Ctrl-C cannot cut this short
    and leave an orphan behind."""
    with signals_ignored():
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_listening(process: subprocess.Popen[bytes], host: str, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Failed(f"the process for {host}:{port} exited with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise Failed(f"nothing listens on {host}:{port} after {START_TIMEOUT:.0f} s")


@contextmanager
def moto_server(host: str, port: int, log_file: Path | None = None) -> Iterator[str]:
    """A moto S3 server on ``host:port`` for as long as the block runs; yields its URL.
    Without ``log_file`` its output is dropped."""
    command = [sys.executable, "-m", __name__, "--parent-pid", str(os.getpid())]
    command += ["-H", host, "-p", str(port)]
    if log_file is None:
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("wb") as log:  # one run's log
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
    try:
        wait_until_listening(process, host, port)
        yield f"http://{host}:{port}"
    finally:
        stop(process)


def _exit_when_orphaned(parent: int) -> None:
    """Poll the parent: once this process is re-parented, the parent is gone."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(0)  # nothing of moto's in-memory state can be saved any more


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--parent-pid"]:
        parent = int(args[1])
        args = args[2:]
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    from moto.server import main as moto_main

    moto_main(args)


if __name__ == "__main__":
    main()
