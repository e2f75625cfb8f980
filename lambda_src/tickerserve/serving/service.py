"""The serving runtime: registry cache with TTL, model resolution, loading and hot reload.

Cold path: registry -> alias -> version -> metadata (checked against the registry digest)
-> artifacts (disk cache or parallel download, each sha256-verified) -> LoadedModel; the
version's feature ranges come with its metadata, or (a version published before its baseline)
from a sidecar recorded in the model's digest index, read while the artifacts download.
Warm path: registry younger than its TTL and model in memory, so no I/O at all.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tickerserve.baselines.ranges import Ranges, RangesError, read_sidecar
from tickerserve.errors import (
    ConfigError,
    IntegrityError,
    InvalidModel,
    NotFound,
    RegistryNeedsImport,
    StorageUnavailable,
    TickerserveError,
)
from tickerserve.layout import RANGES_FILE, Version, artifact_key, index_key, metadata_key
from tickerserve.metric_names import PREDICTION
from tickerserve.serving.cache import DiskCache, LruBytes
from tickerserve.serving.model import LoadedModel, ModelKey
from tickerserve.settings import ENV_BUCKET, ENV_STORE_PATH, Settings
from tickerserve.storage.bundle import BundleMetadata, parse_metadata, verify_artifact
from tickerserve.storage.registry import Registry, Resolved, Route
from tickerserve.storage.store import KeyNotFound, Store, open_store
from tickerserve.storage.version_index import VersionIndex

logger = logging.getLogger(__name__)

METADATA_CACHE_ENTRIES = 4096
INDEX_CACHE_BYTES = 16 * 1024 * 1024  # digest indexes kept for pinned versions
FAILED_ENTRIES = 1024  # remembered load failures; bounded so odd requests cannot grow memory
LOCK_STRIPES = 64  # load locks shared by hash, so their number never grows
# A version that failed to load is not retried for this long (or until the registry changes),
# so a broken publish cannot turn every request into a download attempt.
MIN_RETRY_SECONDS = 5.0
# How long the request that starts a registry re-check waits for it before answering from the
# registry it holds; the rest of the check happens in the background (see ``registry``).
REGISTRY_WAIT = 0.03
# First back-off after a failed registry read; doubles per failure, at most the TTL.
REGISTRY_RETRY_SECONDS = 2.0
# Entries of the per-registry memo (``registry_memo``) before it is emptied: requests name what
# they like (a pinned version resolves without being looked up), so it must not grow unbounded.
MEMO_ENTRIES = 4096


class MissingVersion(IntegrityError):
    """The registry names a version the store does not hold: 503, never a client's 404."""


@dataclass
class Counters:
    """What happened since start; exposed by /health and emitted as metrics by the API."""

    model_loads: int = 0
    load_failures: int = 0
    registry_refreshes: int = 0
    registry_failures: int = 0
    served_last_good: int = 0
    shadow_failures: int = 0  # a challenger that could not score (the champion answered)
    canary_fallbacks: int = 0  # a canary that could not answer (the champion did)
    request_warnings: int = 0  # warnings answers carried (rows unlike the reference)


@dataclass
class _Recheck:
    """One conditional GET of the registry, run in the background."""

    sent_etag: str | None
    done: threading.Event = field(default_factory=threading.Event)
    registry: Registry | None = None  # None: unchanged (304), or failed
    etag: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class _CachedIndex:
    index: VersionIndex
    etag: str | None
    size: int
    read_at: float


@dataclass(frozen=True)
class Serving:
    """The model that answers a request and exactly which version it is."""

    model: LoadedModel
    resolved: Resolved
    route: Route | None


class ModelService:
    """Resolves tickers to loaded models. Thread-safe; one per process."""

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[str], None] | None = None,
        on_model_event: Callable[[str, str, float], None] | None = None,
        registry_wait: float = REGISTRY_WAIT,
    ) -> None:
        self.settings = settings
        self.store = store or _store_for(settings)
        self.clock = clock
        self.counters = Counters()
        self._on_event = on_event or (lambda name: None)
        # A per-model metric: (name, model, value).
        self._on_model_event = on_model_event or (lambda name, model, value: None)
        self.memory: LruBytes[ModelKey, LoadedModel] = LruBytes(settings.memory_bytes)
        self.disk = DiskCache(settings.cache_dir, settings.disk_bytes)
        self._metadata: LruBytes[ModelKey, tuple[BundleMetadata, str]] = LruBytes(
            METADATA_CACHE_ENTRIES
        )
        self._indexes: LruBytes[str, _CachedIndex] = LruBytes(INDEX_CACHE_BYTES)
        self.registry_wait = registry_wait
        self._registry: Registry | None = None
        self._registry_etag: str | None = None
        self._registry_lock = threading.Lock()
        self._next_check = 0.0  # clock time of the next conditional GET
        self._recheck: _Recheck | None = None  # a conditional GET in flight
        self._failures = 0  # consecutive failed registry reads
        self._registry_read_at: float | None = None  # clock time of the last successful read
        self.invalid_settings = 0  # per-model settings of the registry held that do not parse
        self._last_failure = ""
        self._needs_import: RegistryNeedsImport | None = None  # the seed registry's answer
        # Values derived from one registry alone, with that registry: one attribute, so a
        # thread never pairs one registry with another's values.
        self._memo: tuple[Registry | None, dict[Any, Any]] = (None, {})
        self._load_locks = [threading.Lock() for _ in range(LOCK_STRIPES)]
        self._last_good: dict[tuple[str, str], ModelKey] = {}
        self._rolled_back_from: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._failed: OrderedDict[ModelKey, tuple[float, TickerserveError]] = OrderedDict()
        self._failed_lock = threading.Lock()
        self.started = clock()

    # -- registry ------------------------------------------------------------------------
    def registry(self) -> Registry:
        """The registry, re-validated with one conditional GET once the TTL has passed.

        Only the first read waits for storage (up to the store's deadline; 503 after it). Later
        re-checks run in the background: the request that starts one waits at most
        ``registry_wait`` for it and otherwise answers from the registry it holds, and a later
        request picks the result up. Lambda freezes a sandbox between invocations, so a
        refresh thread of its own could not keep the registry fresh; this way the check moves
        on whenever requests arrive, and no request waits on storage for a model it holds.
        """
        registry = self._registry
        if registry is None:
            return self._first_registry()
        if self._recheck is None and self.clock() < self._next_check:
            return registry  # the warm path: no I/O, no lock
        self._revalidate()
        return self._registry or registry

    def registry_memo(self) -> tuple[Registry, dict[Any, Any]]:
        """The registry (as ``registry()``) and a memo for what is derived from it alone (what a
        request resolves to), emptied whenever another registry is held and when it holds
        ``MEMO_ENTRIES``: a warm request resolves nothing twice."""
        registry = self.registry()
        held, memo = self._memo
        if held is not registry or len(memo) >= MEMO_ENTRIES:
            memo = {}
            self._memo = (registry, memo)
        return registry, memo

    def _first_registry(self) -> Registry:
        key = self.settings.registry_key
        with self._registry_lock:
            if self._registry is not None:
                return self._registry
            if self._failures and self.clock() < self._next_check:
                # Fail fast while backing off: no request waits for a store that just failed.
                if self._needs_import is not None:
                    raise self._needs_import
                raise StorageUnavailable(self._last_failure, retry_after=self._retry_after())
            try:
                blob = self.store.get(key)
                assert blob is not None  # an unconditional GET always returns content
                registry = Registry.from_json(blob.data, where=self.store.describe())
            except KeyNotFound:
                self._registry_failed(f"registry {key} does not exist in {self.store.describe()}")
            except RegistryNeedsImport as exc:
                # Not a storage fault: the store holds a seed project's registry. Every request
                # says which command converts it (503 registry_needs_import).
                self._needs_import = exc
                self._registry_failed(exc.message)
            except TickerserveError as exc:
                self._registry_failed(f"registry unavailable: {exc.message}")
            else:
                self._registry_read(registry, blob.etag)
            assert self._registry is not None  # _registry_failed raised otherwise
            return self._registry

    def _revalidate(self) -> None:
        with self._registry_lock:
            check, started = self._recheck, False
            if check is None:
                if self.clock() < self._next_check:
                    return
                check = self._recheck = _Recheck(self._registry_etag)
                threading.Thread(
                    target=self._run_recheck, args=(check,), name="registry-recheck", daemon=True
                ).start()
                started = True
        if started:
            check.done.wait(self.registry_wait)
        if not check.done.is_set():
            return
        with self._registry_lock:
            if self._recheck is not check:
                return  # another request applied it
            self._recheck = None
            self._apply_recheck(check)

    def _apply_recheck(self, check: _Recheck) -> None:
        """Take a finished re-check's result (under ``_registry_lock``)."""
        if check.error is not None:
            self._registry_failed(check.error)
        elif check.registry is None:  # 304: unchanged
            self._registry_ok()
        else:
            self._registry_read(check.registry, check.etag)

    def _run_recheck(self, check: _Recheck) -> None:
        """The background half of a re-check: the conditional GET (deadline-bounded by the
        store) and parsing, so a large registry is parsed off the request path too."""
        key = self.settings.registry_key
        try:
            blob = self.store.get(key, if_none_match=check.sent_etag)
            if blob is not None:
                check.registry, check.etag = Registry.from_json(blob.data), blob.etag
        except KeyNotFound:
            check.error = f"registry {key} does not exist in {self.store.describe()}"
        except TickerserveError as exc:
            check.error = f"registry unavailable: {exc.message}"
        except Exception as exc:  # never lose the check: it would never be retried
            check.error = f"registry check failed: {type(exc).__name__}: {exc}"
        finally:
            check.done.set()

    def registry_age(self) -> float | None:
        """Seconds since the registry was last read successfully (a 200 or a 304), or None
        before the first read: how stale the routing and aliases this sandbox serves may be."""
        read_at = self._registry_read_at
        return None if read_at is None else self.clock() - read_at

    def _registry_ok(self) -> None:
        self._needs_import = None
        self._registry_read_at = self.clock()
        self._failures = 0
        self._next_check = self.clock() + self.settings.registry_ttl

    def _registry_read(self, registry: Registry, etag: str | None) -> None:
        changed = self._registry is not None
        if self._registry is not None:
            self._note_rollbacks(self._registry, registry)
        self._registry, self._registry_etag = registry, etag
        self._registry_ok()
        with self._failed_lock:
            self._failed.clear()  # a new registry is a reason to retry failed versions
        self.counters.registry_refreshes += 1
        # A per-model setting that does not parse acts as off for that model alone: say so
        # once per registry read (with the repair), count it, never fail the registry for it.
        invalid = registry.invalid_settings()
        self.invalid_settings = len(invalid)
        for model, setting, problem in invalid:
            logger.warning(
                "%s: %s; it acts as off until `tickerserve %s %s --off` replaces it",
                model,
                problem,
                setting,
                model,
                extra={"model": model, "setting": setting},
            )
        if changed:
            self._event(PREDICTION.registry_reloads)
            logger.info("registry changed", extra={"revision": registry.revision})

    def _note_rollbacks(self, old: Registry, new: Registry) -> None:
        """Remember which version each alias was rolled back *from* (it moved to the top of
        its history and the version it left is not in the new history): that version never
        answers for the alias again, not even as a last good fallback."""
        for name, entry in new.models.items():
            before = old.models.get(name)
            for alias, target in entry.aliases.items():
                previous = before.aliases.get(alias) if before is not None else None
                history = before.history.get(alias, []) if before is not None else []
                if (
                    previous is not None
                    and history
                    and target.version == history[-1].version != previous.version
                    and all(t.version != previous.version for t in entry.history.get(alias, []))
                ):
                    self._rolled_back_from[(name, alias, previous.version)] = None
                    while len(self._rolled_back_from) > FAILED_ENTRIES:
                        self._rolled_back_from.popitem(last=False)

    def _registry_failed(self, message: str) -> None:
        """Count the failure and back off: 2, 4, 8 ... seconds, at most the TTL (or 2 s)."""
        self.counters.registry_failures += 1
        self._event(PREDICTION.registry_failures)
        self._failures += 1
        self._last_failure = message
        backoff = min(
            REGISTRY_RETRY_SECONDS * 2 ** min(self._failures - 1, 16),
            max(self.settings.registry_ttl, REGISTRY_RETRY_SECONDS),
        )
        self._next_check = self.clock() + backoff
        if self._registry is None:
            if self._needs_import is not None:
                raise self._needs_import
            raise StorageUnavailable(message, retry_after=self._retry_after())
        # Keep serving the registry we have.
        logger.warning("%s; serving registry revision %s", message, self._registry.revision)

    def _retry_after(self) -> float:
        return max(self._next_check - self.clock(), 1.0)

    # -- resolution ----------------------------------------------------------------------
    def serving_for_ticker(
        self,
        ticker: str,
        *,
        alias: str | None = None,
        version: str | None = None,
        asset_class: str | None = None,
        timeframe: str | None = None,
        signal: str | None = None,
    ) -> Serving:
        route, resolved = self.resolve_ticker(
            ticker,
            alias=alias,
            version=version,
            asset_class=asset_class,
            timeframe=timeframe,
            signal=signal,
        )
        model, resolved = self.load(resolved)
        return Serving(model, resolved, route)

    def resolve_ticker(
        self,
        ticker: str,
        *,
        alias: str | None = None,
        version: str | None = None,
        asset_class: str | None = None,
        timeframe: str | None = None,
        signal: str | None = None,
    ) -> tuple[Route, Resolved]:
        """Which model version answers for ``ticker`` (on ``signal``, for ``timeframe``), from
        the registry alone (no loading)."""
        return resolve_route(
            self.registry(),
            ticker,
            alias=alias,
            version=version,
            asset_class=asset_class,
            timeframe=timeframe,
            signal=signal,
        )

    def metadata(self, resolved: Resolved) -> tuple[BundleMetadata, str]:
        """A version's validated metadata (cached), verified against the digest the registry
        recorded for it or, for a pinned version no alias names, the model's digest index."""
        key = ModelKey(resolved.model, resolved.version)
        cached = self._metadata.get(key)
        if cached is not None and resolved.metadata_sha256 in (None, cached[1]):
            return cached
        expected = resolved.metadata_sha256
        if expected is None:
            expected = self._indexed_digest(resolved.model, resolved.version)
        try:
            blob = self.store.get(metadata_key(resolved.model, resolved.version))
        except KeyNotFound:
            if resolved.alias is not None:
                # The registry names it: a fault on our side (a hand-edited registry, a bucket
                # emptied by hand), never a client's 404.
                raise MissingVersion(
                    f"the registry points {resolved.model} {resolved.alias} at "
                    f"{resolved.version}, which the store does not hold"
                ) from None
            raise NotFound(
                f"model {resolved.model} has no version {resolved.version}", code="unknown_version"
            ) from None
        assert blob is not None
        entry = parse_metadata(blob.data, resolved.model, resolved.version, expected)
        self._metadata.put(key, entry, 1)
        return entry

    def _indexed_digest(self, model: str, version: str) -> str:
        """The metadata digest the model's index recorded for ``version``. A version without
        one is never served: its bytes could have been replaced, metadata and all."""
        index = self._index_of(model, version)
        digest = index.digest(version)
        if digest is not None:
            return digest
        held = sorted((v for v in index.versions if not index.is_deleted(v)), key=Version.parse)
        if index.is_deleted(version):
            why = "it was deleted"
        elif held:
            why = (
                f"its versions are {', '.join(held)} (a version folder written before the "
                "digest index counts only once `tickerserve migrate` records it)"
            )
        else:
            why = (
                "no digest is recorded for any of its versions (a store from before the digest "
                "index records them with `tickerserve migrate`)"
            )
        raise NotFound(f"model {model} has no version {version}: {why}", code="unknown_version")

    def _index_of(self, model: str, version: str) -> VersionIndex:
        """A model's digest index, cached; re-read (conditionally) when it lacks ``version``,
        at most every ``MIN_RETRY_SECONDS``, so pins of unknown versions cost little I/O."""
        cached = self._indexes.get(model)
        now = self.clock()
        if cached is not None and (
            version in cached.index.versions or now - cached.read_at < MIN_RETRY_SECONDS
        ):
            return cached.index
        return self._read_index(model, cached, now)

    # -- loading -------------------------------------------------------------------------
    def load(self, resolved: Resolved, key: ModelKey | None = None) -> tuple[LoadedModel, Resolved]:
        """The loaded model for a resolved version. If an alias moved to a version that cannot
        be loaded (or that the store does not hold), keep serving the alias's last good
        version and count the failure. ``key``: the version's ``ModelKey``, when the caller
        keeps one (it spares building it)."""
        key = key or ModelKey(resolved.model, resolved.version)
        model = self._cached(key, resolved.metadata_sha256)
        if model is not None:
            self._remember_good(resolved, key)
            return model, resolved
        failure = self._recent_failure(key)
        if failure is not None:  # no I/O until the back-off has passed
            fallback = self._fallback_for(resolved, key, failure)
            if fallback is not None:
                return self._serve_last_good(resolved, fallback, None)
            raise failure.with_traceback(None)
        try:
            model = self._load_locked(resolved)
        except (StorageUnavailable, IntegrityError, InvalidModel, NotFound) as exc:
            if isinstance(exc, NotFound):
                raise  # only a pinned version: a client asked for one that does not exist
            return self._load_failed(resolved, key, self._fallback_for(resolved, key, exc), exc)
        self._remember_good(resolved, key)
        return model, resolved

    def _fallback_for(
        self, resolved: Resolved, key: ModelKey, error: TickerserveError
    ) -> ModelKey | None:
        """The alias's last good version, if the alias may still go back to it: one in its
        history, or (when the alias names a version the store does not hold, e.g. a registry
        edited by hand) any it served before, except a version the alias was rolled back
        *from*: that one must never answer again."""
        if resolved.alias is None:
            return None
        good = self._last_good.get((resolved.model, resolved.alias))
        registry = self._registry
        if good is None or good == key or registry is None:
            return None
        entry = registry.models.get(resolved.model)
        history = entry.history.get(resolved.alias, []) if entry is not None else []
        if any(t.version == good.version for t in history):
            return good
        rolled_back = (resolved.model, resolved.alias, good.version) in self._rolled_back_from
        return good if isinstance(error, MissingVersion) and not rolled_back else None

    def in_memory(self, resolved: Resolved, key: ModelKey | None = None) -> LoadedModel | None:
        """The version if it is loaded already (no I/O, ever), else None. ``key`` is the
        version's ``ModelKey`` when the caller keeps one (it spares building it)."""
        key = key or ModelKey(resolved.model, resolved.version)
        return self._cached(key, resolved.metadata_sha256)

    def _cached(self, key: ModelKey, digest: str | None) -> LoadedModel | None:
        model = self.memory.get(key)
        if model is not None and digest is not None and model.metadata_sha256 != digest:
            # The version number now names other bytes (deleted and published again): never
            # answer with the model loaded before.
            self.memory.pop(key)
            self._metadata.pop(key)
            return None
        return model

    def _recent_failure(self, key: ModelKey) -> TickerserveError | None:
        with self._failed_lock:
            failure = self._failed.get(key)
        retry_after = max(self.settings.registry_ttl, MIN_RETRY_SECONDS)
        if failure is None or self.clock() - failure[0] >= retry_after:
            return None
        return failure[1]

    def _load_failed(
        self, resolved: Resolved, key: ModelKey, fallback: ModelKey | None, exc: TickerserveError
    ) -> tuple[LoadedModel, Resolved]:
        with self._failed_lock:
            self._failed[key] = (self.clock(), exc)
            self._failed.move_to_end(key)
            while len(self._failed) > FAILED_ENTRIES:
                self._failed.popitem(last=False)
        self.counters.load_failures += 1
        self._event(PREDICTION.model_load_failures)
        logger.error("could not load %s: %s", key, exc.message)
        if fallback is None:
            raise exc
        return self._serve_last_good(resolved, fallback, exc)

    def _remember_good(self, resolved: Resolved, key: ModelKey) -> None:
        if resolved.alias is not None:
            self._last_good[(resolved.model, resolved.alias)] = key

    def _serve_last_good(
        self, wanted: Resolved, good: ModelKey, error: TickerserveError | None
    ) -> tuple[LoadedModel, Resolved]:
        self.counters.served_last_good += 1
        self._event(PREDICTION.served_last_good)
        if error is not None:
            logger.warning("%s stays on %s: %s", wanted.alias, good, error.message)
        model = self.memory.get(good)
        if model is None:
            cached = self._metadata.get(good)
            digest = cached[1] if cached is not None else None
            model = self._load_locked(Resolved(good.model, good.version, wanted.alias, digest))
        return model, Resolved(good.model, good.version, wanted.alias, model.metadata_sha256)

    def _load_locked(self, resolved: Resolved) -> LoadedModel:
        key = ModelKey(resolved.model, resolved.version)
        with self._load_locks[hash(key) % LOCK_STRIPES]:  # concurrent first requests load once
            model = self._cached(key, resolved.metadata_sha256)
            if model is not None:
                return model
            started = time.perf_counter()
            metadata, digest = self.metadata(resolved)
            if metadata.ranges is None:  # its ranges may be kept beside it: read meanwhile
                with ThreadPoolExecutor(max_workers=1) as pool:
                    lookup = pool.submit(self._sidecar_ranges, metadata)
                    files = self._artifacts(metadata)
                    ranges = lookup.result()
            else:
                files, ranges = self._artifacts(metadata), None
            model = LoadedModel(metadata, files, metadata_sha256=digest, ranges=ranges)
            evicted = self.memory.put(key, model, model.size_bytes)
            with self._failed_lock:
                self._failed.pop(key, None)
            self.counters.model_loads += 1
            self._event(PREDICTION.model_loads)
            logger.info(
                "loaded %s (%d bytes) in %.1f ms; evicted %s",
                key,
                model.size_bytes,
                (time.perf_counter() - started) * 1000,
                [str(k) for k in evicted] or "nothing",
            )
            return model

    def _artifacts(self, metadata: BundleMetadata) -> dict[str, bytes]:
        """Every artifact the model needs (not the monitor's), verified; missing ones downloaded in
        parallel."""
        files: dict[str, bytes] = {}
        missing: list[str] = []
        for name, artifact in metadata.serving_artifacts.items():
            data = self.disk.read(artifact.sha256)
            if data is not None:
                try:
                    verify_artifact(metadata, name, data)
                    files[name] = data
                    continue
                except IntegrityError:
                    self.disk.discard(artifact.sha256)
            missing.append(name)

        def download(name: str) -> tuple[str, bytes]:
            try:
                blob = self.store.get(
                    artifact_key(metadata.model, metadata.version, name),
                    size=metadata.artifacts[name].size,  # never what the server claims
                )
            except KeyNotFound:
                raise IntegrityError(
                    f"{metadata.model} {metadata.version}: artifact {name} is missing"
                ) from None
            assert blob is not None
            verify_artifact(metadata, name, blob.data)
            self.disk.write(metadata.artifacts[name].sha256, blob.data)
            return name, blob.data

        if len(missing) == 1:
            files.update([download(missing[0])])
        elif missing:
            with ThreadPoolExecutor(max_workers=min(8, len(missing))) as pool:
                files.update(pool.map(download, missing))
        return files

    def _sidecar_ranges(self, metadata: BundleMetadata) -> Ranges | None:
        """The feature ranges kept beside a version (None: it has none), as its model's digest
        index records them. Ranges that cannot be read leave the version answering without
        warnings, never failing it."""
        model, version = metadata.model, metadata.version
        try:
            entry = self._recent_index(model).versions.get(version)
            recorded = None if entry is None else entry.sidecars.get(RANGES_FILE)
            if recorded is None:
                return None
            return read_sidecar(self.store, model, version, recorded)
        except (TickerserveError, RangesError) as exc:
            message = exc.message if isinstance(exc, TickerserveError) else str(exc)
            logger.warning("%s %s: feature ranges not read (no warnings): %s", model, version,
                           message)  # fmt: skip
            return None

    def _recent_index(self, model: str) -> VersionIndex:
        """A model's digest index no older than the registry's TTL: one conditional GET when
        the cached one is older (a baseline attached since is seen at the version's next load,
        as an alias move is at the next registry read); none while it is younger."""
        cached = self._indexes.get(model)
        now = self.clock()
        if cached is not None and now - cached.read_at < self.settings.registry_ttl:
            return cached.index
        return self._read_index(model, cached, now)

    def _read_index(self, model: str, cached: _CachedIndex | None, now: float) -> VersionIndex:
        """Read a model's digest index (conditionally on the cached copy's ETag) and cache it;
        a model without one has an empty index."""
        try:
            blob = self.store.get(
                index_key(model), if_none_match=cached.etag if cached is not None else None
            )
        except KeyNotFound:
            index, etag, size = VersionIndex(model), None, 1
        else:
            if blob is None:  # unchanged (304)
                assert cached is not None
                index, etag, size = cached.index, cached.etag, cached.size
            else:
                index = VersionIndex.from_json(blob.data, model)
                etag, size = blob.etag, len(blob.data)
        self._indexes.put(model, _CachedIndex(index, etag, size, now), size)
        return index

    def preload(self, names: tuple[str, ...]) -> None:
        """Load the production version of each named model; failures are logged, not fatal."""
        for name in names:
            try:
                self.load(self.registry().resolve(name))
            except TickerserveError as exc:
                logger.warning("preload of %s failed: %s", name, exc.message)

    # -- SnapStart -----------------------------------------------------------------------
    def prepare_snapshot(self) -> None:
        """Before Lambda snapshots this initialized sandbox: the preloaded models in memory,
        a current registry, and the S3 client's first call paid for (imports, service
        description, endpoint rules); then the client goes, so the snapshot holds neither
        its credentials nor its connections."""
        self._recheck_registry("before the snapshot")
        if self.settings.preload:
            self.preload(self.settings.preload)  # already loaded by init unless that failed
        self._reset_store()

    def after_restore(self) -> None:
        """After a SnapStart restore, possibly hours after the snapshot: a fresh S3 client,
        and the registry read again now rather than trusted for another TTL."""
        self._reset_store()
        with self._failed_lock:
            self._failed.clear()  # failures and their back-off belong to the snapshot's time
        self._recheck_registry("after the restore")

    def _recheck_registry(self, when: str) -> None:
        """Read the registry again now and wait for it (the store's deadline bounds the wait):
        a SnapStart hook runs before any request, so no request waits meanwhile. A failure
        keeps the registry already held (or none) and is counted like any other."""
        with self._registry_lock:
            self._recheck = None  # one started before the snapshot answers to a dead connection
            self._failures, self._next_check = 0, -math.inf
        if self._registry is None:
            try:
                self._first_registry()
            except StorageUnavailable as exc:
                logger.warning("registry unavailable %s: %s", when, exc.message)
            return
        check = _Recheck(self._registry_etag)
        self._run_recheck(check)
        with self._registry_lock:
            self._apply_recheck(check)

    def _reset_store(self) -> None:
        reset = getattr(self.store, "reset", None)
        if reset is not None:
            reset()

    # -- reporting -----------------------------------------------------------------------
    def loaded(self) -> list[dict[str, object]]:
        return [
            {
                "name": k.model,
                "version": k.version,
                "bytes": size,
                "fast_path": model.single_row_fast_path,
                "warnings": model.guard is not None,  # it has feature ranges
            }
            for k, model, size in self.memory.items()
        ]

    def _event(self, name: str) -> None:
        self._on_event(name)

    def count(self, counter: str, metric: str) -> None:
        """Add one to a counter (``Counters``) and emit its metric."""
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self._on_event(metric)

    def count_warnings(self, model: str, warnings: int) -> None:
        """Count the warnings one model's answers of a request carried (its metric's
        dimension is the model)."""
        self.counters.request_warnings += warnings
        self._on_model_event(PREDICTION.request_warnings, model, warnings)


def resolve_route(
    registry: Registry,
    ticker: str,
    *,
    alias: str | None = None,
    version: str | None = None,
    asset_class: str | None = None,
    timeframe: str | None = None,
    signal: str | None = None,
) -> tuple[Route, Resolved]:
    """The route ``ticker`` takes in ``registry`` and the version it resolves to (see
    ``ModelService.resolve_ticker``)."""
    route = registry.route(ticker, asset_class, timeframe, signal)
    return route, registry.resolve(route.model, alias=alias, version=version)


def _store_for(settings: Settings) -> Store:
    if not settings.bucket and not settings.store_path:
        raise ConfigError(f"no model store configured: set {ENV_BUCKET} or {ENV_STORE_PATH}")
    return open_store(bucket=settings.bucket, store_path=settings.store_path)
