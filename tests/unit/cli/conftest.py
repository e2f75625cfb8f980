"""Fixtures of the command-line tests: a local folder store and seed-style model folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli_support import ts
from tests.seed_support import seed_folder, seed_models
from tickerserve.layout import artifact_key
from tickerserve.storage.store import LocalStore


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def seed(tmp_path: Path) -> dict[str, Any]:
    """Seed-style folders (pickled LightGBM, label encoder, feature names) for SMH and the
    universal stock model."""
    m = seed_models()
    return {
        "smh": seed_folder(tmp_path / "seed/smh", m.smh, m.smh_encoder),
        "universal": seed_folder(tmp_path / "seed/universal", m.universal, m.universal_encoder),
    }


@pytest.fixture
def two_versions(store_path, seed):
    """etfs/SMH 1.0.0 (production) and 1.0.1 (no alias), SMH routed."""
    ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH", "--alias", "production")
    ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH")
    assert ts(store_path, "route", "SMH", "--model", "etfs/SMH").exit_code == 0
    return store_path


@pytest.fixture
def versions_store(store_path, seed):
    """SMH 1.0.0 (accuracy .61, production), SMH 1.0.1 (accuracy .7), universal 1.0.0 (.52),
    and an incomplete SMH 1.0.2."""
    ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH", "--alias", "production")
    ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH", "--metrics", "accuracy=0.7")
    ts(
        store_path,
        "publish",
        str(seed["universal"]),
        "--model",
        "stocks/universal",
        "-a",
        "production",
        "--metrics",
        "accuracy=0.52",
    )
    ts(store_path, "route", "AAPL", "MSFT", "--model", "stocks/universal")
    LocalStore(store_path).put(artifact_key("etfs/SMH", "1.0.2", "model.txt"), b"partial")
    return store_path
