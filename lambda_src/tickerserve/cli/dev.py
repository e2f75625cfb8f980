"""``make serve``: the API on http://127.0.0.1:8000 over demo models, in one command.

    python -m tickerserve.cli.dev [--port 8000] [--moto-port 5555] [--store PATH | --bucket NAME]

Default: train the demo models once (kept under ``.serve/``), start a moto S3 server on
127.0.0.1, create a bucket, publish the demo models into it with ``tickerserve`` commands
(production alias, routes), then run ``tickerserve serve``. ``--store PATH`` serves a local
folder store instead (the demo models are published into it first when it has no registry);
``--bucket NAME`` serves a real bucket exactly as it is, publishing nothing. Ctrl-C (or
SIGTERM) stops the server and the moto process.

The commands run in this process through the CLI's own Typer app (same parsing, same code,
same exit codes as the console script): one interpreter start instead of one per command.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from tickerserve.cli.demo_set import DEMO_MODELS, ensure_demo_folders
from tickerserve.cli.errors import EXIT_INTERRUPTED, EXIT_OK, Failed, exit_code_for, one_line
from tickerserve.cli.localserver import port_is_free
from tickerserve.cli.main import app
from tickerserve.cli.serve import DEFAULT_HOST, DEFAULT_PORT
from tickerserve.errors import TickerserveError
from tickerserve.layout import DEFAULT_REGISTRY_KEY
from tickerserve.settings import ENV_REGISTRY_KEY
from tickerserve.storage.registry import DEFAULT_ALIAS
from tickerserve.storage.store import KeyNotFound, LocalStore

DEMO_BUCKET = "tickerserve-demo"
DEFAULT_MOTO_PORT = 5555
DEFAULT_WORKDIR = Path(".serve")
# moto accepts any credentials; these keep a real profile from ever being used against it.
MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
MOTO_ENV_DROPPED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")
STOP_TIMEOUT = 10.0


def say(message: str) -> None:
    typer.echo(f"[make serve] {message}", err=True)


class Cli:
    """Runs ``tickerserve`` commands with fixed global options, echoing each command line."""

    def __init__(self, target: Sequence[str]) -> None:
        self.target = list(target)

    def __call__(self, *args: str) -> None:
        argv = [*self.target, *args]
        typer.echo("$ " + shlex.join(["tickerserve", *argv]), err=True)
        code = app(argv, prog_name="tickerserve", standalone_mode=False)
        if code == EXIT_INTERRUPTED:
            raise KeyboardInterrupt
        if code not in (None, EXIT_OK):
            raise Failed(f"tickerserve {args[0]} failed with exit code {code}")


def ensure_free(host: str, port: int, setting: str) -> None:
    """Fail early, before anything starts, when ``port`` is taken."""
    if not port_is_free(host, port):
        raise Failed(f"{host}:{port} is already in use; choose another port with {setting}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child (if still running) and reap it; a second Ctrl-C cannot cut this short
    and leave an orphan behind."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def wait_until_listening(process: subprocess.Popen[bytes], host: str, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Failed(f"the process for {host}:{port} exited with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise Failed(f"nothing listens on {host}:{port} after 60 s")


@contextmanager
def moto_server(host: str, port: int, log_file: Path | None = None) -> Iterator[str]:
    """A moto S3 server on ``host:port`` for as long as the block runs; yields its URL.
    Also what the tests and the benchmark start; without ``log_file`` its output is dropped."""
    command = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
    if log_file is None:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("wb") as log:  # one run's log; moto keeps nothing between runs
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(process, host, port)
        yield f"http://{host}:{port}"
    finally:
        stop(process)


def create_bucket(endpoint_url: str, bucket: str) -> None:
    import boto3  # the CLI's other commands do not need it at startup

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=MOTO_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=MOTO_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=MOTO_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=bucket)


def publish_demo(cli: Cli, models_dir: Path) -> None:
    """Publish every demo model (production alias) with its ticker routes, with the CLI."""
    folders = ensure_demo_folders(models_dir)
    for model in DEMO_MODELS:
        # One registry update per model: alias and routes together (publish --route).
        routes = [arg for ticker in model.tickers for arg in ("--route", ticker)]
        folder = str(folders[model.name])
        cli("publish", folder, "--model", model.name, "--alias", DEFAULT_ALIAS, *routes)


def has_registry(store_path: Path) -> bool:
    key = os.environ.get(ENV_REGISTRY_KEY, "").strip() or DEFAULT_REGISTRY_KEY
    try:
        LocalStore(store_path).get(key)
    except KeyNotFound:
        return False
    return True


def run(
    *,
    host: str,
    port: int,
    moto_port: int,
    store: Path | None,
    bucket: str | None,
    workdir: Path,
) -> None:
    """Start what the chosen target needs, then serve until interrupted."""
    ensure_free(host, port, "--port (PORT=...)")
    with ExitStack() as stack:
        if bucket:
            cli = Cli(["--bucket", bucket])
            say(f"serving the real bucket {bucket} as it is (nothing is published)")
        elif store:
            cli = Cli(["--store", str(store)])
            if not has_registry(store):
                say(f"{store} has no registry: publishing the demo models into it")
                publish_demo(cli, workdir / "models")
        else:
            ensure_free(host, moto_port, "--moto-port (MOTO_PORT=...)")
            say(f"starting a moto S3 server on {host}:{moto_port} (log: {workdir / 'moto.log'})")
            endpoint = stack.enter_context(moto_server(host, moto_port, workdir / "moto.log"))
            for name in MOTO_ENV_DROPPED:
                os.environ.pop(name, None)
            os.environ.update(MOTO_ENV)  # this process is the CLI now: it must not use a profile
            create_bucket(endpoint, DEMO_BUCKET)
            cli = Cli(["--bucket", DEMO_BUCKET, "--endpoint-url", endpoint])
            say(f"publishing {len(DEMO_MODELS)} demo models into s3://{DEMO_BUCKET}")
            publish_demo(cli, workdir / "models")
        # Returns when interrupted (Ctrl-C or SIGTERM); then the stack stops moto.
        cli("serve", "--host", host, "--port", str(port), "--cache-dir", str(workdir / "cache"))


def dev_command(
    port: Annotated[int, typer.Option("--port", help="Port of the API.")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option("--host", help="Interface of every server.")] = DEFAULT_HOST,
    moto_port: Annotated[
        int, typer.Option("--moto-port", help="Port of the moto S3 server.")
    ] = DEFAULT_MOTO_PORT,
    store: Annotated[
        Path | None, typer.Option("--store", help="Serve this local folder store instead.")
    ] = None,
    bucket: Annotated[
        str | None, typer.Option("--bucket", help="Serve this real S3 bucket instead.")
    ] = None,
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Demo models, artifact cache and logs.")
    ] = DEFAULT_WORKDIR,
) -> None:
    """Serve the API locally over demo models in a moto S3 server (or a store or bucket)."""
    if store and bucket:
        raise typer.BadParameter("give --store or --bucket, not both")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run(host=host, port=port, moto_port=moto_port, store=store, bucket=bucket, workdir=workdir)
    except KeyboardInterrupt:
        say("stopped")
        raise typer.Exit(EXIT_OK) from None
    except (TickerserveError, OSError) as exc:
        typer.echo(one_line(exc), err=True)
        raise typer.Exit(exit_code_for(exc)) from None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    typer.run(dev_command)


if __name__ == "__main__":
    main()
