"""``sync``: mirror a local store folder into the target store (normally a bucket).

A file is unchanged when its sha256 equals the target object's (``sha256`` user metadata, or a
full-object S3 SHA-256 checksum); never by size or mtime. Safety rules:

- version files are immutable: a differing target copy is refused, new ones are create-only;
- uploads run in phases: version artifacts, then their ``metadata.json``, then histories, then
  the registry (compare-and-swap on the ETag read while planning) - so the registry never
  points at a file that is not there yet, and a failure in one phase skips the later ones;
- each model's digest index (``{model}/versions/index.json``) is merged, never overwritten:
  the target's entries stay, the local ones and every version this sync completes are added
  (a version recorded with two different digests is refused), written with compare-and-swap
  after the version files and before the registry, so an alias never names an unrecorded
  version;
- ``*.jsonl`` histories are append-only: lines only the target has are kept (merged);
- the registry never moves backwards: a target revision newer than the local one is refused
  unless ``--force`` (which writes the local content as target revision + 1);
- ``--delete`` removes target files missing locally, last, never the registry or histories
  the digest indexes, and never a version the resulting registry points at (an alias or,
  for rollback, an alias's history);
- ``capture/`` and ``outcomes/`` belong to the store they were written in (served predictions,
  realized results): sync never uploads, overwrites or deletes anything under them.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from tickerserve.cli.console import JsonOption, human_bytes, is_terminal, print_json
from tickerserve.cli.errors import Failed, Refused
from tickerserve.cli.progress import NO_PROGRESS, Tracker, progress
from tickerserve.cli.store_option import target
from tickerserve.errors import TickerserveError
from tickerserve.layout import (
    CAPTURE_PREFIX,
    METADATA_FILE,
    METADATA_PREFIX,
    OUTCOMES_PREFIX,
    index_key,
    metadata_key,
    parse_index_key,
    parse_version_key,
    validate_key,
)
from tickerserve.storage.bundle import read_bundle
from tickerserve.storage.history import HISTORY_KEYS
from tickerserve.storage.registry import Registry
from tickerserve.storage.store import KeyNotFound, LocalStore, ObjectInfo, Store, sha256_hex
from tickerserve.storage.version_index import VersionIndex, read_index

JSONL_KEYS = frozenset(HISTORY_KEYS.values())
UNSYNCED_PREFIXES = (CAPTURE_PREFIX, OUTCOMES_PREFIX)


@dataclass(frozen=True)
class LocalFile:
    key: str
    path: Path
    size: int
    sha256: str


@dataclass
class Upload:
    """One object to write, with the condition that keeps it safe."""

    key: str
    size: int
    phase: int
    path: Path | None = None
    data: bytes | None = None  # prepared content (merged history, re-numbered registry)
    if_match: str | None = None
    create_only: bool = False

    def content(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


@dataclass
class SyncPlan:
    uploads: list[Upload] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def upload_bytes(self) -> int:
        return sum(u.size for u in self.uploads)


@dataclass
class SyncResult:
    uploaded: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_attempted: int = 0
    seconds: float = 0.0


# Phases: 0 artifacts and other files, 1 version metadata.json, 2 digest indexes,
# 3 metadata/* (histories), 4 the registry.
ARTIFACTS, MARKERS, INDEXES, HISTORIES, REGISTRY = range(5)


def local_files(src: Path, track: Tracker = NO_PROGRESS) -> dict[str, LocalFile]:
    """Every file of a local store folder (hidden files and lock/temp files left out)."""
    if not src.is_dir():
        raise Refused(f"{src}: not a folder")
    infos = [
        info
        for info in LocalStore(src).list("")
        if not any(part.startswith(".") for part in info.key.split("/"))
    ]
    step = track.step(f"hashing {len(infos)} files in {src}", total=len(infos))
    files: dict[str, LocalFile] = {}
    for info in infos:
        try:
            validate_key(info.key)
        except ValueError as exc:
            raise Refused(f"cannot sync {src / info.key}: {exc}") from None
        path = src / info.key
        data = path.read_bytes()
        files[info.key] = LocalFile(info.key, path, len(data), sha256_hex(data))
        step.advance()
    step.done()
    return files


def _phase(key: str, registry_key: str) -> int:
    if key == registry_key:
        return REGISTRY
    if parse_index_key(key) is not None:
        return INDEXES
    parts = parse_version_key(key)
    if parts is not None:
        return MARKERS if parts[2] == METADATA_FILE else ARTIFACTS
    return HISTORIES if key.startswith(METADATA_PREFIX) else ARTIFACTS


def _remote_sha(
    store: Store,
    infos: dict[str, ObjectInfo],
    keys: list[str],
    jobs: int,
    track: Tracker = NO_PROGRESS,
) -> dict[str, ObjectInfo]:
    """HEAD the objects whose sha256 matters (same size as the local file) in parallel."""
    step = track.step(f"comparing {len(keys)} files with {store.describe()}", total=len(keys))

    def head(key: str) -> tuple[str, ObjectInfo | None]:
        info = store.head(key)
        step.advance()
        return key, info

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        found = {k: i for k, i in pool.map(head, keys) if i is not None}
    step.done()
    return found | {k: infos[k] for k in infos if k not in keys}


def plan_sync(
    store: Store,
    src: Path,
    *,
    registry_key: str,
    delete: bool = False,
    force: bool = False,
    jobs: int = 8,
    track: Tracker = NO_PROGRESS,
) -> SyncPlan:
    """Compare ``src`` with the target store and decide what to write; refuse unsafe syncs.
    ``track`` shows the hashing and the comparison on a terminal."""
    local = local_files(src, track)
    kept_out = [k for k in local if k.startswith(UNSYNCED_PREFIXES)]
    for key in kept_out:
        del local[key]
    has_versions = any(parse_version_key(k) for k in local)
    if registry_key not in local and not has_versions:
        raise Refused(
            f"{src}: not a tickerserve store (no {registry_key} and no */versions/*/ folders)"
        )
    listing = track.step(f"listing {store.describe()}")
    remote = {i.key: i for i in store.list("") if not i.key.startswith(UNSYNCED_PREFIXES)}
    listing.done()
    same_size = [k for k, f in local.items() if k in remote and remote[k].size == f.size]
    # Histories and the registry are compared by content even when sizes differ.
    same_size += [
        k
        for k in local
        if k in remote and k not in same_size and _phase(k, registry_key) >= HISTORIES
    ]
    remote = _remote_sha(store, remote, same_size, jobs, track)
    plan = SyncPlan()
    if kept_out:
        plan.notes.append(
            f"left out {len(kept_out)} local file(s) under capture/ and outcomes/: "
            "sync never copies captured predictions or outcomes"
        )
    conflicts: list[str] = []
    for key, file in sorted(local.items()):
        info = remote.get(key)
        phase = _phase(key, registry_key)
        if phase == INDEXES:
            continue  # merged below, with the versions this sync completes
        if info is not None and info.sha256 is None and info.size == file.size:
            info = _hashed(store, info)  # no recorded digest: compare by downloading
        if info is not None and info.sha256 == file.sha256:
            plan.skipped.append(key)
            continue
        if phase in (ARTIFACTS, MARKERS) and parse_version_key(key) and info is not None:
            conflicts.append(key)
            continue
        if key in JSONL_KEYS and info is not None:
            merged, etag = _merge_history(store, key, file)
            if merged is None:
                plan.skipped.append(key)
            else:
                plan.uploads.append(Upload(key, len(merged), phase, data=merged, if_match=etag))
            continue
        if phase == REGISTRY:
            plan.uploads.append(_registry_upload(store, key, file, info, force, plan))
            continue
        plan.uploads.append(
            Upload(
                key,
                file.size,
                phase,
                path=file.path,
                create_only=info is None and parse_version_key(key) is not None,
            )
        )
    if conflicts:
        raise Refused(
            f"refusing to overwrite {len(conflicts)} file(s) of existing versions, e.g. "
            f"{conflicts[0]}: version folders are immutable and the target's copy differs"
        )
    _check_new_versions(src, plan.uploads)
    plan.uploads += _index_uploads(store, local, remote, plan)
    final_registry = _final_registry(store, local, registry_key)
    _check_aliases(final_registry, set(local) | set(remote))
    if delete:
        plan.deletes = _deletions(local, remote, registry_key, final_registry, plan)
    plan.uploads.sort(key=lambda u: (u.phase, u.key))
    return plan


def _check_new_versions(src: Path, uploads: list[Upload]) -> None:
    """Every version about to be uploaded complete must verify and load as the function
    loads it (each artifact's sha256, then a crash-isolated load and probe prediction): a
    model file its library cannot parse is refused here, not discovered by a 503."""
    from tickerserve.serving.model import LoadedModel  # lightgbm: only when versions are synced

    source = LocalStore(src)
    for upload in uploads:
        parts = parse_version_key(upload.key) if upload.phase == MARKERS else None
        if parts is None:
            continue
        model, version, _ = parts
        try:
            bundle = read_bundle(source, model, version)
            LoadedModel(bundle.metadata, bundle.files)
        except TickerserveError as exc:
            raise Refused(f"refusing to sync {model} {version}: {exc.message}") from None


def _index_uploads(
    store: Store, local: dict[str, LocalFile], remote: dict[str, ObjectInfo], plan: SyncPlan
) -> list[Upload]:
    """Each model's digest index as the target should hold it after this sync: the target's
    entries, the local index's, and the metadata digest of every version this sync makes
    complete. Conflicting digests for one version are refused."""
    completed: dict[str, dict[str, str]] = defaultdict(dict)
    for upload in plan.uploads:
        parts = parse_version_key(upload.key) if upload.phase == MARKERS else None
        if parts is not None:
            completed[parts[0]][parts[1]] = local[upload.key].sha256
    local_indexes = {model: key for key in local if (model := parse_index_key(key)) is not None}
    uploads = []
    for model in sorted(set(completed) | set(local_indexes)):
        mine = (
            VersionIndex.from_json(local[local_indexes[model]].path.read_bytes(), model)
            if model in local_indexes
            else VersionIndex(model)
        )
        theirs = read_index(store, model)
        merged = _merged_index(theirs.index, mine, completed[model], remote)
        data = merged.to_json()
        key = index_key(model)
        if theirs.etag is not None and data == theirs.index.to_json():
            plan.skipped.append(key)
            continue
        uploads.append(
            Upload(
                key,
                len(data),
                INDEXES,
                data=data,
                if_match=theirs.etag,
                create_only=theirs.etag is None,
            )
        )
    return uploads


def _merged_index(
    theirs: VersionIndex,
    mine: VersionIndex,
    completed: dict[str, str],
    remote: dict[str, ObjectInfo],
) -> VersionIndex:
    merged = copy.deepcopy(theirs)
    for version, entry in mine.versions.items():
        known = merged.versions.get(version)
        if known is None:
            held = metadata_key(mine.model, version) in remote
            if entry.deleted_at is None or not held:  # never "deleted" over a held version
                merged.versions[version] = entry
            continue
        if entry.metadata_sha256 not in (None, known.metadata_sha256) and (
            known.metadata_sha256 is not None
        ):
            raise Refused(
                f"refusing to sync {mine.model} {version}: the local digest index records "
                f"{entry.metadata_sha256[:12]}…, the target's {known.metadata_sha256[:12]}…"
            )
        for name, digest in entry.sidecars.items():
            if known.sidecars.get(name, digest) != digest:
                raise Refused(
                    f"refusing to sync {mine.model} {version}: sidecar {name} differs between "
                    "the local and the target digest index"
                )
            merged.versions[version].sidecars.setdefault(name, digest)
    for version, digest in completed.items():
        try:
            merged.record(version, digest)
        except TickerserveError as exc:
            raise Refused(f"refusing to sync {mine.model} {version}: {exc.message}") from None
    return merged


def _merge_history(store: Store, key: str, file: LocalFile) -> tuple[bytes | None, str | None]:
    """The target history plus the local lines it lacks (in local order), and the ETag the
    write must match; None when the target already has every local line."""
    local = file.path.read_bytes()
    try:
        blob = store.get(key)
    except KeyNotFound:
        return local, None
    assert blob is not None
    remote = blob.data
    if local.startswith(remote):
        return local, blob.etag
    have = set(remote.splitlines())
    extra = [line for line in local.splitlines() if line.strip() and line not in have]
    if not extra:
        return None, None
    base = remote if remote.endswith(b"\n") or not remote else remote + b"\n"
    return base + b"\n".join(extra) + b"\n", blob.etag


def _hashed(store: Store, info: ObjectInfo) -> ObjectInfo:
    blob = store.get(info.key, size=info.size)
    assert blob is not None
    return ObjectInfo(info.key, len(blob.data), blob.etag, sha256_hex(blob.data), info.metadata)


def _registry_upload(
    store: Store, key: str, file: LocalFile, info: ObjectInfo | None, force: bool, plan: SyncPlan
) -> Upload:
    data = file.path.read_bytes()
    # Never upload a registry the runtime would reject (a seed's own: convert it first).
    mine = Registry.from_json(data, where=_root_of(file))
    if info is None:
        return Upload(key, len(data), REGISTRY, data=data, create_only=True)
    blob = store.get(key)
    assert blob is not None
    theirs = Registry.from_json(blob.data, where=store.describe())
    if theirs.revision >= mine.revision:
        if not force:
            raise Refused(
                f"target registry is at revision {theirs.revision}, local at {mine.revision}: "
                "refusing to move it backwards or over a diverged change (use --force)"
            )
        mine.revision = theirs.revision + 1
        data = mine.to_json()
        plan.notes.append(f"--force: local registry written as revision {mine.revision}")
    return Upload(key, len(data), REGISTRY, data=data, if_match=blob.etag)


def _root_of(file: LocalFile) -> str:
    """The local store's folder: the file's path without its key."""
    return str(file.path)[: -len(file.key)].rstrip("/") or "."


def _final_registry(store: Store, local: dict[str, LocalFile], key: str) -> Registry | None:
    if key in local:
        file = local[key]
        return Registry.from_json(file.path.read_bytes(), where=_root_of(file))
    try:
        blob = store.get(key)
    except KeyNotFound:
        return None
    assert blob is not None
    return Registry.from_json(blob.data, where=store.describe())


def _check_aliases(registry: Registry | None, keys: set[str]) -> None:
    """Every alias of the resulting registry must point at a complete version."""
    if registry is None:
        return
    for model, entry in registry.models.items():
        for alias, t in entry.aliases.items():
            if metadata_key(model, t.version) not in keys:
                raise Refused(
                    f"the registry points {model} {alias} at {t.version}, which neither the "
                    "local folder nor the target has"
                )


def _deletions(
    local: dict[str, LocalFile],
    remote: dict[str, ObjectInfo],
    registry_key: str,
    registry: Registry | None,
    plan: SyncPlan,
) -> list[str]:
    protected = {registry_key, *JSONL_KEYS, *(k for k in remote if parse_index_key(k))}
    referenced: set[tuple[str, str]] = set()
    rollback: set[tuple[str, str]] = set()  # alias history: where ``rollback`` may go
    if registry is not None:
        for model, entry in registry.models.items():
            referenced |= {(model, t.version) for t in entry.aliases.values()}
            rollback |= {(model, t.version) for h in entry.history.values() for t in h}
    doomed = []
    for key in sorted(set(remote) - set(local)):
        if key in protected:
            plan.notes.append(
                f"kept {key}: sync never deletes the registry, histories or digest indexes"
            )
            continue
        parts = parse_version_key(key)
        if parts is not None and (parts[0], parts[1]) in referenced:
            raise Refused(
                f"--delete would remove {key}, but the registry points an alias at "
                f"{parts[0]} {parts[1]}"
            )
        if parts is not None and (parts[0], parts[1]) in rollback:
            raise Refused(
                f"--delete would remove {key}, but {parts[0]} {parts[1]} is a rollback target "
                "in the registry's alias history"
            )
        doomed.append(key)
    # metadata.json first, so an interrupted delete leaves incomplete folders, not broken ones.
    return sorted(doomed, key=lambda k: (not k.endswith(f"/{METADATA_FILE}"), k))


def run_sync(
    store: Store,
    plan: SyncPlan,
    *,
    jobs: int = 8,
    on_progress: Callable[[str, int], None] | None = None,
) -> SyncResult:
    """Execute a plan phase by phase; a failed phase stops the later ones (and the deletes)."""
    started = time.perf_counter()
    result = SyncResult()
    progress = on_progress or (lambda key, size: None)
    phases = sorted({u.phase for u in plan.uploads})
    for index, phase in enumerate(phases):
        batch = [u for u in plan.uploads if u.phase == phase]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_put, store, u): u for u in batch}
            for future in as_completed(futures):
                upload = futures[future]
                error = future.exception()
                if error is None:
                    result.uploaded.append(upload.key)
                    result.uploaded_bytes += upload.size
                else:
                    result.failed[upload.key] = getattr(error, "message", None) or str(error)
                progress(upload.key, upload.size)
        if result.failed:
            later = [u for p in phases[index + 1 :] for u in plan.uploads if u.phase == p]
            result.not_attempted = len(later) + len(plan.deletes)
            break
    else:
        if plan.deletes:
            try:
                store.delete(plan.deletes)
                result.deleted = list(plan.deletes)
            except Exception as exc:
                result.failed["(delete)"] = getattr(exc, "message", None) or str(exc)
    result.seconds = time.perf_counter() - started
    return result


def _put(store: Store, upload: Upload) -> None:
    content_type = (
        "application/json"
        if upload.key.endswith(".json")
        else "application/x-ndjson"
        if upload.key.endswith(".jsonl")
        else "application/octet-stream"
    )
    store.put(
        upload.key,
        upload.content(),
        if_match=upload.if_match,
        create_only=upload.create_only,
        content_type=content_type,
    )


def sync_command(
    ctx: typer.Context,
    src_dir: Annotated[
        Path, typer.Argument(help="Local store folder (same layout as the bucket).")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change.")] = False,
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete target files that are not in SRC_DIR.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a newer or diverged target registry.")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Parallel uploads.")] = 8,
    json_output: JsonOption = False,
) -> None:
    """Mirror a local store folder into the target store.

    Unchanged files (same sha256) are skipped; the registry is written last. Exit code 1 if
    anything failed.
    """
    t = target(ctx)
    store = t.store
    started = time.perf_counter()
    with progress(not json_output) as track:  # on a terminal: hashing, listing, comparing
        plan = plan_sync(
            store,
            src_dir,
            registry_key=t.registry_key,
            delete=delete,
            force=force,
            jobs=jobs,
            track=track,
        )
    if dry_run:
        _report_dry_run(plan, store.describe(), json_output)
        return
    fancy = is_terminal() and not json_output
    result = _run_with_progress(store, plan, jobs) if fancy else run_sync(store, plan, jobs=jobs)
    summary = _summary(plan, result, time.perf_counter() - started)
    if json_output:
        print_json(summary)
    else:
        for line in plan.notes:
            typer.echo(f"note: {line}")
        for key, message in sorted(result.failed.items()):
            typer.echo(f"failed: {key}: {message}", err=True)
        typer.echo(_summary_line(summary, store.describe()))
    if result.failed:
        extra = (
            f"; {result.not_attempted} later step(s) not attempted" if result.not_attempted else ""
        )
        raise Failed(f"sync incomplete: {len(result.failed)} failed{extra}")


def _run_with_progress(store: Store, plan: SyncPlan, jobs: int) -> SyncResult:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("[bold]sync"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("sync", total=max(plan.upload_bytes, 1))
        files = bar.add_task("files", total=len(plan.uploads), visible=False)

        def advance(key: str, size: int) -> None:
            bar.advance(task, size)
            bar.advance(files, 1)

        return run_sync(store, plan, jobs=jobs, on_progress=advance)


def _summary(plan: SyncPlan, result: SyncResult, total_seconds: float) -> dict[str, Any]:
    """Counts and timings; ``seconds`` includes comparing, ``upload_seconds`` only the writes."""
    rate = result.uploaded_bytes / result.seconds if result.seconds > 0 else 0.0
    return {
        "uploaded": len(result.uploaded),
        "uploaded_bytes": result.uploaded_bytes,
        "skipped": len(plan.skipped),
        "deleted": len(result.deleted),
        "failed": len(result.failed),
        "failures": result.failed,
        "not_attempted": result.not_attempted,
        "seconds": round(total_seconds, 3),
        "upload_seconds": round(result.seconds, 3),
        "bytes_per_second": round(rate),
        "notes": plan.notes,
    }


def _summary_line(s: dict[str, Any], where: str) -> str:
    rate = f", {human_bytes(s['bytes_per_second'])}/s" if s["uploaded"] else ""
    return (
        f"{where}: uploaded {s['uploaded']} ({human_bytes(s['uploaded_bytes'])}), "
        f"skipped {s['skipped']} unchanged, deleted {s['deleted']}, failed {s['failed']} "
        f"in {s['seconds']:.2f} s{rate}"
    )


def _report_dry_run(plan: SyncPlan, where: str, json_output: bool) -> None:
    if json_output:
        print_json(
            {
                "dry_run": True,
                "upload": [{"key": u.key, "bytes": u.size} for u in plan.uploads],
                "delete": plan.deletes,
                "skipped": len(plan.skipped),
                "upload_bytes": plan.upload_bytes,
                "notes": plan.notes,
            }
        )
        return
    for u in plan.uploads:
        typer.echo(f"upload  {u.key}  ({human_bytes(u.size)})")
    for key in plan.deletes:
        typer.echo(f"delete  {key}")
    for line in plan.notes:
        typer.echo(f"note: {line}")
    typer.echo(
        f"dry run for {where}: would upload {len(plan.uploads)} "
        f"({human_bytes(plan.upload_bytes)}), skip {len(plan.skipped)} unchanged, "
        f"delete {len(plan.deletes)}"
    )
