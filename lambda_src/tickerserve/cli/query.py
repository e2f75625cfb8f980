"""Read-only commands: ``list``, ``best``, ``show`` and ``history``."""

from __future__ import annotations

import io
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer

from tickerserve.cli.console import JsonOption, format_metrics, human_bytes, print_json, table
from tickerserve.cli.drift_text import line_drift_text
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.model_folder import IMPORTANCE_FILE
from tickerserve.cli.model_names import model_name
from tickerserve.cli.store_option import target
from tickerserve.cli.versions import parse_ref
from tickerserve.errors import TickerserveError
from tickerserve.layout import Version, artifact_key
from tickerserve.publishing.version_folders import VersionFolder, find_version, scan, versions_of
from tickerserve.serving.traffic import describe_settings
from tickerserve.storage.bundle import BundleMetadata, read_metadata
from tickerserve.storage.history import HISTORY_KEYS, mark_deleted, read_records
from tickerserve.storage.registry import DEFAULT_ALIAS, Registry, read_registry
from tickerserve.storage.store import Store, sha256_hex

NameOption = Annotated[
    str | None, typer.Option("--name", help="Only models whose name starts with PREFIX.")
]
ModelTypeOption = Annotated[
    str | None,
    typer.Option(
        "--model-type",
        help="Only this model type: a family (lightgbm, xgboost, random_forest, extra_trees, "
        "gradient_boosting, hist_gradient_boosting, linear, ensemble, stack) or a class name "
        "(LGBMClassifier, XGBClassifier, ...); an ensemble matches its members' too.",
    ),
]
# Estimator class name (prefix) -> its family, as --model-type accepts it.
FAMILIES = (
    ("HistGradientBoosting", "hist_gradient_boosting"),
    ("GradientBoosting", "gradient_boosting"),
    ("RandomForest", "random_forest"),
    ("ExtraTrees", "extra_trees"),
    ("LGBM", "lightgbm"),
    ("XGB", "xgboost"),
    ("Ridge", "linear"),
    ("LinearRegression", "linear"),
    ("LogisticRegression", "linear"),
)


@dataclass
class VersionRow:
    """A version folder with its metadata (when complete and readable) and registry facts."""

    folder: VersionFolder
    metadata: BundleMetadata | None
    digest: str | None
    problem: str | None
    aliases: list[str]

    @property
    def status(self) -> str:
        if not self.folder.complete:
            return "incomplete"
        return "invalid" if self.problem else "ok"

    def to_dict(self) -> dict[str, Any]:
        meta = self.metadata
        return {
            "model": self.folder.model,
            "version": self.folder.version,
            "status": self.status,
            "problem": self.problem,
            "aliases": self.aliases,
            "model_type": meta.model_type if meta else None,
            "created_at": meta.created_at if meta else None,
            "asset_class": meta.asset_class if meta else None,
            "features": len(meta.used_features) if meta else None,
            "classes": meta.classes if meta else None,
            "metrics": meta.metrics if meta else {},
            "files": len(self.folder.keys),
            "bytes": self.folder.size,
            "metadata_sha256": self.digest,
        }


def collect(store: Store, registry: Registry, folders: list[VersionFolder]) -> list[VersionRow]:
    """Read every complete folder's metadata in parallel, checking aliased ones' digests."""

    def row(folder: VersionFolder) -> VersionRow:
        aliases = registry.aliases_pointing_at(folder.model, folder.version)
        if not folder.complete:
            return VersionRow(folder, None, None, "metadata.json missing", aliases)
        entry = registry.models.get(folder.model)
        expected = entry.aliases[aliases[0]].metadata_sha256 if entry and aliases else None
        try:
            meta, digest = read_metadata(
                store, folder.model, folder.version, expected_sha256=expected
            )
        except TickerserveError as exc:
            return VersionRow(folder, None, None, exc.message, aliases)
        return VersionRow(folder, meta, digest, None, aliases)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(row, folders))


def family(name: str) -> str:
    """The family of an estimator class or model type (``LGBMClassifier`` -> ``lightgbm``)."""
    for prefix, found in FAMILIES:
        if name.startswith(prefix):
            return found
    return name.lower()


def model_types(meta: BundleMetadata) -> set[str]:
    """Every name ``--model-type`` may find a version by (lower case): its model type, its
    members' classes, and their families (``lightgbm`` for demo and imported LightGBM alike)."""
    kind, _, parts = meta.model_type.partition(":")
    names = {meta.model_type, kind} if parts else {meta.model_type}
    names |= {m.estimator for m in meta.members if m.estimator}
    names |= set(parts.split("+")) if parts else set()
    names |= {family(n) for n in list(names)}
    names |= {"lightgbm" for m in meta.members if m.kind == "lightgbm"}
    return {n.lower() for n in names if n}


def parse_min_metrics(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not sep or not name or not math.isfinite(value):
            raise Refused(f"--min-metric {item!r}: expected NAME=NUMBER")
        out[name] = value
    return out


def _filtered(
    rows: list[VersionRow], model_type: str | None, minimums: dict[str, float]
) -> list[VersionRow]:
    if model_type is None and not minimums:
        return rows
    kept = []
    for r in rows:
        meta = r.metadata
        if meta is None:
            continue
        if model_type is not None and model_type.lower() not in model_types(meta):
            continue
        if all(meta.metrics.get(k, -math.inf) >= v for k, v in minimums.items()):
            kept.append(r)
    return kept


def list_command(
    ctx: typer.Context,
    model_type: ModelTypeOption = None,
    min_metric: Annotated[
        list[str] | None,
        typer.Option(
            "--min-metric",
            metavar="NAME=VALUE",
            help="NAME=VALUE: keep versions with metric >= VALUE.",
        ),
    ] = None,
    name: NameOption = None,
    json_output: JsonOption = False,
) -> None:
    """List model versions with their aliases and metrics; incomplete folders are flagged."""
    t = target(ctx)
    minimums = parse_min_metrics(min_metric or [])
    registry = read_registry(t.store, t.registry_key).registry
    rows = _filtered(collect(t.store, registry, scan(t.store, name or "")), model_type, minimums)
    if json_output:
        print_json([r.to_dict() for r in rows])
        return
    if not rows:
        typer.echo("no versions")
        return
    typer.echo(
        table(
            ["MODEL", "VERSION", "STATUS", "ALIASES", "TYPE", "CREATED", "METRICS"],
            [
                [
                    r.folder.model,
                    r.folder.version,
                    r.status,
                    ",".join(r.aliases),
                    r.metadata.model_type if r.metadata else "",
                    r.metadata.created_at if r.metadata else "",
                    format_metrics(r.metadata.metrics) if r.metadata else r.problem,
                ]
                for r in rows
            ],
        )
    )


def best_command(
    ctx: typer.Context,
    metric: Annotated[str, typer.Option("--metric", help="Metric to rank by.")],
    name: NameOption = None,
    model_type: ModelTypeOption = None,
    lowest: Annotated[bool, typer.Option("--lowest", help="Lowest value wins (losses).")] = False,
    json_output: JsonOption = False,
) -> None:
    """The version with the highest (or --lowest) value of a metric."""
    t = target(ctx)
    registry = read_registry(t.store, t.registry_key).registry
    rows = [
        r
        for r in _filtered(collect(t.store, registry, scan(t.store, name or "")), model_type, {})
        if r.metadata is not None and metric in r.metadata.metrics
    ]
    if not rows:
        scope = f" among models starting with {name!r}" if name else ""
        raise Refused(f"no version has metric {metric!r}{scope}")

    def score(r: VersionRow) -> tuple[float, tuple[str, Version]]:
        assert r.metadata is not None
        value = r.metadata.metrics[metric]
        return (-value if lowest else value), r.folder.sort_key

    winner = max(rows, key=score)
    assert winner.metadata is not None
    value = winner.metadata.metrics[metric]
    if json_output:
        print_json({**winner.to_dict(), "metric": metric, "value": value, "candidates": len(rows)})
        return
    aliases = f" [{', '.join(winner.aliases)}]" if winner.aliases else ""
    typer.echo(
        f"{winner.folder.model} {winner.folder.version}{aliases}: {metric}={value:g} "
        f"({'lowest' if lowest else 'highest'} of {len(rows)} versions)"
    )


def _pick_version(store: Store, registry: Registry, model: str, selector: str | None) -> str:
    if selector is not None and selector[:1].isdigit():
        return str(Version.parse(selector))
    entry = registry.models.get(model)
    if selector is not None:
        if entry is None or selector not in entry.aliases:
            raise Refused(f"model {model} has no alias {selector!r}")
        return entry.aliases[selector].version
    if entry is not None and DEFAULT_ALIAS in entry.aliases:
        return entry.aliases[DEFAULT_ALIAS].version
    complete = [f for f in versions_of(store, model) if f.complete]
    if not complete:
        raise Refused(f"model {model} has no versions")
    return complete[-1].version


def show_command(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Argument(
            help="NAME, NAME@VERSION or NAME@ALIAS (default: production, else latest); "
            "optional with --model-id.",
            show_default=False,
        ),
    ] = None,
    importance: Annotated[
        bool,
        typer.Option(
            "--importance",
            help="Also print the feature importance kept with the version (seed 001's "
            "feature_importance.parquet; needs pyarrow).",
        ),
    ] = False,
    model_id: Annotated[
        int | None,
        typer.Option(
            "--model-id",
            help="The version imported from a seed registry.db row with this model_id "
            "(seed 004), among NAME's versions or every model's.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show one version: features, classes, metrics, artifacts, aliases and tickers (and, for
    a version imported from seed 004's registry.db, its model_id and description)."""
    t = target(ctx)
    registry = read_registry(t.store, t.registry_key).registry
    if model_id is not None:
        row = _by_model_id(t.store, registry, model_id, ref, t)
    else:
        if ref is None:
            raise Refused("give NAME[@VERSION|@ALIAS] or --model-id N")
        model, selector = parse_ref(ref, t)
        version = _pick_version(t.store, registry, model, selector)
        folder = find_version(t.store, model, version)
        if folder is None:
            raise Refused(_missing(t.store, model, version))
        row = collect(t.store, registry, [folder])[0]
    model, version = row.folder.model, row.folder.version
    entry = registry.models.get(model)
    info = row.to_dict()
    serving = DEFAULT_ALIAS in row.aliases
    info["tickers"] = registry.tickers_for(model) if serving else []
    info["model_aliases"] = (
        {a: x.version for a, x in sorted(entry.aliases.items())} if entry else {}
    )
    info["rollback_history"] = (
        {a: [x.version for x in h] for a, h in entry.history.items() if h} if entry else {}
    )
    info["traffic"] = describe_settings(entry)
    if row.metadata is not None:
        meta = row.metadata
        info["model_id"] = meta.source.get("registry_model_id")
        info["description"] = meta.source.get("description")
        info["config"] = meta.source.get("config")
        info["training_config"] = meta.source.get("training_config")
        if importance:
            info["importance"] = _importance(t.store, meta)
        info |= {
            "feature_names": meta.feature_names,
            "selected_features": meta.selected_features,
            "used_features": meta.used_features,
            "artifacts": {
                n: {"size": a.size, "sha256": a.sha256} for n, a in meta.artifacts.items()
            },
            "task": meta.task,
            "ensemble": meta.describe_ensemble(),
            "accepts_missing": meta.accepts_missing,
            "hyperparameters": meta.hyperparameters,
            "training": meta.training,
            "source": meta.source,
        }
    if json_output:
        print_json(info)
        return
    _print_show(info)


def _importance(store: Store, meta: BundleMetadata) -> list[dict[str, Any]]:
    """The version's feature importance rows (highest first), from its parquet artifact."""
    if IMPORTANCE_FILE not in meta.artifacts:
        raise Refused(
            f"{meta.model} {meta.version} keeps no {IMPORTANCE_FILE} (only seed 001 runs that "
            "had one do)"
        )
    try:
        import pyarrow.parquet as pq
    except ImportError:
        message = f'reading {IMPORTANCE_FILE} needs pyarrow: pip install "tickerserve[seeds]"'
        raise Refused(message) from None
    blob = store.get(artifact_key(meta.model, meta.version, IMPORTANCE_FILE))
    assert blob is not None
    if sha256_hex(blob.data) != meta.artifacts[IMPORTANCE_FILE].sha256:
        raise Refused(f"{meta.model} {meta.version}: {IMPORTANCE_FILE} fails sha256 verification")
    rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(blob.data)).to_pylist()
    numeric = [k for k, v in (rows[0].items() if rows else []) if isinstance(v, int | float)]
    if numeric:
        rows.sort(key=lambda r: -float(r[numeric[0]] or 0))
    return rows


def _by_model_id(
    store: Store, registry: Registry, model_id: int, ref: str | None, t: Any
) -> VersionRow:
    """The version imported from registry.db's row ``model_id`` (among ``ref``'s model's)."""
    prefix = ""
    if ref is not None:
        prefix, _ = parse_ref(ref, t)
    rows = [
        r
        for r in collect(store, registry, scan(store, prefix))
        if r.metadata is not None and r.metadata.source.get("registry_model_id") == model_id
    ]
    if not rows:
        scope = f" of {prefix}" if prefix else ""
        raise Refused(
            f"no version{scope} was imported from a registry.db row with model_id {model_id}"
        )
    if len(rows) > 1:
        found = ", ".join(f"{r.folder.model} {r.folder.version}" for r in rows)
        raise Refused(
            f"model_id {model_id} was imported as {found}; name one: show NAME --model-id"
        )
    return rows[0]


def _missing(store: Store, model: str, version: str) -> str:
    """What is missing when a version is: the version (with the ones there are) or the model."""
    held = [f.version for f in versions_of(store, model) if f.complete]
    if not held:
        return (
            f"{model} has no versions in {store.describe()} (tickerserve list shows what there is)"
        )
    return f"{model} has no version {version} in {store.describe()}; it has {', '.join(held)}"


def _print_show(info: dict[str, Any]) -> None:
    lines = [
        f"{info['model']} {info['version']}  [{info['status']}]",
        f"aliases:   {', '.join(info['aliases']) or '-'}"
        f"   (model: {_pairs(info['model_aliases']) or '-'})",
        f"traffic:   {_traffic(info['traffic'])}",
    ]
    if info["problem"]:
        lines.append(f"problem:   {info['problem']}")
    if info["status"] == "incomplete":
        lines.append(f"files:     {info['files']} ({human_bytes(info['bytes'])}), no metadata.json")
        typer.echo("\n".join(lines))
        return
    if info["status"] == "invalid":
        typer.echo("\n".join(lines))
        return
    lines += [
        f"tickers:   {', '.join(info['tickers']) or '-'}",
        f"type:      {info['model_type']} ({info['task']}), "
        f"asset class {info['asset_class'] or '-'}, created {info['created_at'] or '-'}",
        *([f"model_id:  {info['model_id']} (registry.db)"] if info["model_id"] is not None else []),
        *([f"description: {info['description']}"] if info["description"] else []),
        f"members:   {_members(info['ensemble'])}",
        f"classes:   {', '.join(info['classes']) or '- (regression: one value)'}",
        f"features:  {len(info['used_features'])} used of {len(info['feature_names'])}: "
        f"{', '.join(info['used_features'])}",
        f"metrics:   {_pairs(info['metrics']) or '-'}",
        f"training:  {_pairs(info['training']) or '-'}",
        f"source:    {_source(info['source'])}",
        f"metadata:  sha256 {info['metadata_sha256']}",
        "artifacts:",
    ]
    lines += [
        f"  {name}  {human_bytes(a['size'])}  sha256 {a['sha256']}"
        for name, a in sorted(info["artifacts"].items())
    ]
    for alias, versions in info["rollback_history"].items():
        lines.append(f"rollback:  {alias} history (newest first): {', '.join(versions[::-1])}")
    for key in ("config", "training_config"):
        if info.get(key):
            lines.append(f"{key}: {json.dumps(info[key], sort_keys=True)}")
    if info.get("importance") is not None:
        lines.append("importance:")
        lines += [
            "  " + "  ".join(f"{k}={v}" for k, v in row.items()) for row in info["importance"]
        ]
    typer.echo("\n".join(lines))


def _members(ensemble: dict[str, Any]) -> str:
    """``weighted_average of rf (treelite RandomForestClassifier) x0.473, ...``."""
    parts = []
    for m in ensemble["members"]:
        what = " ".join(x for x in (m["kind"], m["estimator"]) if x)
        weight = f" x{m['weight']:g}" if ensemble["method"] == "weighted_average" else ""
        parts.append(f"{m['name']} ({what}){weight}")
    text = f"{ensemble['method']} of {', '.join(parts)}"
    meta = ensemble.get("meta_learner")
    return f"{text}; meta-learner {meta['estimator']} ({meta['link']})" if meta else text


def _traffic(traffic: dict[str, Any]) -> str:
    parts = [f"capture {traffic['capture']['sample']:g}"]
    for what, share in (("shadow", "sample"), ("canary", "weight")):
        setting = traffic[what]
        parts.append(
            f"{what} off"
            if setting is None
            else f"{what} {setting['alias']} ({setting['version'] or 'no version'}) "
            f"{share} {setting[share]:g}"
        )
    return ", ".join(parts)


def _source(source: dict[str, Any]) -> str:
    return " ".join(str(source[k]) for k in ("kind", "estimator") if source.get(k)) or "-"


def _pairs(mapping: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in mapping.items()
    )


def _monitoring_line(r: dict[str, Any]) -> str:
    """One monitoring run of one model (ours or the seed's own lines) on one line."""
    win = (r.get("comparison") or {}).get("model_b_win_rate")
    psi = (r.get("feature_drift") or {}).get("psi_max")
    cells = [
        str(r.get("timestamp") or r.get("monitoring_date") or "-")[:19],
        str(r.get("model") or "-"),
        str(r.get("action") or "-"),
        "drift " + line_drift_text(r),
        "psi " + ("-" if not isinstance(psi, int | float) else f"{psi:.3f}"),
        "B wins " + ("-" if not isinstance(win, int | float) else f"{win:.0%}"),
        str(r.get("recommendation") or ""),
    ]
    return "  ".join(cells).rstrip()


class HistoryKind(StrEnum):
    training = "training"
    monitoring = "monitoring"


def history_command(
    ctx: typer.Context,
    kind: Annotated[HistoryKind, typer.Argument(help="training or monitoring.")],
    last: Annotated[
        int | None, typer.Option("--last", min=1, help="Only the last N records.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Print the training or monitoring history, oldest first.

    Published versions that were deleted later carry deleted_at.
    """
    t = target(ctx)
    log = read_records(t.store, HISTORY_KEYS[kind.value])
    records = mark_deleted(log.records) if kind is HistoryKind.training else log.records
    if model is not None:
        wanted = model_name(model, t)
        records = [r for r in records if r.get("model") == wanted]
    if last is not None:
        records = records[-last:]
    if json_output:
        print_json(records)
        return
    if log.malformed:
        typer.echo(f"note: skipped {log.malformed} malformed line(s)", err=True)
    if not records:
        typer.echo(f"no {kind.value} history")
        return
    for r in records:
        if kind is not HistoryKind.training:
            typer.echo(_monitoring_line(r))
            continue
        when = (
            r.get("published_at")
            or r.get("deleted_at")
            or r.get("timestamp")
            or r.get("created_at")
        )
        event = r.get("event", "-")
        tail = format_metrics(r["metrics"]) if isinstance(r.get("metrics"), dict) else ""
        deleted = (
            f" (deleted {r['deleted_at']})" if event == "published" and r.get("deleted_at") else ""
        )
        what = f"{r.get('model', '-')} {r.get('version', '')}"
        typer.echo(f"{when or '-'}  {event}  {what}  {tail}{deleted}".rstrip())
