"""Seed 000's own bucket read where it is: its production/ files as a models_storage/ tree, its
registry found (or found again in its kept copy), tickerserve's own registry left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

import tickerserve.cli.importers.in_place as in_place
from tests.seed_layouts import write_seed_000
from tickerserve.cli.errors import Refused
from tickerserve.layout import SEED_000_REGISTRY_KEY
from tickerserve.storage.registry import Registry
from tickerserve.storage.store import LocalStore

REGISTRY = "metadata/asset_registry.json"


@pytest.fixture
def bucket(tmp_path: Path) -> LocalStore:
    """A store holding seed 000's models_storage/ as its upload script copies it."""
    storage = write_seed_000(tmp_path / "seed")
    store = LocalStore(tmp_path / "bucket")
    for file in sorted(p for p in storage.rglob("*") if p.is_file()):
        store.put(file.relative_to(storage).as_posix(), file.read_bytes())
    return store


def test_the_production_files_become_a_models_storage_tree(bucket, tmp_path):
    # A version folder beside them is tickerserve's own, not the seed's
    bucket.put("etfs/SMH/versions/1.0.0/metadata.json", b"{}")
    root = in_place.materialize(bucket, tmp_path / "scratch")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == [
        "etfs/SMH/production/feature_names_clean.json",
        "etfs/SMH/production/label_encoder_clean.pkl",
        "etfs/SMH/production/lightgbm_clean_model.pkl",
        "etfs/SMH/production/metadata.json",
    ]


def test_the_seed_registry_is_kept_once_and_found_again_in_its_copy(bucket):
    seed = bucket.get(REGISTRY).data
    assert in_place.seed_registry_at(bucket, REGISTRY) == seed
    assert in_place.keep_seed_registry(bucket, REGISTRY) == SEED_000_REGISTRY_KEY
    assert bucket.get(SEED_000_REGISTRY_KEY).data == seed
    # Once tickerserve's registry is at the key, the seed's is read from its copy
    bucket.put(REGISTRY, Registry().to_json())
    assert in_place.seed_registry_at(bucket, REGISTRY) is None
    assert in_place.keep_seed_registry(bucket, REGISTRY) is None
    assert in_place.seed_registry(bucket, REGISTRY) == seed


def test_a_store_without_production_files_has_nothing_to_import(tmp_path):
    empty = LocalStore(tmp_path / "empty")
    with pytest.raises(Refused, match="nothing to import in place"):
        in_place.materialize(empty, tmp_path / "scratch")
    assert in_place.seed_registry(empty, REGISTRY) is None
