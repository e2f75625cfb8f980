"""``delete`` and ``validate``: one version folder at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from tickerserve.bundle import Bundle, read_verified_bundle
from tickerserve.cli.console import JsonOption, print_json
from tickerserve.cli.errors import Failed, Refused
from tickerserve.cli.model_names import model_name
from tickerserve.cli.target import Target, target
from tickerserve.errors import Conflict, IntegrityError, InvalidModel, NotFound
from tickerserve.layout import TRAINING_HISTORY_KEY, Version
from tickerserve.publishing.history import append_records
from tickerserve.publishing.version_folders import delete_folder, find_version
from tickerserve.registry import Registry, read_registry, update_registry, utc_now
from tickerserve.store import KeyNotFound, Store
from tickerserve.version_index import read_index

if TYPE_CHECKING:
    from tickerserve.model import LoadedModel


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


def load_verified(
    store: Store, model: str, version: str, expected_sha256: str | None = None
) -> tuple[Bundle, LoadedModel, str]:
    """Download a version, verify every sha256 and load it as the runtime would.

    Returns the bundle, the loaded model and the sha256 of the stored ``metadata.json``.
    """
    from tickerserve.model import LoadedModel  # lightgbm: imported only when a model loads

    try:
        bundle, digest = read_verified_bundle(
            store, model, version, expected_sha256=expected_sha256
        )
    except KeyNotFound:
        folder = find_version(store, model, version)
        if folder is None:
            raise NotFound(f"{model} {version} does not exist") from None
        if not folder.complete:
            raise IntegrityError(f"{model} {version} is incomplete (no metadata.json)") from None
        raise IntegrityError(f"{model} {version}: an artifact is missing") from None
    return bundle, LoadedModel(bundle.metadata, bundle.files), digest


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

    The version also leaves the aliases' rollback history, and a "deleted" record is appended
    to the training history.
    """
    t = target(ctx)
    model = model_name(name, t)
    version = str(Version.parse(version))
    folder = find_version(t.store, model, version)
    if folder is None:
        raise Refused(f"{model} {version} does not exist")

    def mutate(registry: Registry) -> None:
        pointing = registry.aliases_pointing_at(model, version)
        if pointing:
            raise Conflict(
                f"refusing to delete {model} {version}: alias {', '.join(pointing)} points at it"
            )
        entry = registry.models.get(model)
        for history in entry.history.values() if entry else []:
            history[:] = [h for h in history if h.version != version]

    # Registry first (refusal check + rollback history), then the files: a rollback can never
    # land on a version that is being deleted. No registry write when it never mentions it.
    snapshot = read_registry(t.store, t.registry_key)
    registry = snapshot.registry
    if _mentions(registry, model, version):
        registry = update_registry(t.store, t.registry_key, mutate)
    delete_folder(t.store, folder)
    append_records(
        t.store,
        TRAINING_HISTORY_KEY,
        [
            {
                "event": "deleted",
                "model": model,
                "version": version,
                "deleted_at": utc_now(),
                "complete": folder.complete,
                "files": len(folder.keys),
            }
        ],
    )
    result = {
        "model": model,
        "version": version,
        "deleted_files": len(folder.keys),
        "bytes": folder.size,
        "was_complete": folder.complete,
        "revision": registry.revision,
    }
    if json_output:
        print_json(result)
    else:
        state = "" if folder.complete else " (incomplete)"
        typer.echo(f"deleted {model} {version}{state}: {len(folder.keys)} files")


def _mentions(registry: Registry, model: str, version: str) -> bool:
    entry = registry.models.get(model)
    if entry is None:
        return False
    targets = [*entry.aliases.values(), *(t for h in entry.history.values() for t in h)]
    return any(t.version == version for t in targets)


def validate_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@ALIAS (production).")],
    json_output: JsonOption = False,
) -> None:
    """Download a version, verify every sha256, load it and predict a probe row.

    The version's metadata digest must be recorded in its model's digest index and agree with
    the registry's where an alias names it. Exit code 1 if anything fails.
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
    }
    if json_output:
        print_json(result)
        return
    typer.echo(
        f"{name} {version} is valid: {len(meta.artifacts)} artifact(s) verified, loaded, "
        f"probe row -> {answer}"
    )
