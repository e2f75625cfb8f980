"""``make serve``: the API on http://127.0.0.1:8000 over demo models, in one command.

    python -m tickerserve.cli.dev [--port 8000] [--moto-port 5555] [--fresh]
                                  [--store PATH | --bucket NAME]

Default: start a moto S3 server on 127.0.0.1 and create a bucket; put back what the bucket held
when the last run stopped (``.serve/bucket/``, see ``bucket_snapshot``), or, the first time (or
with ``--fresh``), train the demo models once (kept under ``.serve/models/``) and publish them
with ``tickerserve`` commands (production alias, routes); then run ``tickerserve serve``. While
it serves, and when it stops, the bucket is saved again, so what was published, imported,
captured and monitored is there next time. ``--store PATH`` serves a local folder store
instead (the demo models are published into it first when it has no registry); ``--bucket
NAME`` serves a real bucket exactly as it is, publishing nothing. Ctrl-C (or SIGTERM) stops
the server, saves the bucket and stops the moto process.

The commands run in this process through the CLI's own Typer app (same parsing, same code,
same exit codes as the console script): one interpreter start instead of one per command.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tickerserve.cli.bucket_snapshot import BucketSnapshot, PeriodicSave, Saved, SnapshotError
from tickerserve.cli.console import human_bytes
from tickerserve.cli.demo_set import DEMO_MODELS, ensure_demo_folders
from tickerserve.cli.errors import EXIT_INTERRUPTED, EXIT_OK, Failed, exit_code_for, one_line
from tickerserve.cli.localserver import port_is_free
from tickerserve.cli.main import app
from tickerserve.cli.moto_process import moto_server
from tickerserve.cli.serve import DEFAULT_HOST, DEFAULT_PORT
from tickerserve.cli.stop_signals import signals_ignored, stopped_by_signals
from tickerserve.errors import TickerserveError
from tickerserve.layout import DEFAULT_REGISTRY_KEY
from tickerserve.settings import ENV_REGISTRY_KEY
from tickerserve.storage.registry import DEFAULT_ALIAS
from tickerserve.storage.store import KeyNotFound, LocalStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEMO_BUCKET = "tickerserve-demo"
DEFAULT_MOTO_PORT = 5555
DEFAULT_WORKDIR = Path(".serve")
SNAPSHOT_FOLDER = "bucket"  # under the workdir: what the moto bucket held
DEFAULT_SAVE_EVERY = 10.0
# moto accepts any credentials; these keep a real profile from ever being used against it.
MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
MOTO_ENV_DROPPED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


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


def activation() -> str:
    """The line that makes the printed ``tickerserve`` commands work in another shell."""
    script = Path(sys.executable).with_name("activate")
    if script.is_file():
        return f"source {shlex.quote(str(script.absolute()))}"
    # Not in a virtual environment: the console script sits beside this interpreter.
    return f'export PATH={shlex.quote(str(Path(sys.executable).parent.absolute()))}:"$PATH"'


def ensure_free(host: str, port: int, setting: str) -> None:
    """Fail early, before anything starts, when ``port`` is taken."""
    if not port_is_free(host, port):
        raise Failed(f"{host}:{port} is already in use; choose another port with {setting}")


def s3_client(endpoint_url: str) -> S3Client:
    import boto3  # the CLI's other commands do not need it at startup

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=MOTO_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=MOTO_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=MOTO_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def publish_demo(cli: Cli, models_dir: Path) -> None:
    """Publish every demo model (production alias) with its ticker routes, with the CLI."""
    folders = ensure_demo_folders(models_dir)
    for model in DEMO_MODELS:
        # One registry update per model: alias and routes together (publish --route).
        routes = [arg for ticker in model.tickers for arg in ("--route", ticker)]
        folder = str(folders[model.name])
        cli("publish", folder, "--model", model.name, "--alias", DEFAULT_ALIAS, *routes)


def registry_key() -> str:
    return os.environ.get(ENV_REGISTRY_KEY, "").strip() or DEFAULT_REGISTRY_KEY


def has_registry(store_path: Path) -> bool:
    try:
        LocalStore(store_path).get(registry_key())
    except KeyNotFound:
        return False
    return True


def bucket_has_registry(client: S3Client, bucket: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=registry_key())
    except client.exceptions.ClientError:
        return False
    return True


def _restored(snapshot: BucketSnapshot, done: Saved, where: str) -> None:
    say(
        f"restored {done.objects} objects ({human_bytes(done.bytes)}) into s3://{DEMO_BUCKET} "
        f"from {where} (saved {done.saved_at})"
    )
    for key in done.unreadable:
        say(f"warning: {key} was left out: its saved bytes in {where} are missing or damaged")


def run(
    *,
    host: str,
    port: int,
    moto_port: int,
    store: Path | None,
    bucket: str | None,
    workdir: Path,
    fresh: bool = False,
    save_every: float = DEFAULT_SAVE_EVERY,
) -> None:
    """Start what the chosen target needs, then serve until interrupted."""
    ensure_free(host, port, "--port (PORT=...)")
    serve = ["serve", "--host", host, "--port", str(port), "--cache-dir", str(workdir / "cache")]
    if bucket:
        say(f"serving the real bucket {bucket} as it is (nothing is published)")
        Cli(["--bucket", bucket])(*serve)
        return
    if store:
        cli = Cli(["--store", str(store)])
        if not has_registry(store):
            say(f"{store} has no registry: publishing the demo models into it")
            publish_demo(cli, workdir / "models")
        cli(*serve)
        return
    ensure_free(host, moto_port, "--moto-port (MOTO_PORT=...)")
    snapshot = BucketSnapshot(workdir / SNAPSHOT_FOLDER)
    if fresh and snapshot.folder.exists():
        shutil.rmtree(snapshot.folder)
        say(f"starting clean: removed {snapshot.folder}")
    with ExitStack() as stack:
        say(f"starting a moto S3 server on {host}:{moto_port} (log: {workdir / 'moto.log'})")
        endpoint = stack.enter_context(moto_server(host, moto_port, workdir / "moto.log"))
        for name in MOTO_ENV_DROPPED:
            os.environ.pop(name, None)
        os.environ.update(MOTO_ENV)  # this process is the CLI now: it must not use a profile
        client = s3_client(endpoint)
        client.create_bucket(Bucket=DEMO_BUCKET)
        if snapshot.exists():
            try:
                restored = snapshot.restore(client, DEMO_BUCKET)
            except SnapshotError as exc:
                raise Failed(
                    f"{exc.message}; nothing was changed: move {snapshot.folder} away, or start "
                    "clean with make serve FRESH=1"
                ) from None
            _restored(snapshot, restored, str(snapshot.folder))
        say(f"in another shell, `{activation()}` makes the tickerserve commands below work")
        cli = Cli(["--bucket", DEMO_BUCKET, "--endpoint-url", endpoint])
        if not bucket_has_registry(client, DEMO_BUCKET):
            say(f"publishing {len(DEMO_MODELS)} demo models into s3://{DEMO_BUCKET}")
            publish_demo(cli, workdir / "models")
        say(
            f"the bucket is kept in {snapshot.folder} (saved every {save_every:g} s and on "
            f"stop); start clean with `make serve FRESH=1` or by deleting {snapshot.folder}"
        )
        periodic = PeriodicSave(lambda: snapshot.save(client, DEMO_BUCKET), save_every, say)
        periodic.start()
        try:
            # Returns when interrupted (Ctrl-C or SIGTERM), capture written into the bucket.
            cli(*serve)
        finally:
            with signals_ignored():  # the last save must not be cut short
                periodic.stop()
                try:
                    done = snapshot.save(client, DEMO_BUCKET)
                except Exception as exc:  # moto gone: the periodic saves are what is kept
                    say(f"could not save the bucket on stop ({type(exc).__name__}: {exc})")
                else:
                    size = human_bytes(done.bytes)
                    say(f"saved {done.objects} objects ({size}) to {snapshot.folder}")
        # Leaving the block stops moto.


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
        Path,
        typer.Option("--workdir", help="Demo models, the saved bucket, artifact cache and logs."),
    ] = DEFAULT_WORKDIR,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Forget the saved bucket: start from the demo models again."),
    ] = False,
    save_every: Annotated[
        float,
        typer.Option(
            "--save-every", min=0.1, metavar="SECONDS", help="Seconds between bucket saves."
        ),
    ] = DEFAULT_SAVE_EVERY,
) -> None:
    """Serve the API locally over demo models in a moto S3 server (or a store or bucket)."""
    if store and bucket:
        raise typer.BadParameter("give --store or --bucket, not both")
    try:
        with stopped_by_signals():  # Ctrl-C or SIGTERM, whatever this process inherited
            run(
                host=host,
                port=port,
                moto_port=moto_port,
                store=store,
                bucket=bucket,
                # Absolute: the commands it prints must work from any folder in another shell.
                workdir=workdir.absolute(),
                fresh=fresh,
                save_every=save_every,
            )
    except KeyboardInterrupt:
        say("stopped")
        raise typer.Exit(EXIT_OK) from None
    except (TickerserveError, OSError) as exc:
        typer.echo(one_line(exc), err=True)
        raise typer.Exit(exit_code_for(exc)) from None


def main() -> None:
    typer.run(dev_command)


if __name__ == "__main__":
    main()
