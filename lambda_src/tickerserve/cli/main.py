"""Entry point: the Typer app, its global options and the command registrations.

Each command lives in the module named after its concept; adding one is a single
``app.command(...)`` line below.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tickerserve import __version__
from tickerserve.cli import (
    aliases,
    baseline,
    import_seed,
    migrate,
    monitoring,
    outcomes,
    publish,
    query,
    serve,
    sync,
    traffic,
    versions,
)
from tickerserve.cli.errors import EXIT_INTERRUPTED, exit_code_for, one_line, usage_line
from tickerserve.cli.store_option import Target
from tickerserve.errors import ConfigError
from tickerserve.layout import DEFAULT_REGISTRY_KEY
from tickerserve.settings import ENV_BUCKET, ENV_REGISTRY_KEY, ENV_STORE_PATH


class CliGroup(TyperGroup):
    """Turns every domain error into one line on stderr and its exit code (see ``errors``)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Usage errors (a missing argument, an unknown option or command) are one ``error:``
        line and exit code 2 as well, instead of Click's usage block or Typer's box."""
        run = partial(
            super().main, args, prog_name, complete_var, False, windows_expand_args, **extra
        )
        if not standalone_mode:  # the caller handles exceptions and exit codes itself
            return run()
        try:
            code = run()
        except typer.TyperException as exc:  # Click's usage errors, as Typer vendors them
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `tickerserve`: the help
                typer.echo(exc.format_message())
            else:
                typer.echo(usage_line(exc), err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo(one_line(KeyboardInterrupt()), err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if hasattr(exc, "show") and hasattr(exc, "exit_code"):
                raise  # Click/Typer usage errors keep their own message and exit code 2
            logging.getLogger(__name__).debug("command failed", exc_info=True)
            typer.echo(one_line(exc), err=True)
            raise typer.Exit(exit_code_for(exc)) from exc
        except KeyboardInterrupt as exc:
            typer.echo(one_line(exc), err=True)
            raise typer.Exit(exit_code_for(exc)) from exc


app = typer.Typer(
    cls=CliGroup,
    name="tickerserve",
    help="Publish per-ticker models to S3 (or a local folder) and manage the registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich mode shows a <bool> placeholder after every flag and reads [...] in
    # help texts as markup.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tickerserve {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    bucket: Annotated[
        str | None,
        typer.Option("--bucket", metavar="NAME", help=f"S3 bucket [env: {ENV_BUCKET}]"),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="PATH",
            help=f"Local folder with the bucket layout [env: {ENV_STORE_PATH}]",
        ),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url", metavar="URL", help="S3 endpoint (default: AWS_ENDPOINT_URL[_S3])"
        ),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (default: AWS_REGION)")
    ] = None,
    registry_key: Annotated[
        str | None,
        typer.Option(
            "--registry-key",
            metavar="KEY",
            help=f"Registry object key [env: {ENV_REGISTRY_KEY}; default {DEFAULT_REGISTRY_KEY}]",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Publish per-ticker models to S3 (or a local folder) and manage the registry."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if bucket and store:
        raise ConfigError("give either --bucket or --store, not both")
    if not bucket and not store:
        # Flags win over the environment; only without flags do the variables apply.
        bucket = os.environ.get(ENV_BUCKET, "").strip() or None
        store = os.environ.get(ENV_STORE_PATH, "").strip() or None
        if bucket and store:
            raise ConfigError(f"set only one of {ENV_BUCKET} and {ENV_STORE_PATH}")
    key = registry_key or os.environ.get(ENV_REGISTRY_KEY, "").strip() or DEFAULT_REGISTRY_KEY
    ctx.obj = Target(bucket, store, endpoint_url, region, key)


app.command("publish")(publish.publish_command)
app.command("import-seed")(import_seed.import_seed_command)
app.command("sync")(sync.sync_command)
app.command("route")(aliases.route_command)
app.command("fallback")(aliases.fallback_command)
app.command("promote")(aliases.promote_command)
app.command("rollback")(aliases.rollback_command)
app.command("list")(query.list_command)
app.command("best")(query.best_command)
app.command("show")(query.show_command)
app.command("history")(query.history_command)
app.command("delete")(versions.delete_command)
app.command("validate")(versions.validate_command)
app.command("serve")(serve.serve_command)
app.command("baseline")(baseline.baseline_command)
app.add_typer(monitoring.app, name="monitor")
app.command("migrate")(migrate.migrate_command)
app.command("capture")(traffic.capture_command)
app.command("shadow")(traffic.shadow_command)
app.command("canary")(traffic.canary_command)
app.add_typer(outcomes.app, name="outcomes")


def main() -> None:
    """Console script ``tickerserve``."""
    app()
