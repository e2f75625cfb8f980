"""``publish``: one model folder (or pickle file) as a new immutable version."""

from __future__ import annotations

import dataclasses
import math
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from tickerserve.baselines.baseline import DEFAULT_BINS, Baseline
from tickerserve.baselines.persistence import attach_to_bundle
from tickerserve.cli.baseline import (
    DEFAULT_RANGE_QUANTILES,
    BinsOption,
    RangeQuantilesOption,
    ReferenceOption,
    TrainingOption,
    ValidationOption,
    range_quantiles,
)
from tickerserve.cli.baseline import describe as describe_baseline
from tickerserve.cli.baseline import summary as baseline_summary
from tickerserve.cli.console import JsonOption, note, print_json
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.model_folder import read_folder
from tickerserve.cli.importers.network_runs import NetworkOptions
from tickerserve.cli.model_names import model_name
from tickerserve.cli.reference import fit_from_reference, parse_window
from tickerserve.cli.store_option import Target, target
from tickerserve.layout import ETF_PREFIX, normalize_ticker, validate_signal
from tickerserve.publishing.conversion.feature_names import read_names_file
from tickerserve.publishing.conversion.recipe import Converted
from tickerserve.publishing.release import (
    KEEP,
    SAME,
    Incomplete,
    Published,
    RouteChange,
    check_targets,
    publish,
)
from tickerserve.storage.registry import read_registry, validate_asset_class


class BumpPart(StrEnum):
    major = "major"
    minor = "minor"
    patch = "patch"


def parse_metrics(items: list[str]) -> dict[str, float]:
    """``["auc=0.7", "f1=0.5,acc=0.6"]`` -> ``{"auc": 0.7, "f1": 0.5, "acc": 0.6}``."""
    metrics: dict[str, float] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            name, sep, raw = part.partition("=")
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not sep or not name.strip() or not math.isfinite(value):
                raise Refused(f"--metrics {part!r}: expected NAME=NUMBER with a finite number")
            metrics[name.strip()] = value
    return metrics


def default_asset_class(model: str) -> str | None:
    if model.startswith(f"{ETF_PREFIX}/"):
        return "etf"
    if model.startswith("stocks/"):
        return "stock"
    return None


def publish_command(
    ctx: typer.Context,
    src: Annotated[
        Path,
        typer.Argument(
            help="Native bundle folder (model.txt + metadata.json), seed folder "
            "(model.joblib/.pkl, label_encoder.pkl, feature_names*.json, metadata.json) or one "
            "pickle file: LightGBM, XGBoost, scikit-learn trees, or a seed 002/003 dict; or a "
            "network: a seed 001 GRU run (model.pth) or PPO run (model.zip), or model.onnx + "
            "network.json.",
            show_default=False,
        ),
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model name, e.g. etfs/SMH or stocks/universal.")
    ],
    version: Annotated[
        str | None, typer.Option("--version", help="Explicit version X.Y.Z (must be new).")
    ] = None,
    bump: Annotated[
        BumpPart | None,
        typer.Option("--bump", help="Which part of the highest existing version to bump."),
    ] = None,
    alias: Annotated[
        list[str] | None,
        typer.Option(
            "--alias",
            "-a",
            metavar="ALIAS",
            help="Point this alias at the new version (repeatable).",
        ),
    ] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            "--metric",
            metavar="NAME=VALUE",
            help="NAME=VALUE, repeatable or comma-separated.",
        ),
    ] = None,
    asset_class: Annotated[
        str | None,
        typer.Option("--asset-class", help="Recorded in metadata (default from the model name)."),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            metavar="FILE",
            help="Feature names (JSON list) when the seed and its estimator name none.",
        ),
    ] = None,
    route: Annotated[
        list[str] | None,
        typer.Option(
            "--route",
            "-r",
            metavar="TICKER",
            help="Route this ticker to the model, in the same registry update (repeatable; "
            "needs --alias). Without a route no request reaches the model.",
        ),
    ] = None,
    signal: Annotated[
        str | None,
        typer.Option(
            "--signal",
            "-s",
            help="The signal --route routes on (what the model predicts, e.g. volatility); "
            "default: each ticker's default signal.",
        ),
    ] = None,
    take_routes: Annotated[
        bool,
        typer.Option(
            "--take-routes",
            help="Move --route tickers that route to another model (on that signal and "
            "timeframe); without it such a route stays, and is listed.",
        ),
    ] = False,
    window: Annotated[
        int | None,
        typer.Option(
            "--window",
            min=1,
            metavar="N",
            help="A GRU's window length (rows per request), when its run records none.",
        ),
    ] = None,
    torch_module: Annotated[
        str | None,
        typer.Option(
            "--torch-module",
            metavar="MODULE:CLASS",
            help="Build a GRU checkpoint's network from your own torch class (constructed "
            "from model_config) when its state dict fits no template.",
        ),
    ] = None,
    reference: ReferenceOption = None,
    bins: BinsOption = DEFAULT_BINS,
    range_quantiles_text: RangeQuantilesOption = DEFAULT_RANGE_QUANTILES,
    training_window: TrainingOption = None,
    validation_window: ValidationOption = None,
    json_output: JsonOption = False,
) -> None:
    """Publish a model folder as a new immutable version.

    With --reference, the version carries its monitoring baseline (baseline.json, sha256 in
    metadata.json like every artifact) and its feature ranges (in metadata.json: answers warn
    about rows unlike the reference).

    Seed pickles are converted (LightGBM text, Treelite for XGBoost and scikit-learn trees,
    JSON coefficients for linear meta-learners) and must answer like the original on probe
    rows. GRU and PPO runs become ONNX networks (needs the networks extra), checked against
    torch or stable-baselines3 on 256 generated windows or observations.

    The version folder is written first (create-only), the registry last. A ticker is
    served once an alias points at the version and the ticker routes to the model (--route
    here, or the route command). --route adds a route only where the ticker has none (on
    --signal) or it already points at the model; one that points elsewhere stays and is
    listed (--take-routes moves it).
    """
    t = target(ctx)
    model = model_name(model, t)
    quantiles = range_quantiles(range_quantiles_text)
    if version is not None and bump is not None:
        raise Refused("give --version or --bump, not both")
    aliases = list(dict.fromkeys(alias or []))
    check_targets(aliases, models=[model])
    if asset_class is not None:
        validate_asset_class(asset_class)
    routes = _routes(
        route or [],
        model,
        asset_class,
        aliases,
        None if signal is None else validate_signal(signal),
    )
    extra_metrics = parse_metrics(metrics or [])
    started = time.perf_counter()
    converted = read_folder(
        src,
        model=model,
        asset_class=asset_class or default_asset_class(model),
        features=None if features is None else read_names_file(features),
        network=NetworkOptions(window, torch_module),
    )
    for warning in converted.warnings:
        note(f"warning: {src}: {warning}")
    converted.bundle.metadata.metrics.update(extra_metrics)
    bundle = converted.bundle
    fitted = None
    if reference is not None:
        fitted = fit_from_reference(
            bundle,
            reference,
            bins=bins,
            training=parse_window(training_window, "--training-window"),
            validation=parse_window(validation_window, "--validation-window"),
            range_quantiles=quantiles,
        )
        bundle = attach_to_bundle(bundle, fitted)
    try:
        result = publish(
            t.store,
            bundle,
            registry_key=t.registry_key,
            model=model,
            version=version,
            bump=(bump or BumpPart.patch).value,
            aliases=aliases,
            routes=routes,
            take_routes=take_routes,
        )
    except Incomplete as exc:
        if exc.published is not None:  # live, only the history is missing: say what is live
            _report_publish(exc.published, converted, fitted, started, t, json_output)
        raise
    _report_publish(result, converted, fitted, started, t, json_output)


def _report_publish(
    result: Published,
    converted: Converted,
    fitted: Baseline | None,
    started: float,
    t: Target,
    json_output: bool,
) -> None:
    seconds = time.perf_counter() - started
    routed = [d.change.ticker for d in result.routes if d.action != KEEP]
    if fitted is not None:  # it names the version it was written as
        fitted = dataclasses.replace(
            fitted, model=result.written.model, version=result.written.version
        )
    if json_output:
        print_json(
            {
                **result.to_dict(),
                "routes": routed,
                "kept_routes": [d.change.ticker for d in result.routes if d.action == KEEP],
                "source": converted.summary(),
                "baseline": None if fitted is None else baseline_summary(fitted),
                "seconds": round(seconds, 3),
            }
        )
        return
    meta = result.written.bundle.metadata
    output = f"{len(meta.classes)} classes" if meta.classes else meta.task
    inputs = f"{len(meta.used_features)} features"
    if meta.network is not None and meta.network.rows is not None:
        inputs = f"{meta.network.rows} rows x {inputs}"
    typer.echo(
        f"published {meta.model} {meta.version} to {t.store.describe()} "
        f"({_describe_source(converted)}; {inputs}, {output}) in {seconds:.2f} s"
    )
    if fitted is not None:
        typer.echo(describe_baseline(fitted))
    for name in result.aliases:
        typer.echo(f"{name} -> {meta.version} (registry revision {result.revision})")
    for decision in result.routes:
        if decision.action != SAME:
            typer.echo(decision.line())
    if not result.aliases:
        typer.echo(f"no alias moved; promote with: tickerserve promote {meta.model} {meta.version}")
    elif not routed and not read_registry(t.store, t.registry_key).registry.tickers_for(meta.model):
        note(
            f"note: no ticker routes to {meta.model} yet, so no request reaches it: "
            f"tickerserve route TICKER --model {meta.model} (or publish with --route TICKER)"
        )


def _routes(
    tickers: list[str],
    model: str,
    asset_class: str | None,
    aliases: list[str],
    signal: str | None,
) -> list[RouteChange]:
    """``--route`` tickers as route changes, refused before anything is written."""
    if not tickers:
        return []
    if not aliases:
        raise Refused(
            "--route needs --alias (e.g. --alias production): a route to a model no "
            "alias points at answers nothing"
        )
    routed_class = asset_class or default_asset_class(model)
    if routed_class is None:
        raise Refused(f"--asset-class is required to route tickers to {model}")
    names = dict.fromkeys(normalize_ticker(x) for x in tickers)
    return [RouteChange(ticker, routed_class, model, signal=signal) for ticker in names]


def _describe_source(converted: Converted) -> str:
    meta = converted.bundle.metadata
    if converted.kind == "native":
        return "native bundle" if meta.network is None else "onnx network"
    if meta.network is not None:  # checked against torch or stable-baselines3
        inputs = "windows" if meta.network.input == "window" else "observations"
        relative = meta.source.get("probe", {}).get("max_relative_diff", 0.0)
        return (
            f"converted {converted.estimator} to ONNX, checked on {converted.probe_rows} "
            f"{inputs} (max diff {converted.max_abs_diff:.2g}, {relative:.2g} relative)"
        )
    return (
        f"converted {converted.estimator}, checked on {converted.probe_rows} probe rows "
        f"(max diff {converted.max_abs_diff:.2g})"
    )
