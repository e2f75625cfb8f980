"""Moving an alias to a version: the one promote path for ``tickerserve promote`` and the
monitor's ``--auto-promote``.

The target version is downloaded, every sha256 verified and the model loaded first, so an
alias never moves to a missing or corrupt bundle; the move itself is one registry
compare-and-swap that keeps the previous target in the alias history (``rollback`` undoes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tickerserve.errors import Conflict, IntegrityError, NotFound
from tickerserve.layout import Version, validate_alias, validate_model_name
from tickerserve.publishing.release import refuse_deleted
from tickerserve.publishing.version_folders import find_version
from tickerserve.storage.bundle import Bundle, read_verified_bundle
from tickerserve.storage.registry import AliasTarget, Registry, update_registry
from tickerserve.storage.store import KeyNotFound, Store
from tickerserve.storage.version_index import read_index, record_versions

if TYPE_CHECKING:
    from tickerserve.serving.model import LoadedModel


@dataclass(frozen=True)
class AliasMove:
    model: str
    alias: str
    previous: str | None
    version: str
    revision: int

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "alias": self.alias,
            "from": self.previous,
            "to": self.version,
            "revision": self.revision,
        }


def load_verified(
    store: Store, model: str, version: str, expected_sha256: str | None = None
) -> tuple[Bundle, LoadedModel, str]:
    """Download a version, verify every sha256 and load it as the runtime would.

    Returns the bundle, the loaded model and the sha256 of the stored ``metadata.json`` (the
    digest the registry records).
    """
    from tickerserve.serving.model import LoadedModel  # lightgbm: imported only when a model loads

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


def record_digest(store: Store, model: str, version: str, digest: str) -> None:
    """Make sure the digest index records ``digest`` for a version about to get an alias (a
    version written before the index existed is recorded now). ``Conflict`` for a version the
    index records as deleted or with other bytes."""
    if read_index(store, model).index.digest(version) == digest:
        return
    try:
        record_versions(store, model, {version: digest})
    except Conflict as exc:
        hint = (
            f" (its files remain: a delete was interrupted; `tickerserve delete {model} "
            f"{version}` finishes it)"
            if exc.code == "version_deleted"
            else ""
        )
        raise Conflict(f"refusing {model} {version}: {exc.message}{hint}", code=exc.code) from None


def promote(
    store: Store,
    registry_key: str,
    model: str,
    version: str,
    alias: str,
    *,
    only_if_at: str | None = None,
) -> AliasMove:
    """Point ``alias`` at ``version`` after verifying it. With ``only_if_at``, the move is
    refused (``Conflict``) unless the alias still points at that version when it is made."""
    model, alias = validate_model_name(model), validate_alias(alias)
    version = str(Version.parse(version))
    digest = load_verified(store, model, version)[2]
    record_digest(store, model, version, digest)
    before: list[AliasTarget | None] = []

    def mutate(registry: Registry) -> None:
        entry = registry.models.get(model)
        current = entry.aliases.get(alias) if entry else None
        if only_if_at is not None and (current is None or current.version != only_if_at):
            raise Conflict(
                f"{model} {alias} moved to {current.version if current else '(none)'} "
                f"since it was judged at {only_if_at}; not promoting"
            )
        before[:] = [current]
        registry.set_alias(model, alias, version, digest)  # refused while being deleted
        refuse_deleted(store, model, version)  # or deleted since it was verified

    registry = update_registry(store, registry_key, mutate)
    previous = before[0].version if before and before[0] else None
    return AliasMove(model, alias, previous, version, registry.revision)
