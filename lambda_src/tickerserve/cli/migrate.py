"""``migrate``: bring a store written by an earlier tickerserve up to this one's shapes.

- Every complete version folder gets its ``metadata.json`` sha256 recorded in its model's
  digest index (``version_index``), unless the registry or the training history recorded
  another digest for it (then it is reported and left unrecorded: its bytes changed since).
- Versions the training history says were deleted are recorded as deleted, so their numbers
  stay taken.
- The registry is rewritten at the current schema when it was written at an older one.
- Every version with a monitoring baseline but no feature ranges (published before ranges
  existed) gets them beside it, from its baseline (estimated from the baseline's stored CDFs
  when it was fitted before ranges too), so its answers carry warnings.

Idempotent: a second run records nothing and rewrites nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

import typer

from tickerserve.baselines.baseline import BaselineError
from tickerserve.baselines.persistence import has_baseline, load_baseline, write_ranges
from tickerserve.cli.console import JsonOption, note, print_json, table
from tickerserve.cli.errors import Failed
from tickerserve.cli.store_option import target
from tickerserve.errors import TickerserveError
from tickerserve.layout import RANGES_FILE, TRAINING_HISTORY_KEY, Version, metadata_key
from tickerserve.publishing.version_folders import scan
from tickerserve.storage.bundle import BundleMetadata
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import SCHEMA, Registry, read_registry, update_registry
from tickerserve.storage.store import KeyNotFound, Store, sha256_hex
from tickerserve.storage.version_index import VersionIndex, read_index, update_index


@dataclass
class ModelPlan:
    """What migrate finds and does for one model."""

    record: dict[str, str] = field(default_factory=dict)  # version -> metadata sha256
    deleted: dict[str, str | None] = field(default_factory=dict)  # version -> digest if known
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # version, status, detail
    # versions with a baseline and no feature ranges: their metadata, given them beside it
    ranges: list[BundleMetadata] = field(default_factory=list)


def _known_digests(registry: Registry, history: list[dict[str, Any]]) -> dict[Any, set[str]]:
    """(model, version) -> every metadata digest the registry or the history recorded."""
    known: dict[Any, set[str]] = defaultdict(set)
    for model, entry in registry.models.items():
        for target_ in [*entry.aliases.values(), *(t for h in entry.history.values() for t in h)]:
            known[(model, target_.version)].add(target_.metadata_sha256)
    for record in history:
        digest = record.get("metadata_sha256")
        if record.get("event") == "published" and isinstance(digest, str):
            known[(record.get("model"), record.get("version"))].add(digest)
    return known


def _deleted_in_history(history: list[dict[str, Any]]) -> dict[Any, str | None]:
    """(model, version) whose last training record is a delete -> the digest it was published
    with (None if the history never said)."""
    last: dict[Any, dict[str, Any]] = {}
    published: dict[Any, str | None] = {}
    for record in history:
        key = (record.get("model"), record.get("version"))
        if record.get("event") in ("published", "deleted"):
            last[key] = record
        if record.get("event") == "published":
            digest = record.get("metadata_sha256")
            published[key] = digest if isinstance(digest, str) else None
    return {k: published.get(k) for k, r in last.items() if r.get("event") == "deleted"}


def plan_migration(store: Store, registry: Registry) -> dict[str, ModelPlan]:
    history = read_records(store, TRAINING_HISTORY_KEY).records
    known = _known_digests(registry, history)
    plans: dict[str, ModelPlan] = defaultdict(ModelPlan)
    indexes: dict[str, VersionIndex] = {}

    def index_of(model: str) -> VersionIndex:
        if model not in indexes:
            indexes[model] = read_index(store, model).index
        return indexes[model]

    folders = scan(store)
    held = {(f.model, f.version) for f in folders}
    for folder in folders:
        plan, index = plans[folder.model], index_of(folder.model)
        if not folder.complete:
            plan.rows.append((folder.version, "incomplete", "no metadata.json; not recorded"))
            continue
        try:
            blob = store.get(metadata_key(folder.model, folder.version))
        except KeyNotFound:
            plan.rows.append((folder.version, "incomplete", "metadata.json vanished"))
            continue
        assert blob is not None
        digest = sha256_hex(blob.data)
        recorded = index.versions.get(folder.version)
        expected = known.get((folder.model, folder.version), set())
        if recorded is not None and recorded.deleted_at is not None:
            detail = "recorded as deleted, but its folder remains: run `delete` again"
            plan.rows.append((folder.version, "deleted", detail))
        elif recorded is not None and recorded.metadata_sha256 == digest:
            plan.rows.append((folder.version, "recorded before", digest[:12]))
            if RANGES_FILE not in recorded.sidecars:
                _plan_ranges(store, plan, folder.version, blob.data)
        elif recorded is not None or (expected and digest not in expected):
            other = str(recorded.metadata_sha256 if recorded is not None else min(expected))
            detail = f"metadata.json is {digest[:12]}…, {other[:12]}… was recorded"
            plan.rows.append((folder.version, "MISMATCH", detail))
        else:
            plan.record[folder.version] = digest
            plan.rows.append((folder.version, "recorded", digest[:12]))
            _plan_ranges(store, plan, folder.version, blob.data)
    for (model, version), published_digest in _deleted_in_history(history).items():
        if not isinstance(model, str) or (model, version) in held:
            continue
        try:
            number = str(Version.parse(str(version)))
            index = index_of(model)
        except ValueError:
            continue  # a record for something this store could not hold
        if number not in index.versions:
            plans[model].deleted[number] = published_digest
            plans[model].rows.append((number, "recorded deleted", "from the training history"))
    return dict(plans)


def _plan_ranges(store: Store, plan: ModelPlan, version: str, metadata: bytes) -> None:
    """Plan the feature ranges of a version with a baseline whose metadata holds none."""
    try:
        meta = BundleMetadata.from_json(metadata)
        if meta.ranges is not None or not has_baseline(store, meta):
            return
    except TickerserveError as exc:
        plan.rows.append((version, "no ranges", exc.message))
        return
    plan.ranges.append(meta)


def _write_ranges(store: Store, plan: ModelPlan) -> None:
    """Ranges from each planned version's baseline, beside it (its digest recorded first)."""
    for meta in plan.ranges:
        try:
            stored = load_baseline(store, meta)
            ranges = None if stored is None else stored.baseline.feature_ranges()
            if ranges is None:
                plan.rows.append((meta.version, "no ranges", "its baseline has no features"))
                continue
            write_ranges(store, meta, ranges)
        except (TickerserveError, BaselineError) as exc:
            why = exc.message if isinstance(exc, TickerserveError) else str(exc)
            plan.rows.append((meta.version, "no ranges", f"baseline unusable: {why}"))
            continue
        how = "estimated from its baseline's CDFs" if ranges.estimated else "from its baseline"
        plan.rows.append((meta.version, "ranges", f"{len(ranges.features)} features, {how}"))


def _stored_schema(store: Store, key: str) -> int | None:
    try:
        blob = store.get(key)
    except KeyNotFound:
        return None
    assert blob is not None
    schema = json.loads(blob.data).get("schema")
    return schema if isinstance(schema, int) else None


def migrate_command(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change, write nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Record the metadata digest of every version a store holds in its model's digest index,
    and rewrite the registry at the current schema.

    Run it once after upgrading (deploy the new function first). A version whose stored
    metadata.json differs from the digest the registry or the history recorded is reported
    and not recorded (exit code 1).
    """
    t = target(ctx)
    store = t.store
    registry = read_registry(store, t.registry_key).registry
    schema = _stored_schema(store, t.registry_key)
    plans = plan_migration(store, registry)
    if not dry_run:
        for model, plan in plans.items():
            if plan.record or plan.deleted:
                update_index(store, model, partial(_apply, plan=plan))
            _write_ranges(store, plan)
    else:
        for plan in plans.values():
            plan.rows += [(m.version, "ranges", "would be written") for m in plan.ranges]
    rewrite = schema is not None and schema != SCHEMA
    revision = registry.revision
    if rewrite and not dry_run:
        revision = update_registry(store, t.registry_key, lambda registry: None).revision
    mismatched = sum(row[1] == "MISMATCH" for plan in plans.values() for row in plan.rows)
    report = {
        "dry_run": dry_run,
        "models": {
            model: [{"version": v, "status": s, "detail": d} for v, s, d in plan.rows]
            for model, plan in sorted(plans.items())
        },
        "recorded": sum(len(p.record) + len(p.deleted) for p in plans.values()),
        "ranges": sum(row[1] == "ranges" for plan in plans.values() for row in plan.rows),
        "mismatched": mismatched,
        "registry": {"schema_was": schema, "rewritten": rewrite, "revision": revision},
    }
    if json_output:
        print_json(report)
    else:
        _print(report, plans, store.describe())
    if mismatched:
        raise Failed(
            f"{mismatched} version(s) differ from the metadata digest recorded for them and "
            "were not recorded; pinning them is refused (inspect with `tickerserve show`, then "
            "delete or re-publish)"
        )


def _apply(index: VersionIndex, *, plan: ModelPlan) -> None:
    for version, digest in plan.record.items():
        if version not in index.versions:  # a publish since planning recorded it itself
            index.record(version, digest)
    for version, deleted_digest in plan.deleted.items():
        index.mark_deleted(version, deleted_digest)


def _print(report: dict[str, Any], plans: dict[str, ModelPlan], where: str) -> None:
    rows = [[m, v, s, d] for m, p in sorted(plans.items()) for v, s, d in p.rows]
    if rows:
        typer.echo(table(["MODEL", "VERSION", "STATUS", "DETAIL"], rows))
    verb = "would record" if report["dry_run"] else "recorded"
    typer.echo(f"{where}: {verb} {report['recorded']} version digest(s)")
    if report["ranges"]:
        verb = "would give" if report["dry_run"] else "gave"
        typer.echo(f"{verb} {report['ranges']} version(s) feature ranges from their baseline")
    registry = report["registry"]
    if registry["schema_was"] is None:
        note("note: no registry yet; nothing to rewrite")
    elif registry["rewritten"]:
        verb = "would rewrite" if report["dry_run"] else "rewrote"
        typer.echo(
            f"{verb} the registry from schema {registry['schema_was']} to {SCHEMA}"
            + ("" if report["dry_run"] else f" (revision {registry['revision']})")
        )
    else:
        typer.echo(f"registry already at schema {SCHEMA}")
