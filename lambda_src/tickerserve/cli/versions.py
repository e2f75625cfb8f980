"""``delete`` and ``validate``: one version folder at a time."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer

from tickerserve.baselines.baseline import BaselineError
from tickerserve.baselines.persistence import load_baseline, load_ranges
from tickerserve.baselines.ranges import RangesError
from tickerserve.cli.console import JsonOption, print_json
from tickerserve.cli.errors import Failed, Refused
from tickerserve.cli.model_names import model_name
from tickerserve.cli.store_option import Target, target
from tickerserve.errors import IntegrityError, InvalidModel, NotFound
from tickerserve.layout import (
    TRAINING_HISTORY_KEY,
    Version,
    baseline_sidecar_key,
    metadata_key,
    ranges_sidecar_key,
)
from tickerserve.publishing.promotion import load_verified
from tickerserve.publishing.version_folders import VersionFolder, delete_folder, find_version
from tickerserve.storage.bundle import BundleMetadata
from tickerserve.storage.history import append_records
from tickerserve.storage.registry import Registry, read_registry, update_registry, utc_now
from tickerserve.storage.store import KeyNotFound, Store, sha256_hex
from tickerserve.storage.version_index import read_index, update_index


def parse_ref(ref: str, t: Target) -> tuple[str, str | None]:
    """``NAME[@VERSION|@ALIAS]`` -> (canonical name, version-or-alias or None)."""
    name, _, selector = ref.partition("@")
    return model_name(name, t), selector or None


def resolve_ref(registry: Registry, name: str, selector: str | None) -> tuple[str, str | None]:
    """A concrete version and the registry's metadata digest for it (None if not aliased)."""
    entry = registry.models.get(name)
    if selector is None or not _looks_like_version(selector):
        alias = selector or "production"
        if entry is None or alias not in entry.aliases:
            raise NotFound(f"model {name} has no alias {alias!r}")
        target = entry.aliases[alias]
        return target.version, target.metadata_sha256
    version = str(Version.parse(selector))
    return version, registry.resolve(name, version=version).metadata_sha256


def _looks_like_version(selector: str) -> bool:
    return selector[:1].isdigit()


def verified_for_alias(
    store: Store, model: str, version: str, expected_sha256: str | None = None
) -> str:
    """Verify and load a version like ``load_verified``, every problem a refusal (for promote
    and rollback). Returns the sha256 of its stored ``metadata.json``: the digest to record."""
    try:
        return load_verified(store, model, version, expected_sha256)[2]
    except (NotFound, IntegrityError, InvalidModel) as exc:
        raise Refused(f"refusing {model} {version}: {exc.message}") from None


def _cross_checked_digest(
    store: Store, model: str, version: str, registry_digest: str | None
) -> str:
    """The metadata digest to verify ``version`` against: the one its digest index recorded,
    which must agree with the registry's where an alias (or its history) names the version."""
    index = read_index(store, model).index
    indexed = index.digest(version)
    if (
        indexed is None
        and not index.is_deleted(version)
        and find_version(store, model, version) is None
    ):
        raise NotFound(f"{model} {version} does not exist")
    if indexed is None:
        why = (
            "it was deleted"
            if index.is_deleted(version)
            else "its digest index has no record of it (run `tickerserve migrate` to record the "
            "versions a store held before the index)"
        )
        raise Failed(f"{model} {version} is not valid: {why}")
    if registry_digest is not None and registry_digest != indexed:
        raise Failed(
            f"{model} {version} is not valid: the registry records metadata sha256 "
            f"{registry_digest[:12]}…, its digest index {indexed[:12]}…"
        )
    return indexed


def delete_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. etfs/SMH.")],
    version: Annotated[str, typer.Argument(help="Version to delete, e.g. 1.0.2.")],
    json_output: JsonOption = False,
) -> None:
    """Delete a version folder (refused while any alias points at it).

    The version also leaves the aliases' rollback history, its baseline and ranges sidecars
    (if any) go with it, its digest index entry is marked deleted (its number is never
    reused), and a "deleted" record is appended to the training history. A delete that was
    interrupted is finished by running it again.
    """
    t = target(ctx)
    model = model_name(name, t)
    version = str(Version.parse(version))
    store = t.store
    folder = find_version(store, model, version)
    interrupted = version in read_registry(store, t.registry_key).registry.deleting.get(model, {})
    if folder is None and not interrupted:
        raise Refused(f"{model} {version} does not exist")
    # 1. One registry compare-and-swap refuses while an alias points at the version and marks
    # it as being deleted: promote, rollback and publish move aliases with compare-and-swap
    # too, so whichever of the two writes second sees the other (never an alias on a deleted
    # version). 2. The digest index marks it deleted, before any file goes, so a promote that
    # verified it earlier and writes the registry after step 4 still refuses. 3. The files,
    # metadata.json first. 4. The registry mark is cleared.
    update_registry(store, t.registry_key, lambda registry: registry.begin_delete(model, version))
    digest = _stored_digest(store, folder)
    update_index(store, model, lambda index: index.mark_deleted(version, digest))
    if folder is not None:
        delete_folder(store, folder)
    # its monitoring baseline and feature ranges kept beside it, if any
    store.delete([baseline_sidecar_key(model, version), ranges_sidecar_key(model, version)])
    registry = update_registry(
        store, t.registry_key, lambda registry: registry.end_delete(model, version)
    )
    append_records(
        store,
        TRAINING_HISTORY_KEY,
        [
            {
                "event": "deleted",
                "model": model,
                "version": version,
                "deleted_at": utc_now(),
                "complete": folder.complete if folder is not None else False,
                "files": len(folder.keys) if folder is not None else 0,
            }
        ],
    )
    files = len(folder.keys) if folder is not None else 0
    complete = folder.complete if folder is not None else False
    result = {
        "model": model,
        "version": version,
        "deleted_files": files,
        "bytes": folder.size if folder is not None else 0,
        "was_complete": complete,
        "revision": registry.revision,
    }
    if json_output:
        print_json(result)
    else:
        state = "" if complete or folder is None else " (incomplete)"
        finished = " (finished an interrupted delete)" if folder is None else ""
        typer.echo(f"deleted {model} {version}{state}: {files} files{finished}")


def _stored_digest(store: Store, folder: VersionFolder | None) -> str | None:
    """The sha256 of a folder's metadata.json (None when it has none): kept in the index."""
    if folder is None or not folder.complete:
        return None
    try:
        blob = store.get(metadata_key(folder.model, folder.version))
    except KeyNotFound:
        return None
    assert blob is not None
    return sha256_hex(blob.data)


def validate_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@ALIAS (production).")],
    json_output: JsonOption = False,
) -> None:
    """Download a version, verify every sha256, load it and predict a probe row.

    The version's metadata digest must be recorded in its model's digest index and agree with
    the registry's where an alias names it, and the model's capture, shadow and canary
    settings must be readable. Exit code 1 if anything fails.
    """
    t = target(ctx)
    name, selector = parse_ref(ref, t)
    snapshot = read_registry(t.store, t.registry_key)
    version, registry_digest = resolve_ref(snapshot.registry, name, selector)
    digest = _cross_checked_digest(t.store, name, version, registry_digest)
    try:
        bundle, model, _ = load_verified(t.store, name, version, digest)
        meta = bundle.metadata
        row = np.zeros((1, len(meta.used_features)))
        outputs = model.predict(row).outputs[0]
    except (IntegrityError, InvalidModel) as exc:
        raise Failed(f"{name} {version} is not valid: {exc.message}") from None
    baseline = _checked_baseline(t.store, meta)
    ranges = _checked_ranges(t.store, meta)
    if meta.task == "regression":
        probe: dict[str, object] = {"prediction": float(outputs)}
        answer = f"{float(outputs):.6g}"
    else:
        best = int(np.argmax(outputs))
        probe = {
            "prediction": meta.classes[best],
            "probabilities": dict(zip(meta.classes, map(float, outputs), strict=True)),
        }
        answer = f"{meta.classes[best]} ({outputs[best]:.3f})"
    result = {
        "model": name,
        "version": version,
        "valid": True,
        "registry_digest_checked": registry_digest is not None,
        "index_digest_checked": True,
        "artifacts": len(meta.artifacts),
        "bytes": meta.artifact_bytes,
        "features": len(meta.used_features),
        "task": meta.task,
        "probe": probe,
        "baseline": baseline,
        "ranges": ranges,
    }
    # A per-model setting the registry cannot read serves as off: the version is fine, the
    # model's entry is not, and only a command repairs it.
    invalid = [
        (setting, problem)
        for model, setting, problem in snapshot.registry.invalid_settings()
        if model == name
    ]
    result["invalid_settings"] = dict(invalid)
    if json_output:
        print_json(result)
    else:
        where = "" if baseline is None else f", {baseline['where']} baseline verified"
        if ranges is not None:
            where += f", feature ranges in {ranges['where']} verified"
        typer.echo(
            f"{name} {version} is valid: {len(meta.artifacts)} artifact(s) verified, loaded, "
            f"probe row -> {answer}{where}"
        )
    if invalid:
        raise Failed(
            "; ".join(
                f"{name}: {problem} (it acts as off; `tickerserve {setting} {name} --off` "
                "repairs it)"
                for setting, problem in invalid
            )
        )


def _checked_ranges(store: Store, meta: BundleMetadata) -> dict[str, object] | None:
    """The version's feature ranges checked as the prediction function reads them (there a
    problem only turns warnings off; here it makes the version invalid, so it gets fixed)."""
    try:
        stored = load_ranges(store, meta)
    except (IntegrityError, RangesError) as exc:
        message = exc.message if isinstance(exc, IntegrityError) else str(exc)
        raise Failed(f"{meta.model} {meta.version} is not valid: its ranges: {message}") from None
    if stored is None:
        return None
    ranges = stored.ranges
    return {
        "where": stored.where,
        "quantiles": list(ranges.quantiles),
        "estimated": ranges.estimated,
        "features": len(ranges.features),
    }


def _checked_baseline(store: Store, meta: BundleMetadata) -> dict[str, object] | None:
    """The version's monitoring baseline checked like the monitor reads it: in the folder
    against metadata.json, a sidecar against the digest index's record."""
    try:
        stored = load_baseline(store, meta)
    except (IntegrityError, BaselineError) as exc:
        message = exc.message if isinstance(exc, IntegrityError) else str(exc)
        raise Failed(f"{meta.model} {meta.version} is not valid: its baseline: {message}") from None
    if stored is None:
        return None
    return {"where": stored.where, "sha256": stored.sha256, "rows": stored.baseline.rows}
