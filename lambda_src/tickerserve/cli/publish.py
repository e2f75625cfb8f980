"""``publish`` (one model folder) and ``import-seed`` (a whole seed ``models_storage/`` tree)."""

from __future__ import annotations

import dataclasses
import math
import time
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tickerserve.bundle import read_metadata
from tickerserve.cli.baseline import (
    BinsOption,
    ReferenceOption,
    TrainingOption,
    ValidationOption,
)
from tickerserve.cli.baseline import describe as describe_baseline
from tickerserve.cli.baseline import summary as baseline_summary
from tickerserve.cli.console import JsonOption, format_metrics, note, print_json, table
from tickerserve.cli.errors import Refused
from tickerserve.cli.reference import fit_from_reference, parse_window
from tickerserve.cli.seed import Converted, load_source
from tickerserve.cli.seed_tree import SeedPlan, plan_tree
from tickerserve.cli.target import target
from tickerserve.errors import TickerserveError
from tickerserve.layout import (
    ETF_PREFIX,
    TRAINING_HISTORY_KEY,
    UNIVERSAL_STOCK_MODEL,
    validate_model_name,
)
from tickerserve.monitor.baseline import DEFAULT_BINS
from tickerserve.monitor.baseline_store import attach_to_bundle
from tickerserve.publishing.history import (
    HISTORY_KEYS,
    append_records,
    encode_records,
    read_records,
    versions_named,
)
from tickerserve.publishing.release import (
    RouteChange,
    Written,
    apply_publication,
    check_targets,
    publish,
    training_record,
    write_version,
)
from tickerserve.registry import DEFAULT_ALIAS, Registry, read_registry, validate_asset_class
from tickerserve.store import Store


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
            help="Native bundle folder (model.txt + metadata.json) or seed folder "
            "(model.joblib/.pkl, label_encoder.pkl, feature_names*.json, metadata.json).",
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
    reference: ReferenceOption = None,
    bins: BinsOption = DEFAULT_BINS,
    training_window: TrainingOption = None,
    validation_window: ValidationOption = None,
    json_output: JsonOption = False,
) -> None:
    """Publish a model folder as a new immutable version.

    With --reference, the version carries its monitoring baseline (baseline.json, sha256 in
    metadata.json like every artifact).

    Seed pickles are converted to LightGBM text and must predict exactly like the original.
    The version folder is written first (create-only), the registry last.
    """
    t = target(ctx)
    if version is not None and bump is not None:
        raise Refused("give --version or --bump, not both")
    aliases = list(dict.fromkeys(alias or []))
    check_targets(aliases, models=[model])
    if asset_class is not None:
        validate_asset_class(asset_class)
    extra_metrics = parse_metrics(metrics or [])
    started = time.perf_counter()
    converted = load_source(src, model=model, asset_class=asset_class or default_asset_class(model))
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
        )
        bundle = attach_to_bundle(bundle, fitted)
    result = publish(
        t.store,
        bundle,
        registry_key=t.registry_key,
        model=model,
        version=version,
        bump=(bump or BumpPart.patch).value,
        aliases=aliases,
    )
    seconds = time.perf_counter() - started
    if fitted is not None:  # it names the version it was written as
        fitted = dataclasses.replace(
            fitted, model=result.written.model, version=result.written.version
        )
    if json_output:
        print_json(
            {
                **result.to_dict(),
                "source": converted.summary(),
                "baseline": None if fitted is None else baseline_summary(fitted),
                "seconds": round(seconds, 3),
            }
        )
        return
    meta = result.written.bundle.metadata
    typer.echo(
        f"published {meta.model} {meta.version} to {t.store.describe()} "
        f"({_describe_source(converted)}; {len(meta.used_features)} features, "
        f"{len(meta.classes)} classes) in {seconds:.2f} s"
    )
    if fitted is not None:
        typer.echo(describe_baseline(fitted))
    for name in aliases:
        typer.echo(f"{name} -> {meta.version} (registry revision {result.revision})")
    if not aliases:
        typer.echo(f"no alias moved; promote with: tickerserve promote {meta.model} {meta.version}")


def _describe_source(converted: Converted) -> str:
    if converted.kind == "native":
        return "native bundle"
    return (
        f"converted {converted.estimator}, identical on {converted.probe_rows} probe rows "
        f"(max diff {converted.max_abs_diff:.2g})"
    )


# -- import-seed ---------------------------------------------------------------------------
def _unchanged(store: Store, registry: Registry, alias: str, converted: Converted) -> str | None:
    """The version ``alias`` already points at if it holds exactly this model, else None."""
    meta = converted.bundle.metadata
    entry = registry.models.get(meta.model)
    target_ = entry.aliases.get(alias) if entry else None
    if target_ is None:
        return None
    try:
        current, _ = read_metadata(
            store, meta.model, target_.version, expected_sha256=target_.metadata_sha256
        )
    except TickerserveError:  # missing or corrupt: publish a fresh version instead
        return None
    same = (
        {n: a.sha256 for n, a in current.artifacts.items()}
        == {n: a.sha256 for n, a in meta.artifacts.items()}
        and current.feature_names == meta.feature_names
        and current.selected_features == meta.selected_features
        and current.classes == meta.classes
    )
    return target_.version if same else None


def import_seed_command(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="A seed models_storage/ folder (or a folder containing it).")
    ],
    stocks: Annotated[
        list[str] | None,
        typer.Option(
            "--stocks",
            metavar="TICKERS",
            help="Stock tickers to route to stocks/universal (comma-separated or repeated); "
            "added to those the seed registry lists.",
        ),
    ] = None,
    alias: Annotated[
        str, typer.Option("--alias", help="Alias pointed at every imported version.")
    ] = DEFAULT_ALIAS,
    stock_fallback: Annotated[
        bool,
        typer.Option(
            "--stock-fallback", help="Also make stocks/universal the fallback for unlisted stocks."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Convert and check everything, write nothing.")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=32, help="Parallel model uploads.")] = 4,
    json_output: JsonOption = False,
) -> None:
    """Publish a whole seed models_storage/ tree and route its tickers.

    Every model is converted and checked before anything is written; then the versions are
    uploaded, one registry update routes the tickers and points ALIAS at the new versions, and
    the training history records them.
    """
    t = target(ctx)
    started = time.perf_counter()
    tickers = [s for item in stocks or [] for s in item.split(",") if s.strip()]
    plan = plan_tree(path, stocks=tickers)
    check_targets([alias], plan.routes, [m.name for m in plan.models])
    if stock_fallback and UNIVERSAL_STOCK_MODEL not in {m.name for m in plan.models}:
        raise Refused("--stock-fallback needs stocks/universal/production in the seed tree")
    converted = {
        m.name: load_source(m.folder, model=m.name, asset_class=m.asset_class) for m in plan.models
    }
    for name, c in converted.items():
        for warning in c.warnings:
            note(f"warning: {name}: {warning}")
    store = t.store
    snapshot = read_registry(store, t.registry_key)
    unchanged = {
        name: version
        for name, c in converted.items()
        if (version := _unchanged(store, snapshot.registry, alias, c)) is not None
    }
    to_write = [name for name in converted if name not in unchanged]
    written: dict[str, Written] = {}
    revision = snapshot.registry.revision
    if not dry_run:
        written = _write_all(store, {n: converted[n] for n in to_write}, jobs)
        fallbacks = {"stock": UNIVERSAL_STOCK_MODEL} if stock_fallback else {}
        if written or not _already_applied(snapshot.registry, plan.routes, fallbacks):
            registry = apply_publication(
                store,
                t.registry_key,
                list(written.values()),
                aliases=[alias],
                routes=plan.routes,
                fallbacks=fallbacks,
            )
            revision = registry.revision
        # After the registry: the records say ALIAS moved, so only once it has.
        records = [training_record(w, [alias]) for w in written.values()]
        _append_histories(store, records, plan)
    report = _import_report(plan, converted, written, unchanged, dry_run, revision)
    report["seconds"] = round(time.perf_counter() - started, 3)
    if json_output:
        print_json(report)
        return
    _print_import(report, alias, store.describe())


def _already_applied(
    registry: Registry, routes: list[RouteChange], fallbacks: dict[str, str]
) -> bool:
    """True when a re-import would not change the registry (no write, no new revision)."""
    for route in routes:
        current = registry.tickers.get(route.ticker)
        if current is None or (current.model, current.asset_class) != (
            route.model,
            route.asset_class,
        ):
            return False
    return all(registry.fallbacks.get(c) == m for c, m in fallbacks.items())


def _write_all(store: Store, converted: dict[str, Converted], jobs: int) -> dict[str, Written]:
    # Versions the training history names are never handed out again (read once for all).
    history = read_records(store, TRAINING_HISTORY_KEY).records

    def write(name: str) -> Written:
        return write_version(
            store,
            converted[name].bundle,
            model=validate_model_name(name),
            used_before=versions_named(history, name),
        )

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {name: pool.submit(write, name) for name in converted}
    # Raise the first failure only after every upload finished: the registry stays untouched.
    return {name: future.result() for name, future in futures.items()}


def _append_histories(store: Store, records: list[dict[str, Any]], plan: SeedPlan) -> None:
    """Training records of this import, plus seed history lines not imported before."""
    by_kind: dict[str, list[dict[str, Any]]] = {"training": list(records), "monitoring": []}
    for kind, lines in plan.histories.items():
        existing = {encode_records([r]) for r in read_records(store, HISTORY_KEYS[kind]).records}
        by_kind[kind] += [r for r in lines if encode_records([r]) not in existing]
    for kind, items in by_kind.items():
        append_records(store, HISTORY_KEYS[kind], items)


def _import_report(
    plan: SeedPlan,
    converted: dict[str, Converted],
    written: dict[str, Written],
    unchanged: dict[str, str],
    dry_run: bool,
    revision: int,
) -> dict[str, Any]:
    models = []
    for name, c in converted.items():
        meta = c.bundle.metadata
        if name in unchanged:
            status, version = "unchanged", unchanged[name]
        elif dry_run:
            status, version = "would publish", None
        else:
            status, version = "published", written[name].version
        models.append(
            {
                "model": name,
                "status": status,
                "version": version,
                "estimator": c.estimator,
                "features": len(meta.used_features),
                "classes": meta.classes,
                "metrics": meta.metrics,
                "probe_rows": c.probe_rows,
                "max_abs_diff": c.max_abs_diff,
                "tickers": sorted(r.ticker for r in plan.routes if r.model == name),
            }
        )
    return {
        "root": str(plan.root),
        "dry_run": dry_run,
        "registry_found": plan.registry_found,
        "models": models,
        "routes": {r.ticker: {"asset_class": r.asset_class, "model": r.model} for r in plan.routes},
        "history_lines": {k: len(v) for k, v in plan.histories.items()},
        "revision": revision,
        "notes": plan.notes,
    }


def _print_import(report: dict[str, Any], alias: str, where: str) -> None:
    rows = [
        [
            m["model"],
            m["version"] or "-",
            m["status"],
            m["estimator"],
            m["features"],
            len(m["classes"]),
            format_metrics(m["metrics"], 2),
            ",".join(m["tickers"]) if len(m["tickers"]) <= 4 else f"{len(m['tickers'])} tickers",
        ]
        for m in report["models"]
    ]
    typer.echo(
        table(
            ["MODEL", "VERSION", "STATUS", "SOURCE", "FEATURES", "CLASSES", "METRICS", "TICKERS"],
            rows,
        )
    )
    for line in report["notes"]:
        typer.echo(f"note: {line}")
    if report["dry_run"]:
        typer.echo(f"dry run: nothing written to {where}")
        return
    typer.echo(
        f"{len(report['routes'])} tickers routed; {alias} set for "
        f"{sum(m['status'] == 'published' for m in report['models'])} new version(s); "
        f"registry revision {report['revision']} in {where} ({report['seconds']:.2f} s)"
    )
