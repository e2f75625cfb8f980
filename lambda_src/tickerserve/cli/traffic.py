"""``capture``, ``shadow`` and ``canary``: a model's traffic settings in the registry.

- ``capture MODEL --sample RATE``: the share of the model's rows written to capture (default 1).
- ``shadow MODEL --alias ALIAS [--sample RATE]`` / ``--off``: score ALIAS on the same rows as
  the answering version; the answer stays the champion's; capture holds both.
- ``canary MODEL --alias ALIAS --weight W`` / ``--off``: answer a share W of requests (by a
  hash of the request id) from ALIAS.

Each is one compare-and-swap registry update. Running functions apply it after their registry
TTL. ``traffic_warnings`` is what ``promote`` and ``rollback`` say when they move an alias a
shadow or canary names.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tickerserve.cli.console import JsonOption, note, print_json
from tickerserve.cli.errors import Refused
from tickerserve.cli.store_option import target
from tickerserve.layout import validate_alias, validate_model_name
from tickerserve.serving.traffic import describe_settings
from tickerserve.storage.registry import (
    DEFAULT_ALIAS,
    CanarySettings,
    Registry,
    ShadowSettings,
    update_registry,
)

ModelArgument = Annotated[str, typer.Argument(help="Model name, e.g. etfs/SMH.")]
OffOption = Annotated[bool, typer.Option("--off", help="Turn it off.")]


def traffic_warnings(registry: Registry, model: str, alias: str) -> list[str]:
    """What to tell someone who just moved ``alias`` of ``model``: shadows and canaries that
    name it now score or answer with its new version."""
    entry = registry.models.get(model)
    if entry is None:
        return []
    target = entry.aliases.get(alias)
    now = f"now {target.version}" if target is not None else "names no version any more"
    warnings = []
    if entry.shadow is not None and entry.shadow.alias == alias:
        warnings.append(
            f"warning: the shadow of {model} scores alias {alias!r} ({now}); "
            f"`tickerserve shadow {model} --off` turns it off"
        )
    if entry.canary is not None and entry.canary.alias == alias:
        warnings.append(
            f"warning: the canary of {model} answers {entry.canary.weight:g} of requests from "
            f"alias {alias!r} ({now}); `tickerserve canary {model} --off` turns it off"
        )
    return warnings


def _check_alias(registry: Registry, model: str, alias: str, role: str) -> None:
    entry = registry.models.get(model)
    if entry is None or not entry.aliases:
        raise Refused(f"model {model} has no published alias; publish or promote it first")
    if alias == DEFAULT_ALIAS:
        raise Refused(f"the {role} alias must not be {DEFAULT_ALIAS}: that is the champion")
    if alias not in entry.aliases:
        raise Refused(
            f"model {model} has no alias {alias!r} (it has {', '.join(sorted(entry.aliases))}); "
            f"point it at a version first: tickerserve promote {model} VERSION --alias {alias}"
        )


def _report(model: str, registry: Registry, what: str, json_output: bool) -> None:
    traffic = describe_settings(registry.models.get(model))
    if json_output:
        print_json({"model": model, "revision": registry.revision, **traffic})
        return
    setting = traffic[what]
    if what == "capture":
        text = f"sample {setting['sample']:g}"
    elif setting is None:
        text = "off"
    else:
        share = setting["sample"] if what == "shadow" else setting["weight"]
        label = "sample" if what == "shadow" else "weight"
        text = f"alias {setting['alias']} ({setting['version']}), {label} {share:g}"
    typer.echo(f"{model} {what}: {text} (registry revision {registry.revision})")


def capture_command(
    ctx: typer.Context,
    model: ModelArgument,
    sample: Annotated[
        float,
        typer.Option(
            "--sample", min=0.0, max=1.0, help="Share of the model's rows captured (0 to 1)."
        ),
    ] = 1.0,
    off: Annotated[
        bool, typer.Option("--off", help="Capture none of MODEL's rows (as --sample 0).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Capture a share of MODEL's scored rows (the default is all of them).

    Rows are chosen by a hash of their request id. Shadowed rows are always captured. Any of
    these replaces a capture setting the registry holds but cannot read.
    """
    t = target(ctx)
    model = validate_model_name(model)
    if off:
        sample = 0.0
    registry = update_registry(
        t.store, t.registry_key, lambda r: r.set_capture(model, None if sample == 1.0 else sample)
    )
    _report(model, registry, "capture", json_output)


def shadow_command(
    ctx: typer.Context,
    model: ModelArgument,
    alias: Annotated[
        str | None, typer.Option("--alias", "-a", help="The challenger alias to score.")
    ] = None,
    sample: Annotated[
        float,
        typer.Option(
            "--sample", min=0.0, max=1.0, help="Share of rows the challenger scores (0 < x <= 1)."
        ),
    ] = 1.0,
    off: OffOption = False,
    json_output: JsonOption = False,
) -> None:
    """Score ALIAS beside the champion on the same rows; the answer stays the champion's and
    the capture record holds both. A missing or broken challenger never changes an answer.
    ``--off`` also removes a shadow setting the registry holds but cannot read."""
    t = target(ctx)
    model = validate_model_name(model)
    if off == (alias is not None):
        raise Refused("give either --alias ALIAS or --off")
    settings = None
    if alias is not None:
        try:
            settings = ShadowSettings(validate_alias(alias), sample)
        except ValueError as exc:
            raise Refused(str(exc)) from None

    def mutate(registry: Registry) -> None:
        if settings is not None:
            _check_alias(registry, model, settings.alias, "shadow")
        registry.set_shadow(model, settings)

    registry = update_registry(t.store, t.registry_key, mutate)
    _report(model, registry, "shadow", json_output)


def canary_command(
    ctx: typer.Context,
    model: ModelArgument,
    alias: Annotated[
        str | None, typer.Option("--alias", "-a", help="The alias that answers the share.")
    ] = None,
    weight: Annotated[
        float | None,
        typer.Option("--weight", "-w", help="Share of requests it answers (0 < W < 1)."),
    ] = None,
    off: OffOption = False,
    json_output: JsonOption = False,
) -> None:
    """Answer a share W of MODEL's requests from ALIAS, chosen by a hash of the request id (a
    retried request gets the same version). Requests that pin alias or version are never
    diverted; a canary that cannot answer leaves the request to the champion. ``--off`` also
    removes a canary setting the registry holds but cannot read (a weight of 1.5, "0.5")."""
    t = target(ctx)
    model = validate_model_name(model)
    if off == (alias is not None):
        raise Refused("give either --alias ALIAS --weight W or --off")
    settings = None
    if alias is not None:
        if weight is None:
            raise Refused("--weight W is required with --alias (0 < W < 1)")
        try:
            settings = CanarySettings(validate_alias(alias), weight)
        except ValueError as exc:
            raise Refused(str(exc)) from None

    def mutate(registry: Registry) -> None:
        if settings is not None:
            _check_alias(registry, model, settings.alias, "canary")
        registry.set_canary(model, settings)

    registry = update_registry(t.store, t.registry_key, mutate)
    _report(model, registry, "canary", json_output)
    entry = registry.models[model]
    if settings is not None and entry.shadow is not None and entry.shadow.alias == settings.alias:
        note(
            f"note: {settings.alias} is also the shadow: rows it answers as canary score "
            f"{DEFAULT_ALIAS} beside it, the others score {settings.alias}"
        )
