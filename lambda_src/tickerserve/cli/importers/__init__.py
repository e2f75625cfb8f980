"""Seed importers, one module per layout, named after what it reads:

| layout | module | what it reads |
|---|---|---|
| 000 | ``models_storage`` | ``models_storage/{etfs,stocks}/*/production/`` |
| 001 | ``run_dirs`` | ``models/{model_type}/{symbol}/{run_id}/`` + ``latest`` |
| 002 | ``dated_ensembles`` | ``trained_models/{SYMBOL}_{timeframe}_{YYYYMMDD}.pkl`` |
| 003 | ``ab_models`` | ``models/model_90pct.pkl`` + ``model_100pct.pkl`` + baselines |
| 004 | ``sqlite_registry`` | ``registry.db`` + joblib files |

Each module has ``LAYOUT``, ``DESCRIPTION``, ``find_root(path)`` (the folder it would import,
recognised by the seed's own file names, or None) and ``plan(root, options)`` (an
``ImportPlan``). Every model goes through ``publishing.conversion`` into the same bundle;
``publication`` publishes a plan. A new layout is one more module in ``IMPORTERS``.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from tickerserve.cli.errors import Refused
from tickerserve.cli.importers import (
    ab_models,
    dated_ensembles,
    models_storage,
    run_dirs,
    sqlite_registry,
)

IMPORTERS: dict[str, ModuleType] = {
    m.LAYOUT: m for m in (models_storage, run_dirs, dated_ensembles, ab_models, sqlite_registry)
}


def detect(path: Path, layout: str | None = None) -> tuple[ModuleType, Path]:
    """The importer for ``path`` (or the one ``layout`` names) and the folder it imports."""
    if not path.exists():
        raise Refused(f"{path}: no such file or folder")
    if layout is not None:
        importer = IMPORTERS.get(layout)
        if importer is None:
            raise Refused(f"--layout {layout!r}: one of {', '.join(IMPORTERS)}")
        root = importer.find_root(path)
        if root is None:
            raise Refused(f"{path}: not a seed {layout} layout (expected {importer.DESCRIPTION})")
        return importer, root
    found = [(m, root) for m in IMPORTERS.values() if (root := m.find_root(path)) is not None]
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(f"{m.LAYOUT} ({root})" for m, root in found)
        raise Refused(f"{path} looks like several seed layouts: {names}; pick one with --layout")
    expected = "; ".join(f"{m.LAYOUT}: {m.DESCRIPTION}" for m in IMPORTERS.values())
    raise Refused(f"{path}: no seed layout recognised (expected {expected})")
