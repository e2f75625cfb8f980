"""``import-seed``: publish what a seed project left behind, in one command.

The layout is recognised by the seed's own file names (or named with ``--layout``); its
importer (``cli.importers``) plans the versions, routes and aliases, ``publication`` converts
and checks every model before anything of it is written, publishes only what is new, and
updates the registry once. What cannot be imported is skipped with the reason, and the exit
code is 2 when anything was skipped.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tickerserve.baselines.baseline import DEFAULT_BINS
from tickerserve.cli.baseline import (
    DEFAULT_RANGE_QUANTILES,
    BinsOption,
    RangeQuantilesOption,
    range_quantiles,
)
from tickerserve.cli.console import JsonOption, format_metrics, print_json, table
from tickerserve.cli.errors import EXIT_REFUSED, Refused
from tickerserve.cli.importers import IMPORTERS, detect, models_storage
from tickerserve.cli.importers import in_place as in_place_tree
from tickerserve.cli.importers.network_runs import NetworkOptions
from tickerserve.cli.importers.plan import ImportOptions
from tickerserve.cli.importers.publication import ImportResult, Outcome, run_import
from tickerserve.cli.model_names import model_name
from tickerserve.cli.progress import progress
from tickerserve.cli.reference import read_table
from tickerserve.cli.store_option import Target, target
from tickerserve.layout import (
    SEED_000_REGISTRY_KEY,
    normalize_ticker,
    validate_alias,
    validate_signal,
)
from tickerserve.publishing.conversion.feature_names import read_names_file
from tickerserve.publishing.release import ADD, KEEP, MOVE, SAME
from tickerserve.storage.registry import DEFAULT_ALIAS, validate_asset_class

# Which layouts read which flag (a flag another layout would ignore is refused).
FLAG_LAYOUTS = {
    "--stocks": ("000",),
    "--stock-fallback": ("000",),
    "--etfs": ("001", "002", "003", "004"),
    "--asset-class": ("001", "002"),
    "--model": ("003",),
    "--route": ("003", "004"),
    "--map": ("004",),
    "--skip-existing": ("004",),
    "--window": ("001",),
    "--torch-module": ("001",),
}


def _split(items: list[str] | None) -> list[str]:
    return [s.strip() for item in items or [] for s in item.split(",") if s.strip()]


def import_seed_command(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(
            help="A seed's folder: models_storage/ (000), models/ with run folders (001), "
            "trained_models/ (002), models/ with model_90pct.pkl (003), or the folder of "
            "registry.db (004). Without it (or with the --store folder itself): seed 000's "
            "own bucket or folder, converted in place.",
            show_default=False,
        ),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option("--layout", help=f"Skip detection: one of {', '.join(IMPORTERS)}."),
    ] = None,
    alias: Annotated[
        str,
        typer.Option(
            "--alias",
            help="The alias the imported production version gets (000: every imported "
            "version; 001/002: the latest run or file; 003: Model A; 004: the highest version).",
        ),
    ] = DEFAULT_ALIAS,
    etfs: Annotated[
        list[str] | None,
        typer.Option("--etfs", metavar="TICKERS", help="Symbols that are ETFs (-> etfs/...)."),
    ] = None,
    stocks: Annotated[
        list[str] | None,
        typer.Option(
            "--stocks",
            metavar="TICKERS",
            help="000: stock tickers to route to stocks/universal (comma-separated or repeated).",
        ),
    ] = None,
    stock_fallback: Annotated[
        bool,
        typer.Option("--stock-fallback", help="000: make stocks/universal the stock fallback."),
    ] = False,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="003: the model name, e.g. stocks/SPY/vol.")
    ] = None,
    route: Annotated[
        list[str] | None,
        typer.Option(
            "--route", metavar="TICKER[=MODEL]", help="003/004: route a ticker (repeatable)."
        ),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map", metavar="NAME=MODEL", help="004: publish registry name NAME as MODEL."
        ),
    ] = None,
    skip_existing: Annotated[
        bool,
        typer.Option("--skip-existing", help="004: leave out versions the store already has."),
    ] = False,
    asset_class: Annotated[
        str | None,
        typer.Option(
            "--asset-class",
            help="001/002: the asset class of symbols not in --etfs (default stock, under "
            "stocks/); another class files them under its own folder (crypto -> crypto/BTCEUR).",
        ),
    ] = None,
    signal: Annotated[
        str | None,
        typer.Option(
            "--signal",
            "-s",
            help="The signal the imported models are routed on (what they predict for their "
            "tickers). Default per layout: 000 strategy, 001 the model type (lightgbm; "
            "--signal renames it), 002 direction, 003 volatility, 004 strategy.",
        ),
    ] = None,
    take_routes: Annotated[
        bool,
        typer.Option(
            "--take-routes",
            help="Move routes (and fallbacks) that point at other models to the imported "
            "ones. Without it an import only adds routes where none is, and lists the rest.",
        ),
    ] = False,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            metavar="FILE",
            help="Feature names (JSON list) for models whose seed names none.",
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            metavar="FILE",
            help="CSV or Parquet with the feature columns (and optionally label or value): "
            "every imported version gets a monitoring baseline fitted from it.",
        ),
    ] = None,
    bins: BinsOption = DEFAULT_BINS,
    window: Annotated[
        int | None,
        typer.Option(
            "--window",
            min=1,
            metavar="N",
            help="001: the window length (rows per request) of GRU runs that record none.",
        ),
    ] = None,
    torch_module: Annotated[
        str | None,
        typer.Option(
            "--torch-module",
            metavar="MODULE:CLASS",
            help="001: build GRU checkpoints from your own torch class (constructed from "
            "model_config) when their state dict fits no template.",
        ),
    ] = None,
    range_quantiles_text: RangeQuantilesOption = DEFAULT_RANGE_QUANTILES,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Convert and check everything, write nothing.")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=32, help="Parallel model uploads.")] = 4,
    json_output: JsonOption = False,
) -> None:
    """Import a seed's models: every model converted and checked, only what is new published.

    Routes are keyed by ticker, signal and timeframe. An import creates a route only where
    the ticker has none (on that signal and timeframe) or it already points at the imported
    model; a route that points elsewhere is kept and listed (--take-routes moves it). The
    summary and --dry-run list every route change as old → new. Re-running on an unchanged
    tree leaves the registry as it is.

    With --reference, each imported version carries a monitoring baseline fitted from the file
    (scored by the version itself; seed 003 adds its baseline files' metrics and windows); a
    version the store already held without a baseline gets it as a sidecar. A version whose
    features the file lacks is skipped.

    Exit code 0 when everything was imported (or already was), 2 when anything was skipped
    (the summary says what and why) or the import was refused.
    """
    t = target(ctx)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tickerserve-import-") as scratch:
        in_place = path is None or _is_store_folder(path, t)
        if in_place:
            if layout not in (None, models_storage.LAYOUT):
                raise Refused(
                    f"--layout {layout}: only seed 000's own bucket or folder is converted in "
                    "place; give the seed's folder as PATH"
                )
            importer, root = models_storage, in_place_tree.materialize(t.store, Path(scratch))
            seed = in_place_tree.seed_registry(t.store, t.registry_key)
            if seed is not None:
                in_place_tree.write_seed_registry(root, seed)
        else:
            assert path is not None
            importer, root = detect(path, layout)
        given = {
            "--stocks": bool(stocks), "--stock-fallback": stock_fallback, "--etfs": bool(etfs),
            "--model": model is not None, "--route": bool(route), "--map": bool(mapping),
            "--skip-existing": skip_existing, "--asset-class": asset_class is not None,
            "--window": window is not None, "--torch-module": torch_module is not None,
        }  # fmt: skip
        for flag, used in given.items():
            if used and importer.LAYOUT not in FLAG_LAYOUTS[flag]:
                raise Refused(
                    f"{flag} does not apply to seed layout {importer.LAYOUT} "
                    f"(only to {', '.join(FLAG_LAYOUTS[flag])})"
                )
        options = ImportOptions(
            alias=validate_alias(alias),
            etfs=frozenset(_tickers("--etfs", _split(etfs))),
            stocks=tuple(_split(stocks)),
            stock_fallback=stock_fallback,
            model=None if model is None else model_name(model, t),
            routes=tuple(route or []),
            mapping=_mapping(mapping or [], t),
            skip_existing=skip_existing,
            features=None if features is None else read_names_file(features),
            reference=None if reference is None else read_table(reference),
            bins=bins,
            range_quantiles=range_quantiles(range_quantiles_text),
            signal=None if signal is None else validate_signal(signal),
            asset_class=None if asset_class is None else validate_asset_class(asset_class),
            take_routes=take_routes,
            network=NetworkOptions(window, torch_module),
        )
        with progress(not json_output) as track:  # on a terminal: reading, then each conversion
            reading = track.step(f"reading {root} ({importer.LAYOUT})")
            plan = importer.plan(root, options)
            reading.done()
            # A seed's own registry at the key (seed 000's bucket): kept, then replaced.
            kept = None
            if not dry_run:
                kept = in_place_tree.keep_seed_registry(t.store, t.registry_key)
            else:
                kept = (
                    SEED_000_REGISTRY_KEY
                    if in_place_tree.seed_registry_at(t.store, t.registry_key) is not None
                    else None
                )
            result = run_import(
                t.store,
                t.registry_key,
                plan,
                options,
                dry_run=dry_run,
                jobs=jobs,
                replace_seed=True,
                track=track,
            )
        report = import_report(result)
        if in_place:
            report["root"] = t.store.describe()
        report["in_place"] = in_place
        report["seed_registry_kept_as"] = kept
        report["seconds"] = round(time.perf_counter() - started, 3)
        if json_output:
            print_json(report)
        else:
            print_import(report, t.store.describe())
        if result.incomplete is not None:  # live, but a history line is missing: exit 1
            raise result.incomplete
        if result.skipped:
            raise typer.Exit(EXIT_REFUSED)


def _is_store_folder(path: Path, t: Target) -> bool:
    """True when ``path`` is the --store folder itself (a seed 000 folder, converted in place)."""
    return t.store_path is not None and path.resolve() == Path(t.store_path).resolve()


def _tickers(flag: str, items: list[str]) -> list[str]:
    try:
        return [normalize_ticker(x) for x in items]
    except ValueError as exc:
        raise Refused(f"{flag}: {exc}") from None


def _mapping(items: list[str], t: Target) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, model = item.partition("=")
        if not sep or not name.strip() or not model.strip():
            raise Refused(f"--map {item!r}: expected NAME=MODEL")
        out[name.strip()] = model_name(model.strip(), t)
    return out


def import_report(result: ImportResult) -> dict[str, Any]:
    """The import as JSON: each model version, what was skipped, routes, registry revision."""
    plan = result.plan
    models = []
    ordered = sorted(result.outcomes, key=lambda o: (o.candidate.model, o.candidate.order))
    for o in ordered:
        meta = o.converted.bundle.metadata
        models.append(
            {
                "model": o.candidate.model,
                "version": o.version,
                "status": o.status,
                "source": o.candidate.source,
                "estimator": o.converted.estimator,
                "task": meta.task,
                "features": len(meta.used_features),
                "classes": meta.classes,
                "metrics": meta.metrics,
                "probe_rows": o.converted.probe_rows,
                "max_abs_diff": o.converted.max_abs_diff,
                **_network_report(o),
                "aliases": o.aliases,
                "tickers": sorted(
                    {
                        d.change.ticker
                        for d in result.routes
                        if d.change.model == o.candidate.model and d.action != KEEP
                    }
                ),
                "warnings": o.converted.warnings,
                "baseline": _baseline_report(o),
            }
        )
    return {
        "layout": plan.layout,
        "root": str(plan.root),
        "dry_run": result.dry_run,
        "registry_found": plan.registry_found,
        "models": models,
        "skipped": [{"source": s.source, "reason": s.reason} for s in result.skipped],
        "routes": [d.to_dict() for d in result.routes],
        "route_lines": [d.line(dry_run=result.dry_run) for d in result.routes if d.action != SAME],
        "kept_fallbacks": result.kept_fallbacks,
        "aliases": [
            {"model": m.model, "alias": m.alias, "version": m.version} for m in result.moves
        ],
        "shadows": {m: s.to_dict() for m, s in plan.shadows.items()},
        "fallbacks": plan.fallbacks,
        "history_lines": result.history_lines,
        "revision": result.revision,
        "notes": plan.notes,
    }


def _network_report(outcome: Outcome) -> dict[str, Any]:
    """A network's input and the relative difference its check measured (``max_abs_diff``
    is the absolute one)."""
    meta = outcome.converted.bundle.metadata
    if meta.network is None:
        return {}
    probe = meta.source.get("probe") or {}
    return {"network": meta.network.to_dict(),
            "max_relative_diff": probe.get("max_relative_diff")}  # fmt: skip


def _baseline_report(outcome: Outcome) -> dict[str, Any] | None:
    """The monitoring baseline the import brought for a version, and where it is kept."""
    b = outcome.baseline
    if b is None:
        return None
    return {
        "stored": outcome.baseline_stored,
        "rows": b.rows,
        "features": len(b.features),
        "metrics": b.metrics,
        "training": b.training.to_dict(),
        "validation": b.validation.to_dict(),
    }


_STORED = {
    "version": "in the version",
    "sidecar": "attached as a sidecar (the version was in the store)",
    None: "would be attached",
}


def _baseline_line(m: dict[str, Any]) -> str:
    b = m["baseline"]
    ref = f"{m['model']}@{m['version']}"
    if b["stored"] == "kept":
        return (
            f"baseline {m['model']} {m['version']}: kept the one it has (to refit it: "
            f"tickerserve baseline {ref} --reference FILE --replace)"
        )
    what = f"{b['rows']} reference rows x {b['features']} features" if b["rows"] else "no reference"
    metrics = format_metrics(b["metrics"], 4) if b["metrics"] else "no metrics"
    return f"baseline {m['model']} {m['version'] or '-'}: {_STORED[b['stored']]}; {what}; {metrics}"


def print_import(report: dict[str, Any], where: str) -> None:
    rows = [
        [
            m["model"],
            m["version"] or "-",
            m["status"],
            m["source"],
            m["estimator"],
            m["task"] if m["task"] != "classification" else f"{len(m['classes'])} classes",
            m["features"],
            f"{m['max_abs_diff']:.2g}",
            ",".join(m["aliases"]),
            format_metrics(m["metrics"], 2),
        ]
        for m in report["models"]
    ]
    typer.echo(f"seed layout {report['layout']}: {report['root']}")
    if rows:
        typer.echo(
            table(
                [
                    "MODEL",
                    "VERSION",
                    "STATUS",
                    "FROM",
                    "ESTIMATOR",
                    "OUTPUT",
                    "FEATURES",
                    "MAX DIFF",
                    "ALIASES",
                    "METRICS",
                ],
                rows,
            )
        )
    warned: dict[str, list[str]] = {}
    for m in report["models"]:
        for warning in m["warnings"]:
            warned.setdefault(warning, []).append(m["source"])
    for warning, sources in warned.items():
        which = sources[0] if len(sources) == 1 else f"{len(sources)} versions"
        typer.echo(f"note: {which}: {warning}")
    for m in report["models"]:
        if m["baseline"] is not None:
            typer.echo(_baseline_line(m))
    for line in report["notes"]:
        typer.echo(f"note: {line}")
    if report.get("seed_registry_kept_as") and not report["dry_run"]:
        typer.echo(
            f"seed 000's registry kept as {report['seed_registry_kept_as']}; "
            f"tickerserve's registry replaces it"
        )
    for s in report["skipped"]:
        typer.echo(f"skipped {s['source']}: {s['reason']}")
    for line in report["route_lines"]:
        typer.echo(line)
    for cls, model in report["kept_fallbacks"].items():
        typer.echo(f"fallback {cls} keeps {model}; --take-routes moves it")
    published = sum(m["status"] == "published" for m in report["models"])
    unchanged = sum(m["status"] == "unchanged" for m in report["models"])
    actions = [r["action"] for r in report["routes"]]
    routes = ", ".join(
        f"{actions.count(a)} {word}"
        for a, word in ((ADD, "added"), (MOVE, "moved"), (SAME, "unchanged"), (KEEP, "kept"))
        if a in actions
    )
    counts = f"{unchanged} unchanged, {len(report['skipped'])} skipped; routes: {routes or 'none'}"
    if report["dry_run"]:
        would = sum(m["status"] == "would publish" for m in report["models"])
        typer.echo(f"dry run: would publish {would}; {counts}; nothing written to {where}")
        return
    typer.echo(
        f"published {published}; {counts}; registry revision {report['revision']} in {where} "
        f"({report['seconds']:.2f} s)"
    )
