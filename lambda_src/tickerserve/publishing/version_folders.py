"""What version folders a store holds, found by listing keys (no metadata is read).

A version folder without ``metadata.json`` is an incomplete publish (artifacts written, then
interrupted before the marker). The registry never points at one; publishing treats its
version number as taken, listings flag it, and ``delete`` may remove it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tickerserve.layout import Version, metadata_key, parse_version_key, version_prefix
from tickerserve.storage.store import Store


@dataclass
class VersionFolder:
    """One ``{model}/versions/{version}/`` folder and the keys under it."""

    model: str
    version: str
    keys: list[str] = field(default_factory=list)
    size: int = 0

    @property
    def complete(self) -> bool:
        return metadata_key(self.model, self.version) in self.keys

    @property
    def sort_key(self) -> tuple[str, Version]:
        return self.model, Version.parse(self.version)


def scan(store: Store, prefix: str = "") -> list[VersionFolder]:
    """Every version folder whose model name starts with ``prefix``, sorted by model and
    semantic version."""
    folders: dict[tuple[str, str], VersionFolder] = {}
    for info in store.list(prefix):
        parts = parse_version_key(info.key)
        if parts is None:
            continue
        model, version, _ = parts
        folder = folders.setdefault((model, version), VersionFolder(model, version))
        folder.keys.append(info.key)
        folder.size += info.size
    return sorted(folders.values(), key=lambda f: f.sort_key)


def versions_of(store: Store, model: str) -> list[VersionFolder]:
    """The version folders of exactly one model, oldest first."""
    return [f for f in scan(store, f"{model}/") if f.model == model]


def find_version(store: Store, model: str, version: str) -> VersionFolder | None:
    prefix = version_prefix(model, version)
    infos = list(store.list(prefix))
    if not infos:
        return None
    return VersionFolder(model, version, [i.key for i in infos], sum(i.size for i in infos))


def delete_folder(store: Store, folder: VersionFolder) -> None:
    """Remove a version folder, ``metadata.json`` first: an interrupted delete leaves an
    incomplete folder (never a complete-looking one with artifacts missing)."""
    marker = [k for k in folder.keys if k == metadata_key(folder.model, folder.version)]
    if marker:
        store.delete(marker)
    rest = [k for k in folder.keys if k not in marker]
    if rest:
        store.delete(rest)
