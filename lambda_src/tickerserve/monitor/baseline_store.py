"""Where a version's baseline lives, and how its sha256 stays in the chain.

- Published with the version (``publish --reference``): ``baseline.json`` is an artifact of
  the version folder, listed with its size and sha256 in ``metadata.json`` (whose digest the
  registry holds). The prediction function never downloads it.
- Attached later (``tickerserve baseline``): a sidecar ``{model}/baselines/{version}.json``
  beside the immutable folder; its sha256 is recorded in the training history as a
  ``baseline`` event, next to the version's own ``published`` record, and checked on read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tickerserve.bundle import Bundle, BundleMetadata, make_bundle, verify_artifact
from tickerserve.errors import Conflict, IntegrityError
from tickerserve.layout import TRAINING_HISTORY_KEY, artifact_key, baseline_sidecar_key
from tickerserve.monitor.baseline import FILE_NAME, Baseline, BaselineError
from tickerserve.publishing.history import append_records, read_records
from tickerserve.registry import utc_now
from tickerserve.store import KeyNotFound, Store, sha256_hex

BASELINE_EVENT = "baseline"


@dataclass(frozen=True)
class StoredBaseline:
    baseline: Baseline
    where: str  # "version" (inside the folder) or "sidecar"
    sha256: str


def attach_to_bundle(bundle: Bundle, baseline: Baseline) -> Bundle:
    """The bundle with ``baseline.json`` among its artifacts (before it is written)."""
    meta = bundle.metadata
    if (baseline.model, baseline.version) != (meta.model, meta.version):
        baseline = replace(baseline, model=meta.model, version=meta.version)
    files = {**bundle.files, FILE_NAME: baseline.to_json()}
    return make_bundle(replace(meta), files)


def with_identity(files: dict[str, bytes], model: str, version: str) -> dict[str, bytes]:
    """``files`` with their ``baseline.json`` (if any) naming ``model`` ``version``: a bundle
    gets its final version number only when it is written."""
    if FILE_NAME not in files:
        return files
    baseline = Baseline.from_json(files[FILE_NAME])
    return {**files, FILE_NAME: replace(baseline, model=model, version=version).to_json()}


def recorded_sidecar_digest(store: Store, model: str, version: str) -> str | None:
    """The sha256 recorded for a version's sidecar (the latest record wins)."""
    digest = None
    for record in read_records(store, TRAINING_HISTORY_KEY).records:
        if (
            record.get("event") == BASELINE_EVENT
            and record.get("model") == model
            and record.get("version") == version
        ):
            digest = record.get("baseline_sha256")
    return digest if isinstance(digest, str) else None


def write_sidecar(
    store: Store, metadata: BundleMetadata, baseline: Baseline, *, replace_existing: bool = False
) -> str:
    """Store ``baseline`` beside an existing version and record its digest; returns it.

    Refused when the version carries a baseline in its folder, or already has a sidecar
    (unless ``replace_existing``).
    """
    model, version = metadata.model, metadata.version
    if FILE_NAME in metadata.artifacts:
        raise Conflict(f"{model} {version} was published with a baseline; it cannot be replaced")
    baseline = replace(baseline, model=model, version=version)
    data = baseline.to_json()
    key = baseline_sidecar_key(model, version)
    exists = store.head(key) is not None
    if exists and not replace_existing:
        raise Conflict(f"{model} {version} already has a baseline; pass --replace to refit it")
    # Object first, record second: a reader never finds a digest for bytes not yet there.
    store.put(key, data, create_only=not exists, content_type="application/json")
    digest = sha256_hex(data)
    append_records(
        store,
        TRAINING_HISTORY_KEY,
        [
            {
                "event": BASELINE_EVENT,
                "model": model,
                "version": version,
                "baseline_sha256": digest,
                "attached_at": utc_now(),
                "rows": baseline.rows,
                "metrics": baseline.metrics,
            }
        ],
    )
    return digest


def load_baseline(store: Store, metadata: BundleMetadata) -> StoredBaseline | None:
    """The version's baseline, verified against its recorded sha256; None when it has none.

    Raises ``IntegrityError`` for bytes that do not match, ``BaselineError`` for a file
    that does not parse.
    """
    model, version = metadata.model, metadata.version
    if FILE_NAME in metadata.artifacts:
        blob = store.get(artifact_key(model, version, FILE_NAME))
        assert blob is not None
        verify_artifact(metadata, FILE_NAME, blob.data)
        return StoredBaseline(
            _parsed(blob.data, model, version), "version", metadata.artifacts[FILE_NAME].sha256
        )
    try:
        blob = store.get(baseline_sidecar_key(model, version))
    except KeyNotFound:
        return None
    assert blob is not None
    digest = sha256_hex(blob.data)
    recorded = recorded_sidecar_digest(store, model, version)
    if recorded is None:
        raise IntegrityError(f"{model} {version}: baseline sidecar has no recorded sha256")
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
