"""``baseline MODEL@VERSION --reference FILE``: attach a monitoring baseline to a version that
exists already (imported ones included), as a sidecar whose sha256 is recorded in the model's
digest index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tickerserve.baselines.baseline import DEFAULT_BINS, Baseline
from tickerserve.baselines.persistence import write_sidecar
from tickerserve.baselines.ranges import DEFAULT_QUANTILES, Quantiles, RangesError, parse_quantiles
from tickerserve.cli.console import JsonOption, format_metrics, print_json
from tickerserve.cli.errors import Refused
from tickerserve.cli.reference import fit_from_reference, parse_window
from tickerserve.cli.store_option import target
from tickerserve.cli.versions import parse_ref, resolve_ref
from tickerserve.errors import Conflict, NotFound
from tickerserve.layout import baseline_sidecar_key, index_key, ranges_sidecar_key
from tickerserve.publishing.promotion import load_verified
from tickerserve.storage.registry import read_registry

ReferenceOption = Annotated[
    Path | None,
    typer.Option(
        "--reference",
        metavar="FILE",
        help="CSV or Parquet with the feature columns and, optionally, label (classifier) or "
        "value (regressor): fits the monitoring baseline.",
    ),
]
BinsOption = Annotated[
    int, typer.Option("--bins", min=2, max=100, help="Quantile bins per feature.")
]
DEFAULT_RANGE_QUANTILES = ":".join(f"{q:g}" for q in DEFAULT_QUANTILES)
RangeQuantilesOption = Annotated[
    str,
    typer.Option(
        "--range-quantiles",
        metavar="LO:HI",
        help="The reference's quantiles that bound each feature's range: an answer warns "
        "about a value outside it (out_of_range).",
    ),
]
TrainingOption = Annotated[
    str | None,
    typer.Option("--training-window", metavar="START:END", help="Training dates (ISO)."),
]
ValidationOption = Annotated[
    str | None,
    typer.Option("--validation-window", metavar="START:END", help="Reference sample's dates."),
]


def range_quantiles(text: str) -> Quantiles:
    """``--range-quantiles LO:HI``, checked (a refusal names the rule)."""
    try:
        return parse_quantiles(text)
    except RangesError as exc:
        raise Refused(f"--range-quantiles {exc}") from None


def summary(baseline: Baseline) -> dict[str, Any]:
    return {
        "model": baseline.model,
        "version": baseline.version,
        "task": baseline.task,
        "rows": baseline.rows,
        "features": len(baseline.features),
        "bins": baseline.bins,
        "range_quantiles": None if baseline.ranges is None else list(baseline.ranges.quantiles),
        "metrics": baseline.metrics,
        "training": baseline.training.to_dict(),
        "validation": baseline.validation.to_dict(),
    }


def describe(baseline: Baseline) -> str:
    metrics = format_metrics(baseline.metrics) if baseline.metrics else "no labels: no metrics"
    return (
        f"baseline of {baseline.model} {baseline.version}: {baseline.rows} reference rows, "
        f"{len(baseline.features)} features x {baseline.bins} bins; {metrics}"
    )


def baseline_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="MODEL@VERSION", help="e.g. etfs/SMH@1.0.2.")],
    reference: ReferenceOption = None,
    bins: BinsOption = DEFAULT_BINS,
    range_quantiles_text: RangeQuantilesOption = DEFAULT_RANGE_QUANTILES,
    training_window: TrainingOption = None,
    validation_window: ValidationOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Refit a baseline attached before.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Fit a monitoring baseline for an existing version from a reference sample.

    The version is immutable, so the baseline is stored beside it
    ({model}/baselines/{version}.json), its feature ranges too
    ({model}/versions/{version}.ranges.json, read by the prediction function: answers warn
    about rows unlike the reference), and their sha256 recorded in the model's digest index
    ({model}/versions/index.json); the monitor, validate and the function refuse a sidecar
    whose bytes do not match.
    """
    t = target(ctx)
    if reference is None:
        raise Refused("--reference FILE is required")
    quantiles = range_quantiles(range_quantiles_text)
    name, selector = parse_ref(ref, t)
    registry = read_registry(t.store, t.registry_key).registry
    version, digest = resolve_ref(registry, name, selector)
    bundle, _, _ = load_verified(t.store, name, version, digest)
    fitted = fit_from_reference(
        bundle,
        reference,
        bins=bins,
        training=parse_window(training_window, "--training-window"),
        validation=parse_window(validation_window, "--validation-window"),
        range_quantiles=quantiles,
    )
    try:
        sha = write_sidecar(t.store, bundle.metadata, fitted, replace_existing=replace)
    except (Conflict, NotFound) as exc:
        raise Refused(exc.message) from None
    key = baseline_sidecar_key(name, version)
    # The ranges went beside the version unless its metadata holds some (then those count).
    ranges_key = None if bundle.metadata.ranges is not None else ranges_sidecar_key(name, version)
    if json_output:
        print_json({**summary(fitted), "key": key, "sha256": sha, "ranges_key": ranges_key})
        return
    typer.echo(describe(fitted))
    typer.echo(f"stored {key} (sha256 {sha[:12]}…, recorded in {index_key(name)})")
    if ranges_key is not None and fitted.ranges is not None:
        lo, hi = fitted.ranges.quantiles
        typer.echo(
            f"stored {ranges_key}: each feature's range (the reference's {lo:g} and {hi:g} "
            "quantiles); answers warn about values outside it from the function's next load "
            "of the version"
        )
