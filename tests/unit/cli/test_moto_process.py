"""The moto server child of make serve: out of the terminal's Ctrl-C, and never an orphan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.support import free_port
from tickerserve.cli import moto_process
from tickerserve.cli.errors import Failed
from tickerserve.cli.moto_process import moto_server


def listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_server_runs_in_its_own_session_and_stops_with_the_block(tmp_path: Path):
    port = free_port()
    with moto_server("127.0.0.1", port, tmp_path / "moto.log") as endpoint:
        # Given the server answers S3 calls
        client = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
        client.create_bucket(Bucket="one-bucket")
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["one-bucket"]
        # Then a Ctrl-C in this terminal (its process group) does not reach it
        child = int(
            subprocess.run(
                ["pgrep", "-f", f"moto_process --parent-pid {os.getpid()} -H 127.0.0.1 -p {port}"],
                capture_output=True, text=True, check=True,
            ).stdout.split()[0]
        )  # fmt: skip
        assert os.getpgid(child) != os.getpgid(0)
    # When the block ends, it is stopped
    assert not listening(port)


PARENT = """
import sys, time
from tickerserve.cli import moto_process
from tickerserve.cli.errors import Failed
from tickerserve.cli.moto_process import moto_server
with moto_server("127.0.0.1", int(sys.argv[1])):
    print("up", flush=True)
    time.sleep(120)
"""


def test_the_server_exits_when_its_parent_is_killed():
    # Given a parent process (make serve) that started the server
    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None and parent.stdout.readline().strip() == "up"
    assert listening(port)
    # When the parent is killed without a chance to stop it (kill -9, a crash)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    # Then the server exits too, freeing its port for the next run
    deadline = time.monotonic() + 10
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not listening(port)


def test_a_child_is_stopped_and_one_that_ignores_sigterm_is_killed(monkeypatch):
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    moto_process.stop(polite)
    assert polite.returncode == -signal.SIGTERM
    stubborn = subprocess.Popen([sys.executable, "-c", (
        "import signal, time, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)")], stdout=subprocess.PIPE)  # fmt: skip
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    monkeypatch.setattr(moto_process, "STOP_TIMEOUT", 0.5)
    moto_process.stop(stubborn)
    assert stubborn.returncode == -signal.SIGKILL
    moto_process.stop(stubborn)  # stopping a finished child again is harmless


def test_a_child_that_exits_before_listening_is_a_failure():
    port = free_port()
    quitter = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(Failed) as caught:
        moto_process.wait_until_listening(quitter, "127.0.0.1", port)
    assert caught.value.message == f"the process for 127.0.0.1:{port} exited with code 3"
