"""Registry moves: ``promote`` / ``rollback`` (aliases) and ``route`` / ``fallback`` (tickers).

Each is one compare-and-swap registry update; promote and rollback first download and verify
the target version, so an alias never moves to a missing or corrupt bundle.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tickerserve.cli.console import JsonOption, note, print_json
from tickerserve.cli.errors import Refused
from tickerserve.cli.model_names import model_name
from tickerserve.cli.publish import default_asset_class
from tickerserve.cli.store_option import target
from tickerserve.cli.traffic import traffic_warnings
from tickerserve.cli.versions import verified_for_alias
from tickerserve.errors import Conflict, IntegrityError, InvalidModel, NotFound
from tickerserve.layout import (
    Version,
    normalize_ticker,
    validate_alias,
    validate_signal,
    validate_timeframe,
)
from tickerserve.publishing.promotion import promote
from tickerserve.storage.registry import (
    DEFAULT_ALIAS,
    Registry,
    read_registry,
    update_registry,
    validate_asset_class,
)

AliasOption = Annotated[str, typer.Option("--alias", "-a", help="The alias to move.")]


def promote_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. etfs/SMH.")],
    version: Annotated[str, typer.Argument(help="Version to point the alias at.")],
    alias: AliasOption = DEFAULT_ALIAS,
    json_output: JsonOption = False,
) -> None:
    """Point ALIAS (production) at VERSION after downloading and verifying it."""
    t = target(ctx)
    model, alias = model_name(name, t), validate_alias(alias)
    version = str(Version.parse(version))
    try:
        move = promote(t.store, t.registry_key, model, version, alias)
    except (NotFound, IntegrityError, InvalidModel) as exc:
        raise Refused(f"refusing {model} {version}: {exc.message}") from None
    _report_move(model, alias, move.previous, version, move.revision, json_output)
    # Shadows and canaries that name the moved alias now score or answer with its new version.
    for warning in traffic_warnings(read_registry(t.store, t.registry_key).registry, model, alias):
        note(warning)


def rollback_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. etfs/SMH.")],
    alias: AliasOption = DEFAULT_ALIAS,
    json_output: JsonOption = False,
) -> None:
    """Move ALIAS back to the version it held before.

    The earlier version is verified first; the step leaves the alias history, so repeated
    rollbacks walk further back.
    """
    t = target(ctx)
    model, alias = model_name(name, t), validate_alias(alias)
    registry = read_registry(t.store, t.registry_key).registry
    entry = registry.models.get(model)
    history = entry.history.get(alias) if entry else None
    if entry is None or alias not in entry.aliases:
        raise Refused(f"model {model} has no alias {alias!r}")
    if not history:
        raise Refused(f"{model} {alias} has no earlier version to roll back to")
    current, previous = entry.aliases[alias], history[-1]
    verified_for_alias(t.store, model, previous.version, previous.metadata_sha256)

    def mutate(fresh: Registry) -> None:
        e = fresh.models.get(model)
        if (
            e is None
            or e.aliases.get(alias) != current
            or e.history.get(alias, [])[-1:] != [previous]
        ):
            raise Conflict(f"{model} {alias} changed while rolling back; run rollback again")
        fresh.rollback_alias(model, alias)

    updated = update_registry(t.store, t.registry_key, mutate)
    _report_move(model, alias, current.version, previous.version, updated.revision, json_output)
    for warning in traffic_warnings(updated, model, alias):
        note(warning)


def _report_move(
    model: str, alias: str, old: str | None, new: str, revision: int, json_output: bool
) -> None:
    if json_output:
        print_json({"model": model, "alias": alias, "from": old, "to": new, "revision": revision})
    else:
        typer.echo(f"{model} {alias}: {old or '(none)'} -> {new} (registry revision {revision})")


def route_command(
    ctx: typer.Context,
    tickers: Annotated[list[str], typer.Argument(help="Tickers to route (or to remove).")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model the tickers route to.")
    ] = None,
    asset_class: Annotated[
        str | None,
        typer.Option("--asset-class", help="etf or stock (default from the model name)."),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the tickers' routes.")] = False,
    signal: Annotated[
        str | None,
        typer.Option(
            "--signal",
            "-s",
            help="What the model predicts for the tickers (a lower-case word: strategy, "
            "volatility, direction, ...); without it, each ticker's default signal. With "
            "--remove: only this signal's routes.",
        ),
    ] = None,
    default_signal: Annotated[
        bool,
        typer.Option(
            "--default-signal",
            help="Also make --signal the tickers' default signal (what requests naming no "
            "signal get).",
        ),
    ] = False,
    timeframe: Annotated[
        str | None,
        typer.Option(
            "--timeframe",
            "-t",
            help="Route (or remove) only this timeframe (m/h/d/w and 1-3 digits, e.g. d1, h4); "
            "without it, the default route (or, with --remove, every route).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Route tickers to a published model, or remove their routes (--remove).

    A route is keyed by ticker, signal and timeframe: --signal names what the model predicts
    (a ticker may have several models, one per signal; requests pick one with "signal"), and
    --timeframe routes one timeframe (requests naming it); without them, the ticker's default
    signal and its default route. Tickers new to the registry take --signal as their default
    signal (unless a fallback already answers for them).
    """
    t = target(ctx)
    if remove == (model is not None):
        raise Refused("give either --model NAME or --remove")
    if default_signal and (signal is None or remove):
        raise Refused("--default-signal needs --signal and --model")
    if timeframe is not None:
        timeframe = validate_timeframe(timeframe)
    if signal is not None:
        signal = validate_signal(signal)
    names = list(dict.fromkeys(normalize_ticker(x) for x in tickers))
    if model is not None:
        model = model_name(model, t)
        asset_class = asset_class or default_asset_class(model)
        if asset_class is None:
            raise Refused(f"--asset-class is required for model {model}")
        validate_asset_class(asset_class)

    def mutate(registry: Registry) -> None:
        if model is None:
            missing = [x for x in names if not _routed(registry, x, signal, timeframe)]
            if missing:
                what = f" on signal {signal}" if signal else ""
                what += f" for timeframe {timeframe}" if timeframe else ""
                raise Refused(f"not routed{what}: {', '.join(missing)}")
            for x in names:
                registry.remove_route(x, timeframe, signal)
            return
        entry = registry.models.get(model)
        if entry is None or not entry.aliases:
            raise Refused(f"model {model} has no published alias; publish or promote it first")
        for x in names:
            registry.set_route(x, model, asset_class or "", timeframe, signal)
            if default_signal and signal is not None:
                registry.set_default_signal(x, signal)

    registry = update_registry(t.store, t.registry_key, mutate)
    entry = registry.models.get(model) if model else None
    if entry is not None and DEFAULT_ALIAS not in entry.aliases:
        note(f"warning: {model} has no {DEFAULT_ALIAS} alias; requests must name an alias")
    routed: dict[str, dict[str, str | None] | None] = {}
    for x in names:
        own = registry.tickers.get(x)
        routed[x] = (
            None
            if remove
            else {
                "model": model,
                "asset_class": asset_class,
                "signal": signal or (own.default_signal if own is not None else None),
                "default_signal": own.default_signal if own is not None else None,
                **({"timeframe": timeframe} if timeframe is not None else {}),
            }
        )
    result = {"revision": registry.revision, "removed" if remove else "routed": routed}
    which = (f" {signal}" if signal else "") + (f" {timeframe}" if timeframe else "")
    if json_output:
        print_json(result)
    elif remove:
        typer.echo(f"removed {', '.join(names)}{which} (registry revision {registry.revision})")
    else:
        typer.echo(
            f"{', '.join(names)}{which} -> {model} ({asset_class}) "
            f"(registry revision {registry.revision})"
        )
        for x in names:
            own = registry.tickers[x]
            if signal is not None and own.default_signal != signal:
                note(
                    f"note: {x} answers {own.default_signal} when a request names no signal; "
                    f'requests for this model send "signal": "{signal}" (or --default-signal)'
                )


def _routed(registry: Registry, ticker: str, signal: str | None, timeframe: str | None) -> bool:
    own = registry.tickers.get(ticker)
    if own is None:
        return False
    if signal is None and timeframe is None:
        return True
    routes = own.on(signal)
    return routes is not None and (timeframe is None or timeframe in routes.timeframes)


def fallback_command(
    ctx: typer.Context,
    asset_class: Annotated[str, typer.Argument(help="Asset class, e.g. stock.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model for unlisted tickers of the class.")
    ] = None,
    none: Annotated[bool, typer.Option("--none", help="Remove the fallback.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Set or remove (--none) the fallback model of an asset class.

    The fallback answers for tickers of ASSET_CLASS without a route of their own. Fallbacks
    are explicit; there is no implicit one.
    """
    t = target(ctx)
    if none == (model is not None):
        raise Refused("give either --model NAME or --none")
    validate_asset_class(asset_class)
    if model is not None:
        model = model_name(model, t)

    def mutate(registry: Registry) -> None:
        if model is not None:
            entry = registry.models.get(model)
            if entry is None or not entry.aliases:
                raise Refused(f"model {model} has no published alias; publish or promote it first")
        registry.set_fallback(asset_class, model)

    registry = update_registry(t.store, t.registry_key, mutate)
    if json_output:
        print_json({"asset_class": asset_class, "model": model, "revision": registry.revision})
    else:
        typer.echo(
            f"fallback {asset_class} -> {model or '(none)'} (registry revision {registry.revision})"
        )
