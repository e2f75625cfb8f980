"""``serve``: the HTTP API on this machine, over the same ``Api`` the Lambda handler uses.

The store comes from the global options (``--bucket``/``--endpoint-url`` or ``--store``). The
local server adds what the Lambda leaves out: the OpenAPI document and a docs page.
"""

from __future__ import annotations

import errno
import os
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tickerserve.cli.capture_writer import StoreCaptureWriter
from tickerserve.cli.console import note
from tickerserve.cli.errors import Failed
from tickerserve.cli.localserver import LocalServer, port_is_free
from tickerserve.cli.stop_signals import signals_ignored, stopped_by_signals
from tickerserve.cli.store_option import target
from tickerserve.errors import RegistryNeedsImport, TickerserveError
from tickerserve.settings import (
    ENV_BUCKET,
    ENV_CACHE_DIR,
    ENV_CAPTURE,
    ENV_REGISTRY_TTL,
    ENV_STORE_PATH,
    Settings,
)
from tickerserve.storage.store import SERVING

if TYPE_CHECKING:
    from tickerserve.cli.sigv4 import SignatureCheck
    from tickerserve.serving.service import ModelService

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Short, so a promote or rollback shows within seconds (the Lambda default is 60 s).
DEFAULT_REGISTRY_TTL = 5.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Auth(StrEnum):
    NONE = "none"
    IAM = "iam"


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = DEFAULT_HOST,
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port (0: any free port).")
    ] = DEFAULT_PORT,
    registry_ttl: Annotated[
        float,
        typer.Option(
            "--registry-ttl",
            min=0.0,
            envvar=ENV_REGISTRY_TTL,
            metavar="SECONDS",
            help="Seconds before the registry is re-read (conditional GET).",
        ),
    ] = DEFAULT_REGISTRY_TTL,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            envvar=ENV_CACHE_DIR,
            metavar="PATH",
            help="Artifact cache folder (default: /tmp/tickerserve, as in the Lambda).",
        ),
    ] = None,
    capture: Annotated[
        bool,
        typer.Option(
            "--capture/--no-capture",
            envvar=ENV_CAPTURE,
            help="Write what is served into the store under capture/dt=YYYY-MM-DD/.",
        ),
    ] = True,
    auth: Annotated[
        Auth,
        typer.Option(
            "--auth",
            help="iam: accept only requests SigV4-signed (service execute-api or lambda) with "
            "the AWS credentials botocore finds here (environment, AWS_PROFILE, a credentials "
            "file); others get the deployed API's 403 forbidden.",
        ),
    ] = Auth.NONE,
) -> None:
    """Serve the HTTP API locally (POST /predict ...), with OpenAPI at /openapi.json and
    interactive docs at /docs. Each request runs through the Lambda handler's code path as an
    API Gateway REST event. Ctrl-C stops it."""
    checker = _signature_check() if auth is Auth.IAM else None
    t = target(ctx)
    t.timeouts = SERVING  # the same storage deadlines as the prediction function
    store = t.store
    if not port_is_free(host, port):
        raise Failed(f"cannot listen on {host}:{port}: address in use; choose another with --port")
    # Before the runtime is imported: CloudWatch metrics lines have no reader here.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from tickerserve.http.api import DOCS_PATH, OPENAPI_PATH, Api
    from tickerserve.serving.capture import DISABLED, Capture
    from tickerserve.serving.service import ModelService

    # The target comes from the global options; the rest of the settings from the environment.
    env = {k: v for k, v in os.environ.items() if k not in (ENV_BUCKET, ENV_STORE_PATH)}
    settings = replace(
        Settings.from_env(env),
        bucket=t.bucket,
        store_path=t.store_path,
        registry_key=t.registry_key,
        registry_ttl=registry_ttl,
    )
    if cache_dir is not None:
        settings = replace(settings, cache_dir=str(cache_dir))
    service = ModelService(settings, store=store)
    if settings.preload:
        service.preload(settings.preload)
    writer = StoreCaptureWriter(store) if capture else None
    api = Api(service, docs=True, capture=Capture(writer) if writer else DISABLED)
    # Stop signals are handled from before the port opens: a client (or a test) may send SIGTERM
    # as soon as it can connect, and that must stop the server as Ctrl-C does, capture flushed.
    with stopped_by_signals():  # Ctrl-C or SIGTERM, whatever this process inherited
        try:
            server = LocalServer((host, port), api, log=_log, authorizer=checker)
        except OSError as exc:
            if writer is not None:
                writer.close()
            hint = "; choose another with --port" if exc.errno == errno.EADDRINUSE else ""
            raise Failed(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
        try:
            if checker is not None:
                key = checker.credentials.access_key or ""
                note(f"auth: iam, SigV4 (execute-api or lambda) with access key …{key[-4:]}")
            elif host not in LOOPBACK:
                note(f"warning: listening on {host}; the local server has no authentication")
            note(f"models: {store.describe()} ({_registry_summary(service)})")
            if writer is not None:
                note(
                    f"capture: on, into {store.describe()} under capture/ "
                    "(--no-capture turns it off)"
                )
            note(
                f"serving on {server.url} (docs {DOCS_PATH}, OpenAPI {OPENAPI_PATH}); Ctrl-C stops"
            )
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            note("stopping")
        finally:
            server.server_close()
            if writer is not None:
                _close_capture(server, writer)


def _close_capture(server: LocalServer, writer: StoreCaptureWriter) -> None:
    """Write every record of every answered request before exiting; a second Ctrl-C or
    SIGTERM must not cut the last flush short."""
    with signals_ignored(), server.api_lock:  # the request in flight finishes and records first
        writer.close()
    lost = writer.buffered
    note(
        f"capture: {writer.written} record(s) in {writer.objects} object(s) under capture/"
        + (
            f"; {lost + writer.dropped} record(s) could not be written"
            if lost or writer.dropped
            else ""
        )
    )


def _signature_check() -> SignatureCheck:
    """Checks signatures against the credentials botocore finds, read once at start."""
    import botocore.session

    from tickerserve.cli.sigv4 import SignatureCheck

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise Failed(
            "--auth iam checks signatures against AWS credentials and found none: set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a credentials file: "
            "AWS_SHARED_CREDENTIALS_FILE)"
        )
    return SignatureCheck(credentials.get_frozen_credentials())


def _registry_summary(service: ModelService) -> str:
    try:
        registry = service.registry()
    except RegistryNeedsImport as exc:  # waiting will not help: say what converts it
        return f"nothing is served until it is converted: {exc.message}"
    except TickerserveError as exc:
        return f"registry not readable yet: {exc.message}"
    return (
        f"registry revision {registry.revision}: {len(registry.models)} models, "
        f"{len(registry.tickers)} tickers"
    )


def _log(line: str) -> None:
    note(f"{datetime.now().strftime('%H:%M:%S.%f')[:-3]} {line}")
