"""Carry out an import plan: convert every candidate (a failure skips it, with the reason),
keep only what is new, write the new versions, then one registry update, then the histories.

- Conversion comes first, for everything: a model is checked before anything of it is
  written, and a model that cannot be converted is skipped while the rest goes on.
- New means a content digest (``publishing.content``) no version of the model has yet: a
  re-import of the same tree publishes nothing and leaves the registry alone.
- Versions follow each model's candidates in time order (the next free patch version), or
  are the seed's own (seed 004); an own version the store already holds with other content
  refuses the whole import unless ``skip_existing`` (then it is left out).
- Monitoring baselines (``--reference``, seed 003's baseline files) travel in the new
  version's folder (``baseline.json``, not part of the content digest); a version the store
  already held without one gets it as a sidecar, with its digest in the model's index.
- Aliases move only for models that got a new version (or lack the alias): a re-import never
  moves an alias someone promoted by hand. A route or shadow whose model ends up without the
  alias it needs is dropped with a note rather than left pointing at nothing.
- Routes are created only where the ticker (x signal x timeframe) has none, or already points
  at the imported model; one that points elsewhere (or a fallback of another model) is kept
  and listed, and moves only with ``take_routes`` (``publishing.release.decide_routes``,
  judged again inside the registry's compare-and-swap). Shadows are turned on only for models
  this import brought something new for, so a re-run never undoes a hand-made change.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tickerserve.baselines.baseline import Baseline
from tickerserve.baselines.persistence import attach_to_bundle, has_baseline, write_sidecar
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.plan import Candidate, ImportOptions, ImportPlan, Skipped
from tickerserve.cli.progress import NO_PROGRESS, Tracker
from tickerserve.cli.reference import fit_from_table
from tickerserve.errors import Conflict, TickerserveError
from tickerserve.layout import BASELINE_FILE, TRAINING_HISTORY_KEY, Version, next_version
from tickerserve.publishing.content import content_digest, stored_versions
from tickerserve.publishing.conversion.recipe import Converted
from tickerserve.publishing.release import (
    AliasMove,
    Incomplete,
    RouteChange,
    RouteDecision,
    Written,
    apply_import,
    decide_routes,
    training_record,
    write_version,
)
from tickerserve.storage.bundle import Bundle, make_bundle, read_metadata
from tickerserve.storage.history import (
    HISTORY_KEYS,
    append_records,
    encode_records,
    read_records,
    versions_named,
)
from tickerserve.storage.registry import Registry, ShadowSettings, read_registry
from tickerserve.storage.store import Store

PUBLISHED, WOULD_PUBLISH, UNCHANGED, SAME, EXISTS = (
    "published", "would publish", "unchanged", "same as another", "exists",
)  # fmt: skip


@dataclass
class Outcome:
    """What became of one converted candidate."""

    candidate: Candidate
    converted: Converted
    digest: str
    status: str = WOULD_PUBLISH
    version: str | None = None
    metadata_sha256: str | None = None
    aliases: list[str] = field(default_factory=list)  # aliases this import points at it
    baseline: Baseline | None = None  # the monitoring baseline this import brings for it
    # where it went: "version" (in the new folder), "sidecar" (beside a version the store
    # held already without one), "kept" (that version has one: left alone)
    baseline_stored: str | None = None


@dataclass
class ImportResult:
    """The plan, what became of each candidate, and the registry revision afterwards."""

    plan: ImportPlan
    outcomes: list[Outcome]
    routes: list[RouteDecision]  # what became of every route the import asked for
    moves: list[AliasMove]
    revision: int
    dry_run: bool
    history_lines: dict[str, int]
    # Set when everything is live but a history append failed: the CLI reports, then raises.
    incomplete: Incomplete | None = None
    kept_fallbacks: dict[str, str] = field(default_factory=dict)  # class -> its other model

    @property
    def skipped(self) -> list[Skipped]:
        return self.plan.skipped


def run_import(
    store: Store,
    registry_key: str,
    plan: ImportPlan,
    options: ImportOptions,
    *,
    dry_run: bool = False,
    jobs: int = 4,
    replace_seed: bool = False,
    track: Tracker = NO_PROGRESS,
) -> ImportResult:
    """Convert, decide, write, update the registry once and append the histories. With
    ``replace_seed`` a seed project's own registry at ``registry_key`` is replaced (its copy
    kept by the caller) rather than refused. ``track`` shows the conversions (the slow part:
    unpickling, converting, checking probe rows)."""
    converting = track.step(f"converting {len(plan.candidates)} models", len(plan.candidates))
    outcomes = []
    for candidate in plan.candidates:
        converting.describe(f"converting {candidate.source}")
        outcome = _convert(candidate, plan, options)
        if outcome is not None:
            outcomes.append(outcome)
        converting.advance()
    converting.describe(f"converted {len(plan.candidates)} models")
    converting.done()
    snapshot = read_registry(store, registry_key, replace_seed=replace_seed)
    registry = snapshot.registry
    history = read_records(store, TRAINING_HISTORY_KEY).records
    by_model: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_model[outcome.candidate.model].append(outcome)
    for model, items in by_model.items():
        items.sort(key=lambda o: o.candidate.order)
        _decide(store, model, items, versions_named(history, model), options, plan)
    written: dict[int, Written] = {}
    if not dry_run:
        written = _write(store, by_model, history, jobs)
        for outcome in outcomes:
            w = written.get(id(outcome))
            if w is not None:
                outcome.status, outcome.version = PUBLISHED, w.version
                outcome.metadata_sha256 = w.metadata_sha256
        _follow_duplicates(by_model)
        _store_baselines(store, outcomes)
    moves = _moves(by_model, registry)
    routes = _routes(plan, by_model, registry, options.alias)
    decisions = decide_routes(registry, routes, take=options.take_routes)
    shadows = _shadows(plan, by_model, registry)
    fallbacks = {c: m for c, m in plan.fallbacks.items() if registry.fallbacks.get(c) != m}
    kept_fallbacks = {}
    if not options.take_routes:
        kept_fallbacks = {c: registry.fallbacks[c] for c in fallbacks if c in registry.fallbacks}
        fallbacks = {c: m for c, m in fallbacks.items() if c not in kept_fallbacks}
    revision = registry.revision
    new_models = [m for m in by_model if m not in registry.models and not dry_run]
    writes = any(d.writes for d in decisions)
    if not dry_run and (written or moves or writes or fallbacks or shadows or new_models):
        decided: list[RouteDecision] = []
        try:
            revision = apply_import(
                store,
                registry_key,
                models=list(by_model),
                moves=moves,
                routes=routes,
                fallbacks=fallbacks,
                shadows=shadows,
                take_routes=options.take_routes,
                decided=decided,
                replace_seed=replace_seed,
            ).revision
            decisions = decided
        except TickerserveError as exc:
            raise Incomplete(
                f"wrote and recorded {len(written)} version(s) but the registry update failed, "
                f"so no route, fallback, shadow or alias moved: {exc.message}; run import-seed "
                "again"
            ) from exc
    lines = dict.fromkeys(HISTORY_KEYS, 0)
    incomplete = None
    if not dry_run:
        # After the registry: the records say which aliases moved, so only once they have.
        records = [
            {**o.candidate.record, **training_record(written[id(o)], o.aliases)}
            for o in outcomes
            if id(o) in written
        ]
        try:
            lines = _append_histories(store, records, plan)
        except TickerserveError as exc:
            incomplete = Incomplete(
                f"imported {len(written)} version(s); routes and aliases are live (registry "
                f"revision {revision}), but the histories were not updated: {exc.message}"
            )
    return ImportResult(
        plan, outcomes, decisions, moves, revision, dry_run, lines, incomplete, kept_fallbacks
    )


def _convert(candidate: Candidate, plan: ImportPlan, options: ImportOptions) -> Outcome | None:
    try:
        converted = candidate.convert()
        meta = converted.bundle.metadata
        if candidate.asset_class is not None:
            meta.asset_class = candidate.asset_class
        meta.metrics = {**meta.metrics, **candidate.metrics}
        meta.training = {**meta.training, **candidate.training}
        meta.source = {**meta.source, "imported_from": candidate.source, **candidate.origin}
        bundle = _with_baseline(make_bundle(meta, converted.bundle.files), candidate, options)
    except TickerserveError as exc:
        plan.skipped.append(Skipped(candidate.source, exc.message))
        return None
    converted = dataclasses.replace(converted, bundle=bundle)
    outcome = Outcome(candidate, converted, content_digest(bundle.metadata))
    if BASELINE_FILE in bundle.files:
        outcome.baseline = Baseline.from_json(bundle.files[BASELINE_FILE])
    return outcome


def _with_baseline(bundle: Bundle, candidate: Candidate, options: ImportOptions) -> Bundle:
    """The bundle with its monitoring baseline: fitted from ``--reference`` (scored by the
    converted version itself), combined with the seed's own (003) where it has one."""
    fitted = None
    if options.reference is not None:
        fitted = fit_from_table(
            bundle,
            options.reference,
            bins=options.bins,
            range_quantiles=options.range_quantiles,
        )
    baseline = fitted if candidate.baseline is None else candidate.baseline(fitted)
    return bundle if baseline is None else attach_to_bundle(bundle, baseline)


def _decide(
    store: Store,
    model: str,
    items: list[Outcome],
    used_before: set[str],
    options: ImportOptions,
    plan: ImportPlan,
) -> None:
    """Mark each outcome unchanged / same as another / exists, or give it its new version."""
    taken, stored = stored_versions(store, model)
    known = {s.content: s for s in stored}
    seen: dict[str, Outcome] = {}
    claimed = set(taken) | used_before
    conflicts: list[str] = []
    for outcome in items:
        existing = known.get(outcome.digest)
        if existing is not None:
            outcome.status, outcome.version = UNCHANGED, existing.version
            outcome.metadata_sha256 = existing.metadata_sha256
        elif outcome.digest in seen:
            first = seen[outcome.digest]
            outcome.status, outcome.version = SAME, first.version
        elif outcome.candidate.version is not None:
            wanted = str(Version.parse(outcome.candidate.version))
            if wanted in claimed:
                if not options.skip_existing:
                    conflicts.append(f"{model} {wanted} ({outcome.candidate.source})")
                outcome.status, outcome.version = EXISTS, wanted
            else:
                outcome.version = wanted
                claimed.add(wanted)
        else:
            outcome.version = next_version(sorted(claimed, key=Version.parse))
            claimed.add(outcome.version)
        seen.setdefault(outcome.digest, outcome)
    if conflicts:
        raise Refused(
            f"already in the store with other content: {', '.join(conflicts)}; versions are "
            "immutable: give --skip-existing to leave those out"
        )
    for outcome in items:
        if outcome.status == EXISTS:
            plan.notes.append(
                f"left out {model} {outcome.version} ({outcome.candidate.source}): "
                "that version already exists in the store (--skip-existing)"
            )


def _write(
    store: Store, by_model: dict[str, list[Outcome]], history: list[dict[str, Any]], jobs: int
) -> dict[int, Written]:
    """Write every new version; models in parallel, one model's versions in time order."""

    def write_model(model: str) -> list[tuple[int, Written]]:
        used = versions_named(history, model)
        out = []
        for outcome in by_model[model]:
            if outcome.status != WOULD_PUBLISH:
                continue
            explicit = outcome.candidate.version is not None
            w = write_version(
                store,
                outcome.converted.bundle,
                model=model,
                version=outcome.version if explicit else None,
                used_before=used,
            )
            out.append((id(outcome), w))
        return out

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(write_model, model) for model in by_model]
    # Raise the first failure only after every upload finished: the registry stays untouched.
    return {key: w for future in futures for key, w in future.result()}


def _follow_duplicates(by_model: dict[str, list[Outcome]]) -> None:
    """Candidates with the same content as an earlier one take its (now written) version."""
    for items in by_model.values():
        first: dict[str, Outcome] = {}
        for outcome in items:
            if outcome.status == SAME:
                original = first[outcome.digest]
                outcome.version = original.version
                outcome.metadata_sha256 = original.metadata_sha256
            first.setdefault(outcome.digest, outcome)


def _store_baselines(store: Store, outcomes: list[Outcome]) -> None:
    """Say where each brought baseline is; a version the store held already (same content)
    that has no baseline gets this one as a sidecar, its digest in the model's index."""
    for outcome in outcomes:
        if outcome.baseline is None or outcome.version is None:
            continue
        if outcome.status in (PUBLISHED, SAME):
            outcome.baseline_stored = "version"
        elif outcome.status == UNCHANGED:
            model = outcome.candidate.model
            meta, _ = read_metadata(
                store, model, outcome.version, expected_sha256=outcome.metadata_sha256
            )
            if has_baseline(store, meta):
                outcome.baseline_stored = "kept"
                continue
            try:
                write_sidecar(store, meta, outcome.baseline)
            except Conflict:  # another process attached one meanwhile: theirs stays
                outcome.baseline_stored = "kept"
                continue
            outcome.baseline_stored = "sidecar"


def _moves(by_model: dict[str, list[Outcome]], registry: Registry) -> list[AliasMove]:
    """The alias moves of an import, per model and alias in the candidates' time order.

    Every candidate that carries an alias takes it in turn (seed 002's dated files: the older
    ones enter the alias history in date order, so a rollback goes to the previous date). An
    alias the model has already moves only when the import brought a new version, and only
    past the version it points at (to the last candidate when that is none of them), so a
    re-run, or an alias promoted by hand, is left alone.
    """
    moves: list[AliasMove] = []
    for model, items in by_model.items():
        entry = registry.models.get(model)
        fresh = any(o.status in (PUBLISHED, WOULD_PUBLISH) for o in items)
        for alias in dict.fromkeys(a for o in items for a in o.candidate.aliases):
            chain: list[Outcome] = []
            for o in items:
                usable = o.status != EXISTS and o.version is not None
                repeated = bool(chain) and chain[-1].version == o.version
                if usable and alias in o.candidate.aliases and not repeated:
                    chain.append(o)
            current = entry.aliases.get(alias) if entry is not None else None
            if current is not None:
                if not fresh:
                    continue
                held = [i for i, o in enumerate(chain) if o.version == current.version]
                chain = chain[held[-1] + 1 :] if held else chain[-1:]
            for outcome in chain:
                assert outcome.version is not None
                outcome.aliases.append(alias)
                moves.append(
                    AliasMove(model, alias, outcome.version, outcome.metadata_sha256 or "")
                )
    return moves


def _has_alias(
    model: str, alias: str, by_model: dict[str, list[Outcome]], registry: Registry
) -> bool:
    entry = registry.models.get(model)
    if entry is not None and alias in entry.aliases:
        return True
    return any(alias in o.candidate.aliases and o.status != EXISTS for o in by_model.get(model, []))


def _routes(
    plan: ImportPlan, by_model: dict[str, list[Outcome]], registry: Registry, alias: str
) -> list[RouteChange]:
    routes = []
    for route in plan.routes:
        if not _has_alias(route.model, alias, by_model, registry):
            where = f" for {route.timeframe}" if route.timeframe else ""
            plan.notes.append(
                f"not routed {route.ticker}{where}: {route.model} has no {alias} version "
                f"(the version that would have been {alias} was skipped)"
            )
            continue
        routes.append(route)
    return routes


def _shadows(
    plan: ImportPlan, by_model: dict[str, list[Outcome]], registry: Registry
) -> dict[str, ShadowSettings]:
    shadows = {}
    for model, shadow in plan.shadows.items():
        if not _has_alias(model, shadow.alias, by_model, registry):
            plan.notes.append(f"shadow not turned on for {model}: it has no {shadow.alias}")
            continue
        entry = registry.models.get(model)
        fresh = any(o.status in (PUBLISHED, WOULD_PUBLISH) for o in by_model.get(model, []))
        # Only with something new: a re-run never turns on a shadow someone turned off.
        if entry is None or (fresh and entry.shadow != shadow):
            shadows[model] = shadow
    return shadows


def _append_histories(
    store: Store, records: list[dict[str, Any]], plan: ImportPlan
) -> dict[str, int]:
    """Training records of this import, plus the seed's history lines not imported before,
    in time order (a seed's lines are older than this import's records)."""
    by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in HISTORY_KEYS}
    added = dict.fromkeys(HISTORY_KEYS, 0)
    for kind, lines in plan.histories.items():
        existing = {encode_records([r]) for r in read_records(store, HISTORY_KEYS[kind]).records}
        new = [r for r in lines if encode_records([r]) not in existing]
        by_kind[kind] += new
        added[kind] = len(new)
    by_kind["training"] += records
    for kind, items in by_kind.items():
        append_records(store, HISTORY_KEYS[kind], sorted(items, key=_time_of))
    return added


def _time_of(record: dict[str, Any]) -> str:
    """A record's time as sortable text (seconds, no zone); records without one go last."""
    for key in ("published_at", "timestamp", "deleted_at", "monitoring_date", "training_date"):
        value = record.get(key)
        if isinstance(value, str) and value:
            return value[:19].replace(" ", "T")
    return "~"
