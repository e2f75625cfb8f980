"""Publishing: write a bundle as a new immutable version, then move aliases and routes.

Order: version folder (create-only, ``metadata.json`` last) -> its digest in the model's
digest index -> one registry compare-and-swap -> training history record. The registry is
updated only after the folder is complete and recorded, so an alias never points at an
incomplete or unrecorded version and an interrupted upload leaves the registry untouched; the
history line (which names the aliases moved) is written only once the registry update
succeeded, so it never claims a move that did not happen.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tickerserve.baselines.persistence import with_identity as baseline_with_identity
from tickerserve.contract import DEFAULT_SIGNAL
from tickerserve.errors import Conflict, TickerserveError
from tickerserve.layout import (
    TRAINING_HISTORY_KEY,
    Bump,
    Version,
    next_version,
    normalize_ticker,
    validate_alias,
    validate_model_name,
    validate_signal,
    validate_timeframe,
)
from tickerserve.publishing.version_folders import versions_of
from tickerserve.storage.bundle import Bundle, make_bundle, write_bundle
from tickerserve.storage.history import append_records, read_records, versions_named
from tickerserve.storage.registry import (
    ModelEntry,
    Registry,
    ShadowSettings,
    update_registry,
    utc_now,
    validate_asset_class,
)
from tickerserve.storage.store import PreconditionFailed, Store
from tickerserve.storage.version_index import read_index, record_versions


class Incomplete(TickerserveError):
    """Part of a publish happened and part did not; the message says exactly which. Raised
    only once something was written (a failure before that is the original error)."""

    code = "incomplete"

    def __init__(self, message: str, *, published: Published | None = None) -> None:
        super().__init__(message)
        self.published = published  # set when the version and its aliases are live


def publish_bundle(
    store: Store,
    bundle: Bundle,
    *,
    registry_key: str,
    aliases: tuple[str, ...] = ("production",),
    routes: Mapping[str, str] | None = None,
) -> Registry:
    """Write the version folder (create-only), then in one registry CAS point ``aliases`` at it
    and route ``routes`` (ticker -> asset class) to the model. Returns the new registry."""
    digest = write_bundle(store, bundle)
    meta = bundle.metadata
    record_versions(store, meta.model, {meta.version: digest})

    def mutate(registry: Registry) -> None:
        for alias in aliases:
            registry.set_alias(meta.model, alias, meta.version, digest)
        for ticker, asset_class in (routes or {}).items():
            registry.set_route(ticker, meta.model, asset_class)
        registry.models.setdefault(meta.model, ModelEntry())

    return update_registry(store, registry_key, mutate)


@dataclass(frozen=True)
class Written:
    """A version folder that now exists in the store."""

    bundle: Bundle
    metadata_sha256: str

    @property
    def model(self) -> str:
        return self.bundle.metadata.model

    @property
    def version(self) -> str:
        return self.bundle.metadata.version


@dataclass(frozen=True)
class Published:
    """The outcome of ``publish``: what was written and the registry revision that points at it."""

    written: Written
    aliases: tuple[str, ...]
    revision: int
    seconds: float
    routes: list[RouteDecision] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        meta = self.written.bundle.metadata
        return {
            "model": meta.model,
            "version": meta.version,
            "metadata_sha256": self.written.metadata_sha256,
            "aliases": list(self.aliases),
            "revision": self.revision,
            "classes": meta.classes,
            "features": len(meta.used_features),
            "artifacts": {
                n: {"size": a.size, "sha256": a.sha256} for n, a in meta.artifacts.items()
            },
            "metrics": meta.metrics,
            "route_changes": [d.to_dict() for d in self.routes],
            "seconds": round(self.seconds, 3),
        }


def with_identity(bundle: Bundle, model: str, version: str) -> Bundle:
    """The same artifacts under another model name / version (metadata rebuilt and re-hashed)."""
    metadata = dataclasses.replace(
        bundle.metadata,
        model=validate_model_name(model),
        version=str(Version.parse(version)),
        created_at=bundle.metadata.created_at or utc_now(),
    )
    # A baseline fitted before the version number was known names the final one too.
    return make_bundle(metadata, baseline_with_identity(bundle.files, model, metadata.version))


def write_version(
    store: Store,
    bundle: Bundle,
    *,
    model: str,
    version: str | None = None,
    bump: Bump = "patch",
    attempts: int = 5,
    used_before: Collection[str] | None = None,
) -> Written:
    """Write ``bundle`` as ``model`` at ``version`` or, when None, at the next free version.

    Every existing folder counts as taken, incomplete ones included, and so does every version
    the training history names (``used_before``; read from the store when None): a deleted
    version's number is never handed out again, because warm runtimes cache by (model,
    version). An explicit version that exists or existed is refused (``Conflict``); an
    automatic one that a concurrent publisher claimed first is bumped again.
    """
    validate_model_name(model)
    if used_before is None:
        used_before = versions_named(read_records(store, TRAINING_HISTORY_KEY).records, model)
    # The digest index keeps every version ever recorded, deleted ones included.
    used_before = {*used_before, *read_index(store, model).index.versions}
    folders = versions_of(store, model)
    taken = [f.version for f in folders] + sorted(used_before)
    if version is not None:
        wanted = str(Version.parse(version))
        existing = next((f for f in folders if f.version == wanted), None)
        if existing is not None:
            if existing.complete:
                raise Conflict(f"{model} {wanted} already exists; versions are immutable")
            raise Conflict(
                f"{model} {wanted} exists as an incomplete version folder (no metadata.json); "
                "delete it or pick another version"
            )
        if wanted in used_before:
            raise Conflict(
                f"{model} {wanted} was used before (see the training history); "
                "versions are never reused"
            )
        candidate = with_identity(bundle, model, wanted)
        return _recorded(store, Written(candidate, write_bundle(store, candidate)))
    for _ in range(attempts):
        candidate = with_identity(bundle, model, next_version(taken, bump))
        try:
            written = Written(candidate, write_bundle(store, candidate))
        except PreconditionFailed:
            taken.append(candidate.metadata.version)  # a concurrent publisher got there first
            continue
        return _recorded(store, written)
    raise Conflict(f"{model}: lost {attempts} races for a new version number; try again")


def _recorded(store: Store, written: Written) -> Written:
    """Record a version just written in its model's digest index (before any alias moves, so
    everything an alias can name, and every version a client may pin, has its digest)."""
    try:
        record_versions(store, written.model, {written.version: written.metadata_sha256})
    except TickerserveError as exc:
        raise Incomplete(
            f"wrote {written.model} {written.version} (its folder is complete) but could not "
            f"record its digest: {exc.message}; nothing serves it and no alias moved: record "
            f"it with `tickerserve migrate`, or remove it with `tickerserve delete "
            f"{written.model} {written.version}`"
        ) from exc
    return written


def training_record(written: Written, aliases: Sequence[str]) -> dict[str, Any]:
    """The ``training_history.jsonl`` line for a published version."""
    meta = written.bundle.metadata
    return {
        "event": "published",
        "model": meta.model,
        "version": meta.version,
        "metadata_sha256": written.metadata_sha256,
        "model_type": meta.model_type,
        "created_at": meta.created_at,
        "published_at": utc_now(),
        "metrics": meta.metrics,
        "training": meta.training,
        "source": meta.source,
        "aliases": list(aliases),
    }


@dataclass(frozen=True)
class RouteChange:
    """Route ``ticker`` (of ``asset_class``) to ``model`` on ``signal`` (None: the ticker's
    default signal): its default route, or only its route for ``timeframe``."""

    ticker: str
    asset_class: str
    model: str
    timeframe: str | None = None
    signal: str | None = None

    def applied(self, registry: Registry) -> bool:
        """True when ``registry`` already routes it so."""
        current = registry.tickers.get(self.ticker)
        if current is None or current.asset_class != self.asset_class:
            return False
        return current.target(self.signal or current.default_signal, self.timeframe) == self.model


ADD, SAME, KEEP, MOVE = "add", "same", "keep", "move"


@dataclass(frozen=True)
class RouteDecision:
    """What a route change does to a registry: ``add`` (nothing answered there), ``same``
    (it already points at the model), ``keep`` (it points elsewhere and stays: moving it takes
    ``--take-routes``) or ``move`` (it points elsewhere and moves, with ``--take-routes``).
    ``old`` is what answers there now (the asset class's fallback when ``via_fallback``)."""

    change: RouteChange
    signal: str
    old: str | None
    via_fallback: bool
    action: str

    @property
    def writes(self) -> bool:
        return self.action in (ADD, MOVE)

    @property
    def where(self) -> str:
        """``AAPL direction d1``: the route's key as the summaries print it."""
        return " ".join(x for x in (self.change.ticker, self.signal, self.change.timeframe) if x)

    def line(self, *, dry_run: bool = False) -> str:
        """One line of a summary: ``old → new`` for a change, or why a route stays."""
        old = self.old or "(none)"
        if self.via_fallback:
            old += " (fallback)"
        if self.action == KEEP:
            return f"{self.where} keeps {old}; --take-routes moves it to {self.change.model}"
        verb = "would route" if dry_run else "route"
        return f"{verb} {self.where}: {old} → {self.change.model}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticker": self.change.ticker,
            "asset_class": self.change.asset_class,
            "signal": self.signal,
            "timeframe": self.change.timeframe,
            "model": self.change.model,
            "old": self.old,
            "via_fallback": self.via_fallback,
            "action": self.action,
        }


def decide_routes(
    registry: Registry, changes: Sequence[RouteChange], *, take: bool = False
) -> list[RouteDecision]:
    """What each change would do to ``registry``. A route is created only where the ticker
    (x signal x timeframe) has none, or already points at the model; a route that points
    elsewhere (a fallback answering on the ticker's default signal counts) is kept unless
    ``take``. Changes are judged in order, each seeing the ones before it."""
    scratch = copy.deepcopy(registry)
    decisions = []
    for change in changes:
        entry = scratch.tickers.get(change.ticker)
        if entry is not None:
            default = entry.default_signal
        elif change.signal is None or change.asset_class in scratch.fallbacks:
            default = DEFAULT_SIGNAL  # what set_route makes a new ticker's default
        else:
            default = change.signal
        signal = change.signal or default
        old = entry.target(signal, change.timeframe) if entry is not None else None
        via_fallback = False
        if old is None and change.timeframe is None and signal == default:
            cls = entry.asset_class if entry is not None else change.asset_class
            old = scratch.fallbacks.get(cls)
            via_fallback = old is not None
        if old is None or (via_fallback and old == change.model):
            action = ADD  # nothing answered there, or the fallback already was this model
        elif old == change.model:
            action = SAME
        else:
            action = MOVE if take else KEEP
        decision = RouteDecision(change, signal, old, via_fallback, action)
        if decision.writes:
            apply_route(scratch, decision)
        decisions.append(decision)
    return decisions


def apply_route(registry: Registry, decision: RouteDecision) -> None:
    """Write an ``add`` or ``move`` decision; an existing ticker keeps its asset class unless
    the route moves (``--take-routes``)."""
    change = decision.change
    entry = registry.tickers.get(change.ticker)
    keep_class = entry is not None and decision.action == ADD
    asset_class = entry.asset_class if keep_class and entry is not None else change.asset_class
    registry.set_route(change.ticker, change.model, asset_class, change.timeframe, decision.signal)


@dataclass(frozen=True)
class AliasMove:
    """Point ``alias`` of ``model`` at ``version`` (whose metadata.json has that sha256)."""

    model: str
    alias: str
    version: str
    metadata_sha256: str


def apply_publication(
    store: Store,
    registry_key: str,
    written: Sequence[Written],
    *,
    aliases: Sequence[str] = (),
    routes: Sequence[RouteChange] = (),
    fallbacks: Mapping[str, str] | None = None,
    take_routes: bool = False,
    decided: list[RouteDecision] | None = None,
) -> Registry:
    """One registry compare-and-swap: register the written models, point ``aliases`` at them,
    add ``routes`` (never moving one that points elsewhere unless ``take_routes``; see
    ``decide_routes``) and ``fallbacks`` (asset class -> model). ``decided`` receives the
    route decisions of the write that won."""

    def mutate(registry: Registry) -> None:
        for w in written:
            registry.models.setdefault(w.model, ModelEntry())
            for alias in aliases:
                registry.set_alias(w.model, alias, w.version, w.metadata_sha256)
            if aliases:
                refuse_deleted(store, w.model, w.version)
        _route(registry, routes, take_routes, decided)
        for asset_class, model in (fallbacks or {}).items():
            registry.set_fallback(asset_class, model)

    return update_registry(store, registry_key, mutate)


def _route(
    registry: Registry,
    routes: Sequence[RouteChange],
    take: bool,
    decided: list[RouteDecision] | None,
) -> None:
    """Decide the routes against the registry being written (inside its compare-and-swap, so
    a route someone moved meanwhile is judged as it is now) and write the ones that change."""
    decisions = decide_routes(registry, routes, take=take)
    for decision in decisions:
        if decision.writes:
            apply_route(registry, decision)
    if decided is not None:
        decided[:] = decisions


def apply_import(
    store: Store,
    registry_key: str,
    *,
    models: Sequence[str] = (),
    moves: Sequence[AliasMove] = (),
    routes: Sequence[RouteChange] = (),
    fallbacks: Mapping[str, str] | None = None,
    shadows: Mapping[str, ShadowSettings] | None = None,
    take_routes: bool = False,
    decided: list[RouteDecision] | None = None,
    replace_seed: bool = False,
) -> Registry:
    """One registry compare-and-swap for an import: register ``models``, move aliases (to
    new or existing versions), add routes (see ``decide_routes``) and fallbacks (one that
    names another model stays unless ``take_routes``), turn shadows on. With
    ``replace_seed`` a seed project's own registry at the key is replaced."""

    def mutate(registry: Registry) -> None:
        for model in models:
            registry.models.setdefault(model, ModelEntry())
        for move in moves:
            registry.set_alias(move.model, move.alias, move.version, move.metadata_sha256)
            refuse_deleted(store, move.model, move.version)
        _route(registry, routes, take_routes, decided)
        for asset_class, model in (fallbacks or {}).items():
            if take_routes or registry.fallbacks.get(asset_class) in (None, model):
                registry.set_fallback(asset_class, model)
        for model, shadow in (shadows or {}).items():
            registry.set_shadow(model, shadow)

    return update_registry(store, registry_key, mutate, replace_seed=replace_seed)


def refuse_deleted(store: Store, model: str, version: str) -> None:
    """Inside a registry compare-and-swap that points an alias at ``version``: refuse when a
    delete has marked it deleted in the digest index since it was verified. The index is read
    after the registry, and a delete marks the index before it clears its registry mark, so
    either this write sees the delete's mark (``set_alias`` refuses) or this read sees the
    index's (or the delete sees the alias and refuses itself)."""
    if read_index(store, model).index.is_deleted(version):
        raise Conflict(
            f"{model} {version} was deleted; versions are never reused", code="version_deleted"
        )


def check_targets(
    aliases: Sequence[str], routes: Sequence[RouteChange] = (), models: Sequence[str] = ()
) -> None:
    """Validate names before anything is written; raise ``ValueError`` on the first bad one."""
    for alias in aliases:
        validate_alias(alias)
    for model in models:
        validate_model_name(model)
    for route in routes:
        normalize_ticker(route.ticker)
        validate_asset_class(route.asset_class)
        validate_model_name(route.model)
        if route.timeframe is not None:
            validate_timeframe(route.timeframe)
        if route.signal is not None:
            validate_signal(route.signal)


def publish(
    store: Store,
    bundle: Bundle,
    *,
    registry_key: str,
    model: str,
    version: str | None = None,
    bump: Bump = "patch",
    aliases: Sequence[str] = (),
    routes: Sequence[RouteChange] = (),
    take_routes: bool = False,
) -> Published:
    """Publish one bundle as a new version of ``model``: folder, history line, registry. A
    route that points elsewhere stays unless ``take_routes`` (``Published.routes`` says)."""
    started = time.perf_counter()
    check_targets(aliases, routes, [model])
    written = write_version(store, bundle, model=model, version=version, bump=bump)
    decided: list[RouteDecision] = []
    try:
        registry = apply_publication(
            store,
            registry_key,
            [written],
            aliases=aliases,
            routes=routes,
            take_routes=take_routes,
            decided=decided,
        )
    except TickerserveError as exc:
        moved = f"{', '.join(aliases)} did not move" if aliases else "nothing points at it"
        raise Incomplete(
            f"published {written.model} {written.version} (written and recorded) but the "
            f"registry update failed, so {moved}: {exc.message}" + _promote_hint(written, aliases)
        ) from exc
    published = Published(
        written, tuple(aliases), registry.revision, time.perf_counter() - started, decided
    )
    # After the registry: the record says the aliases moved, so only once they have.
    try:
        append_records(store, TRAINING_HISTORY_KEY, [training_record(written, aliases)])
    except TickerserveError as exc:
        moves = "".join(f", {alias} -> {written.version}" for alias in aliases)
        raise Incomplete(
            f"published {written.model} {written.version} (registry revision "
            f"{registry.revision}{moves}), but the training history was not updated: "
            f"{exc.message}",
            published=published,
        ) from exc
    return published


def _promote_hint(written: Written, aliases: Sequence[str]) -> str:
    return "".join(
        f"; `tickerserve promote {written.model} {written.version} --alias {alias}`"
        for alias in aliases
    )
