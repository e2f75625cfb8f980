"""Seed 004: a SQLite model registry, ``registry.db`` beside joblib files.

Table ``models``: model_id, model_name, model_type, version (semver), metrics (JSON),
hyperparameters (JSON), file_path, created_at, description; files are named
``{model_type}_{version_with_underscores}.pkl`` (e.g. an ``XGBClassifier``).

Every registry name must be mapped to a model (``--map NAME=MODEL``; an unmapped name refuses
the import, listing the names). Rows keep their own semver; the highest version of each model
gets ``--alias`` (``production``). A version the store already holds with other content
refuses the import unless ``--skip-existing``. A ``file_path`` that does not exist (the
registry moved, or came from another machine) is looked up by its file name in the
registry's folder. ``--route TICKER[=MODEL]`` routes tickers.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.plan import (
    Candidate,
    ImportOptions,
    ImportPlan,
    Skipped,
    routes_from_flags,
)
from tickerserve.layout import ETF_PREFIX, Version, validate_model_name
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.recipe import (
    Converted,
    Recipe,
    convert_pickle,
)
from tickerserve.publishing.conversion.seed_metadata import jsonable, scalars

LAYOUT = "004"
DESCRIPTION = "registry.db (SQLite, table models) beside {model_type}_{version}.pkl files"
DATABASE = "registry.db"
SIGNAL = "strategy"  # the registry says nothing about what its models predict
COLUMNS = ("model_id", "model_name", "model_type", "version", "metrics", "hyperparameters",
           "file_path", "created_at", "description")  # fmt: skip


def find_root(path: Path) -> Path | None:
    if path.is_file() and path.name == DATABASE:
        return path.parent
    for root in (path, path / "registry", path / "data/models/registry"):
        if (root / DATABASE).is_file():
            return root
    return None


@dataclass(frozen=True)
class Row:
    """One row of the seed's ``models`` table."""

    model_id: Any
    name: str
    model_type: str
    version: str
    metrics: Any
    hyperparameters: Any
    file_path: str
    created_at: str
    description: str


def read_rows(database: Path) -> list[Row]:
    """Every row of ``models``; a database without that table (or its columns) is refused."""
    try:
        # Read-only: importing never changes the seed's registry.
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(
                f"SELECT {', '.join(COLUMNS)} FROM models ORDER BY model_id"
            ).fetchall()
    except sqlite3.Error as exc:
        raise Refused(f"{database}: not a seed model registry ({exc})") from None
    return [
        Row(r["model_id"], str(r["model_name"]), str(r["model_type"]), str(r["version"]),
            r["metrics"], r["hyperparameters"], str(r["file_path"] or ""),
            str(r["created_at"] or ""), str(r["description"] or ""))
        for r in rows
    ]  # fmt: skip


def plan(root: Path, options: ImportOptions) -> ImportPlan:
    result = ImportPlan(LAYOUT, root)
    rows = read_rows(root / DATABASE)
    names = sorted({r.name for r in rows})
    unmapped = [n for n in names if n not in options.mapping]
    if unmapped:
        raise Refused(
            f"{DATABASE} holds models named {', '.join(names)}; map each to a tickerserve model "
            f"with --map NAME=MODEL (unmapped: {', '.join(unmapped)})"
        )
    unknown = sorted(set(options.mapping) - set(names))
    if unknown:
        raise Refused(
            f"--map {unknown[0]}: {DATABASE} has no model named {unknown[0]!r} "
            f"(it has {', '.join(names)})"
        )
    for target in options.mapping.values():
        validate_model_name(target)
    highest: dict[str, Version] = {}
    seen: set[tuple[str, str]] = set()
    versions: list[tuple[Row, str, Version]] = []
    for row in rows:
        model = options.mapping[row.name]
        source = f"{DATABASE} model_id {row.model_id} ({row.name} {row.version})"
        try:
            version = Version.parse(row.version)
        except ValueError as exc:
            result.skipped.append(Skipped(source, str(exc)))
            continue
        if (model, str(version)) in seen:
            result.skipped.append(Skipped(source, f"{model} {version} is listed twice"))
            continue
        seen.add((model, str(version)))
        versions.append((row, model, version))
        highest[model] = max(highest.get(model, version), version)
    for row, model, version in versions:
        asset_class = "etf" if model.startswith(f"{ETF_PREFIX}/") else "stock"
        result.candidates.append(
            Candidate(
                model,
                f"{DATABASE} model_id {row.model_id} ({row.name} {row.version})",
                _converter(root, row, model, asset_class, options),
                asset_class,
                order=(version,),
                version=str(version),
                aliases=(options.alias,) if version == highest[model] else (),
                origin={
                    "registry_model_id": jsonable(row.model_id),
                    "registry_name": row.name,
                    "registry_version": row.version,
                    "description": row.description,
                },
            )
        )
    result.routes = routes_from_flags(options, sorted(set(options.mapping.values())), SIGNAL)
    return result


def locate(root: Path, file_path: str) -> Path | None:
    """``file_path`` as recorded, relative to the registry's folder, or by its file name there."""
    if not file_path:
        return None
    recorded = Path(file_path)
    candidates = [recorded] if recorded.is_absolute() else [root / recorded, recorded]
    # A path from another machine (or Windows): its last segment, in the registry's folder.
    candidates.append(root / PureWindowsPath(file_path).name)
    return next((p for p in candidates if p.is_file()), None)


def _converter(
    root: Path, row: Row, model: str, asset_class: str, options: ImportOptions
) -> Callable[[], Converted]:
    def run() -> Converted:
        file = locate(root, row.file_path)
        if file is None:
            raise NotConvertible(
                f"{row.file_path or '(no file_path)'} not found, nor "
                f"{PureWindowsPath(row.file_path).name or 'it'} in {root}"
            )
        return convert_pickle(
            file, model=model, asset_class=asset_class, fallback_names=options.features,
            label=file.name, adjust=lambda recipe: _from_row(recipe, row),
        )  # fmt: skip

    return run


def _from_row(recipe: Recipe, row: Row) -> None:
    """What the registry's row says about the model: its metrics, hyperparameters, date."""
    if type(recipe.first).__name__ != row.model_type:
        recipe.notes.append(
            f"the registry says {row.model_type}, the file holds {type(recipe.first).__name__}"
        )
    recipe.metrics = _metrics(row.metrics)
    recipe.hyperparameters = _json_scalars(row.hyperparameters)
    recipe.created_at = row.created_at


def _load(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _metrics(raw: Any) -> dict[str, float]:
    return {
        str(k): float(v)
        for k, v in _load(raw).items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def _json_scalars(raw: Any) -> dict[str, Any]:
    return scalars(_load(raw))
