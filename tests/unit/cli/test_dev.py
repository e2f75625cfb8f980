"""``make serve``'s pieces: a port taken is refused before anything starts, CLI commands run
in this process with their exit codes, children are stopped and reaped, a moto S3 server
stands up a bucket, and a store is published into only when it has no registry."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import typer
from typer.testing import CliRunner

from tests.support import REGISTRY_KEY, free_port
from tickerserve.cli import dev
from tickerserve.cli.errors import Failed
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.store import LocalStore


def test_a_port_in_use_is_refused_naming_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(Failed) as caught:
            dev.ensure_free("127.0.0.1", port, "--port (PORT=...)")
    assert caught.value.message == (
        f"127.0.0.1:{port} is already in use; choose another port with --port (PORT=...)"
    )
    dev.ensure_free("127.0.0.1", free_port(), "--port")  # a free one passes


def test_cli_commands_run_in_process_and_a_failure_names_the_command(tmp_path: Path, models):
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    cli = dev.Cli(["--store", str(tmp_path)])
    cli("route", "SMH", "--model", "etfs/SMH")
    with pytest.raises(Failed, match=r"^tickerserve promote failed with exit code 2$"):
        cli("promote", "etfs/SMH", "9.9.9")


def test_a_child_is_stopped_and_one_that_ignores_sigterm_is_killed(monkeypatch):
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dev.stop(polite)
    assert polite.returncode == -signal.SIGTERM
    stubborn = subprocess.Popen([sys.executable, "-c", (
        "import signal, time, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)")], stdout=subprocess.PIPE)  # fmt: skip
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    monkeypatch.setattr(dev, "STOP_TIMEOUT", 0.5)
    dev.stop(stubborn)
    assert stubborn.returncode == -signal.SIGKILL
    dev.stop(stubborn)  # stopping a finished child again is harmless


def test_a_child_that_exits_before_listening_is_a_failure():
    port = free_port()
    quitter = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(Failed) as caught:
        dev.wait_until_listening(quitter, "127.0.0.1", port)
    assert caught.value.message == f"the process for 127.0.0.1:{port} exited with code 3"


def test_a_moto_server_serves_a_bucket_and_stops_with_the_block(tmp_path: Path):
    port = free_port()
    log = tmp_path / "moto.log"
    with dev.moto_server("127.0.0.1", port, log) as endpoint:
        assert endpoint == f"http://127.0.0.1:{port}"
        dev.create_bucket(endpoint, dev.DEMO_BUCKET)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == [dev.DEMO_BUCKET]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    assert log.exists()


def test_a_store_has_a_registry_only_once_something_is_published(tmp_path: Path, models):
    assert dev.has_registry(tmp_path) is False
    publish_bundle(LocalStore(tmp_path), models.smh, registry_key=REGISTRY_KEY)
    assert dev.has_registry(tmp_path) is True


def test_store_and_bucket_together_are_refused():
    app = typer.Typer()
    app.command()(dev.dev_command)
    result = CliRunner().invoke(app, ["--store", "x", "--bucket", "y"])
    assert result.exit_code == 2
    assert "give --store or --bucket, not both" in result.output
