"""Where a version's baseline lives, and how its sha256 stays in the chain.

- Published with the version (``publish --reference``, ``import-seed``): ``baseline.json`` is
  an artifact of the version folder, listed with its size and sha256 in ``metadata.json``
  (whose digest the registry and the model's digest index hold). The prediction function
  never downloads it.
- Attached later (``tickerserve baseline``, or ``import-seed`` for a version the store held
  already): a sidecar ``{model}/baselines/{version}.json`` beside the immutable folder; its
  sha256 is recorded in the model's digest index (``{model}/versions/index.json``, under the
  version's ``sidecars``) and checked on every read.

Its feature ranges (``ranges``) go where the prediction function reads them: into the
version's ``metadata.json`` when the baseline is published with it, else into a sidecar
``{model}/versions/{version}.ranges.json`` recorded in the digest index the same way (written
with a sidecar baseline, and by ``write_ranges`` for versions published with a baseline before
ranges existed: ``tickerserve migrate``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from tickerserve.baselines.baseline import Baseline, BaselineError
from tickerserve.baselines.ranges import Ranges, read_sidecar
from tickerserve.errors import Conflict, IntegrityError, NotFound
from tickerserve.layout import (
    BASELINE_FILE,
    RANGES_FILE,
    artifact_key,
    baseline_sidecar_key,
    ranges_sidecar_key,
)
from tickerserve.storage.bundle import Bundle, BundleMetadata, make_bundle, verify_artifact
from tickerserve.storage.store import KeyNotFound, Store, sha256_hex
from tickerserve.storage.version_index import VersionIndex, read_index, update_index


@dataclass(frozen=True)
class StoredBaseline:
    baseline: Baseline
    where: str  # "version" (inside the folder) or "sidecar"
    sha256: str


@dataclass(frozen=True)
class StoredRanges:
    ranges: Ranges
    where: Literal["metadata", "sidecar"]


def attach_to_bundle(bundle: Bundle, baseline: Baseline) -> Bundle:
    """The bundle with ``baseline.json`` among its artifacts and the baseline's feature
    ranges in its metadata (before it is written)."""
    meta = bundle.metadata
    if (baseline.model, baseline.version) != (meta.model, meta.version):
        baseline = replace(baseline, model=meta.model, version=meta.version)
    files = {**bundle.files, BASELINE_FILE: baseline.to_json()}
    ranges = baseline.feature_ranges()
    return make_bundle(replace(meta, ranges=None if ranges is None else ranges.to_dict()), files)


def with_identity(files: dict[str, bytes], model: str, version: str) -> dict[str, bytes]:
    """``files`` with their ``baseline.json`` (if any) naming ``model`` ``version``: a bundle
    gets its final version number only when it is written."""
    if BASELINE_FILE not in files:
        return files
    baseline = Baseline.from_json(files[BASELINE_FILE])
    return {**files, BASELINE_FILE: replace(baseline, model=model, version=version).to_json()}


def recorded_sidecar_digest(store: Store, model: str, version: str) -> str | None:
    """The sha256 the model's digest index records for a version's sidecar (None: none, or
    the version is not recorded or was deleted)."""
    entry = read_index(store, model).index.versions.get(version)
    if entry is None or entry.deleted_at is not None:
        return None
    return entry.sidecars.get(BASELINE_FILE)


def has_baseline(store: Store, metadata: BundleMetadata) -> bool:
    """Whether the version carries a baseline in its folder or has a sidecar (recorded or
    not: a stray sidecar is not overwritten silently)."""
    if BASELINE_FILE in metadata.artifacts:
        return True
    key = baseline_sidecar_key(metadata.model, metadata.version)
    return store.head(key) is not None or (
        recorded_sidecar_digest(store, metadata.model, metadata.version) is not None
    )


def write_sidecar(
    store: Store, metadata: BundleMetadata, baseline: Baseline, *, replace_existing: bool = False
) -> str:
    """Store ``baseline`` (and its feature ranges, unless the version's metadata holds some)
    beside an existing version and record their digests in the model's digest index; returns
    the baseline's digest.

    Refused (``Conflict``) when the version carries a baseline in its folder, or already has a
    sidecar (unless ``replace_existing``); ``NotFound`` when the index does not record the
    version (deleted, or a store from before the index: ``tickerserve migrate``).
    """
    model, version = metadata.model, metadata.version
    if BASELINE_FILE in metadata.artifacts:
        raise Conflict(f"{model} {version} was published with a baseline; it cannot be replaced")
    entry = read_index(store, model).index.versions.get(version)
    if entry is None or entry.deleted_at is not None:
        raise NotFound(
            f"{model} {version} is not recorded in its digest index"
            + (" (it was deleted)" if entry is not None else ": run `tickerserve migrate` first"),
            code="unknown_version",
        )
    baseline = replace(baseline, model=model, version=version)
    data = baseline.to_json()
    key = baseline_sidecar_key(model, version)
    exists = store.head(key) is not None
    if (exists or BASELINE_FILE in entry.sidecars) and not replace_existing:
        raise Conflict(f"{model} {version} already has a baseline; pass --replace to refit it")
    # Objects first, digests second: a reader never finds a digest for bytes not yet there.
    store.put(key, data, create_only=not exists, content_type="application/json")
    digests = {BASELINE_FILE: sha256_hex(data)}
    ranges = baseline.feature_ranges()
    if ranges is not None and metadata.ranges is None:
        digests[RANGES_FILE] = _put_ranges(store, metadata, ranges)
    _record(store, metadata, digests, replace=replace_existing)
    return digests[BASELINE_FILE]


def write_ranges(store: Store, metadata: BundleMetadata, ranges: Ranges) -> str:
    """Keep ``ranges`` beside a version whose metadata holds none (a version published with a
    baseline before ranges existed) and record their digest; returns it. A digest recorded
    before is replaced (the ranges of a refitted baseline)."""
    if metadata.ranges is not None:
        raise Conflict(f"{metadata.model} {metadata.version} keeps its ranges in metadata.json")
    digest = _put_ranges(store, metadata, ranges)
    _record(store, metadata, {RANGES_FILE: digest}, replace=True)
    return digest


def _put_ranges(store: Store, metadata: BundleMetadata, ranges: Ranges) -> str:
    data = ranges.to_json()
    key = ranges_sidecar_key(metadata.model, metadata.version)
    store.put(key, data, create_only=store.head(key) is None, content_type="application/json")
    return sha256_hex(data)


def _record(
    store: Store, metadata: BundleMetadata, digests: dict[str, str], *, replace: bool
) -> None:
    """Record sidecar digests of one version in one compare-and-swap."""

    def mutate(index: VersionIndex) -> None:
        for name, digest in digests.items():
            # The ranges follow their baseline: refitting one replaces the other.
            again = replace or name == RANGES_FILE
            index.record_sidecar(metadata.version, name, digest, replace=again)

    update_index(store, metadata.model, mutate)


def load_ranges(store: Store, metadata: BundleMetadata) -> StoredRanges | None:
    """The version's feature ranges as the prediction function reads them (its metadata's,
    else a sidecar verified against the digest index); None when it has none.

    Raises ``IntegrityError`` for a sidecar that is gone or does not match its digest,
    ``RangesError`` for ranges that do not parse (another schema).
    """
    if metadata.ranges is not None:
        return StoredRanges(Ranges.from_dict(metadata.ranges), "metadata")
    entry = read_index(store, metadata.model).index.versions.get(metadata.version)
    recorded = None if entry is None else entry.sidecars.get(RANGES_FILE)
    if recorded is None:
        return None
    return StoredRanges(read_sidecar(store, metadata.model, metadata.version, recorded), "sidecar")


def load_baseline(store: Store, metadata: BundleMetadata) -> StoredBaseline | None:
    """The version's baseline, verified against its recorded sha256; None when it has none.

    Raises ``IntegrityError`` for bytes that do not match, ``BaselineError`` for a file
    that does not parse.
    """
    model, version = metadata.model, metadata.version
    if BASELINE_FILE in metadata.artifacts:
        blob = store.get(
            artifact_key(model, version, BASELINE_FILE),
            size=metadata.artifacts[BASELINE_FILE].size,
        )
        assert blob is not None
        verify_artifact(metadata, BASELINE_FILE, blob.data)
        return StoredBaseline(
            _parsed(blob.data, model, version), "version", metadata.artifacts[BASELINE_FILE].sha256
        )
    recorded = recorded_sidecar_digest(store, model, version)
    try:
        blob = store.get(baseline_sidecar_key(model, version))
    except KeyNotFound:
        if recorded is not None:
            raise IntegrityError(
                f"{model} {version}: its digest index records a baseline sidecar that is gone"
            ) from None
        return None
    assert blob is not None
    digest = sha256_hex(blob.data)
    if recorded is None:
        raise IntegrityError(
            f"{model} {version}: baseline sidecar has no sha256 recorded in its digest index"
        )
    if recorded != digest:
        raise IntegrityError(
            f"{model} {version}: baseline sha256 {digest[:12]}… does not match the recorded "
            f"{recorded[:12]}…"
        )
    return StoredBaseline(_parsed(blob.data, model, version), "sidecar", digest)


def _parsed(data: bytes, model: str, version: str) -> Baseline:
    baseline = Baseline.from_json(data)
    if (baseline.model, baseline.version) != (model, version):
        raise BaselineError(
            f"baseline at {model} {version} describes {baseline.model} {baseline.version}"
        )
    return baseline
