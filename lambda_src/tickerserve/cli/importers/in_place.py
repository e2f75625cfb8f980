"""Seed 000's own bucket (or folder), converted where it is.

Seed 000's upload script copies ``models_storage/`` into the bucket as it is: the models in
``etfs/{T}/production/`` and ``stocks/universal/production/``, and its registry at
``metadata/asset_registry.json``, the key tickerserve's registry has. ``import-seed`` without a
path (or with the store's own folder) reads those production folders from the store, imports
them as the ``models_storage`` importer does (the files stay where they are, next to the new
``versions/``), keeps the seed's registry as ``metadata/asset_registry.seed-000.json`` and
writes tickerserve's registry over it with compare-and-swap.
"""

from __future__ import annotations

from pathlib import Path

from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.models_storage import PRODUCTION, SEED_REGISTRY
from tickerserve.errors import RegistryNeedsImport
from tickerserve.layout import ETF_PREFIX, SEED_000_REGISTRY_KEY, STOCK_PREFIX
from tickerserve.storage.registry import Registry
from tickerserve.storage.store import KeyNotFound, Store

GROUPS = (ETF_PREFIX, STOCK_PREFIX)


def seed_registry_at(store: Store, key: str) -> bytes | None:
    """The seed's own registry if ``key`` holds one (not yet converted), else None."""
    try:
        blob = store.get(key)
    except KeyNotFound:
        return None
    assert blob is not None
    try:
        Registry.from_json(blob.data)
    except RegistryNeedsImport:
        return blob.data
    except Exception:  # tickerserve's (or a broken) registry: not the seed's to replace
        return None
    return None


def seed_registry(store: Store, key: str) -> bytes | None:
    """The seed's registry: at ``key`` before the conversion, in its kept copy after it."""
    found = seed_registry_at(store, key)
    if found is not None:
        return found
    try:
        blob = store.get(SEED_000_REGISTRY_KEY)
    except KeyNotFound:
        return None
    assert blob is not None
    return blob.data


def keep_seed_registry(store: Store, key: str) -> str | None:
    """Copy the seed's registry at ``key`` to ``SEED_000_REGISTRY_KEY`` (before tickerserve's
    replaces it); the copy's key, or None when ``key`` holds no seed registry."""
    data = seed_registry_at(store, key)
    if data is None:
        return None
    store.put(SEED_000_REGISTRY_KEY, data, content_type="application/json")
    return SEED_000_REGISTRY_KEY


def materialize(store: Store, into: Path) -> Path:
    """The store's ``{etfs,stocks}/*/production/`` files (and the seed's registry) as a
    ``models_storage/`` folder under ``into``, for the ``models_storage`` importer."""
    root = into / "models_storage"
    found = 0
    for group in GROUPS:
        for info in store.list(f"{group}/"):
            parts = info.key.split("/")
            if len(parts) != 4 or parts[2] != PRODUCTION or not parts[3]:
                continue  # versions/, baselines/, index.json: tickerserve's own
            blob = store.get(info.key)
            assert blob is not None
            target = root.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob.data)
            found += 1
    if not found:
        raise Refused(
            f"{store.describe()}: nothing to import in place (no etfs/*/{PRODUCTION}/ or "
            f"stocks/*/{PRODUCTION}/ files); give the seed's folder: import-seed PATH"
        )
    return root


def write_seed_registry(root: Path, data: bytes) -> None:
    """Put the seed's registry where the ``models_storage`` importer reads it."""
    file = root / SEED_REGISTRY
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data)
