"""Seed 000: a ``models_storage/`` tree.

```
models_storage/
  etfs/{TICKER}/production/         -> model etfs/{TICKER}, routes TICKER
      lightgbm_clean_model.pkl  label_encoder_clean.pkl  feature_names_clean.json  metadata.json
  stocks/universal/production/      -> model stocks/universal (stocks from the registry, --stocks)
  stocks/{TICKER}/production/       -> model stocks/{TICKER}, routes TICKER
  metadata/asset_registry.json      optional, see ``asset_registry``
  metadata/training_history.jsonl   optional, appended to the store's history
  metadata/monitoring_history.jsonl optional, appended to the store's history
```

Each production folder is read by ``model_folder`` and becomes one version; ``--alias``
(``production``) points at it. An empty production folder (the seed's "ready for universal
model") is noted, not skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.asset_registry import SeedEntry, parse_seed_registry
from tickerserve.cli.importers.model_folder import read_folder
from tickerserve.cli.importers.plan import Candidate, ImportOptions, ImportPlan
from tickerserve.layout import ETF_PREFIX, UNIVERSAL_STOCK_MODEL, normalize_ticker
from tickerserve.publishing.release import RouteChange
from tickerserve.storage.history import HISTORY_KEYS, parse_records

LAYOUT = "000"
DESCRIPTION = "models_storage/{etfs,stocks}/*/production/ (lightgbm_clean_model.pkl, ...)"
PRODUCTION = "production"
SIGNAL = "strategy"  # what seed 000's classifiers predict: an options strategy
SEED_REGISTRY = Path("metadata") / "asset_registry.json"
_FILE_SUFFIXES = (".joblib", ".pkl", ".pickle", ".txt", ".json")
_GROUPS = ((ETF_PREFIX, "etf"), ("stocks", "stock"))


def find_root(path: Path) -> Path | None:
    """The ``models_storage/`` folder at or right under ``path``, if it looks like one."""
    for root in (path, path / "models_storage"):
        if any((root / group).is_dir() and any((root / group).glob(f"*/{PRODUCTION}"))
               for group, _ in _GROUPS):  # fmt: skip
            return root
    return None


def plan(root: Path, options: ImportOptions) -> ImportPlan:
    """Models to publish and routes to create; refuse contradictions, note omissions."""
    result = ImportPlan(LAYOUT, root)
    models: dict[str, str] = {}  # name -> asset class
    for group, asset_class in _GROUPS:
        base = root / group
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            production = folder / PRODUCTION
            if not production.is_dir():
                result.notes.append(f"skipped {group}/{folder.name}: no {PRODUCTION}/ folder")
                continue
            name = _model_name(group, folder)
            if not any(production.iterdir()):
                result.notes.append(f"{result.relative(production)} is empty: nothing to import")
                continue
            models[name] = asset_class
            result.candidates.append(_candidate(result, name, production, asset_class, options))
    if not models and not result.notes:
        raise Refused(
            f"{root}: no model folders (expected etfs/*/production or stocks/universal/production)"
        )
    entries = _registry_entries(root, result)
    _plan_routes(result, entries, models, options)
    if options.stock_fallback:
        if UNIVERSAL_STOCK_MODEL not in models:
            raise Refused("--stock-fallback needs stocks/universal/production in the seed tree")
        result.fallbacks["stock"] = UNIVERSAL_STOCK_MODEL
    result.histories = _histories(root)
    return result


def _model_name(group: str, folder: Path) -> str:
    if group == "stocks" and folder.name == UNIVERSAL_STOCK_MODEL.split("/")[1]:
        return UNIVERSAL_STOCK_MODEL
    try:
        return f"{group}/{normalize_ticker(folder.name)}"
    except ValueError as exc:
        raise Refused(f"{folder}: {exc}") from None


def _candidate(
    result: ImportPlan, name: str, folder: Path, asset_class: str, options: ImportOptions
) -> Candidate:
    def convert() -> Any:
        return read_folder(folder, model=name, asset_class=asset_class, features=options.features)

    return Candidate(name, result.relative(folder), convert, asset_class, aliases=(options.alias,))


def _registry_entries(root: Path, result: ImportPlan) -> list[SeedEntry]:
    file = root / SEED_REGISTRY
    if not file.is_file():
        return []
    result.registry_found = True
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise Refused(f"{file}: not valid JSON ({exc})") from None
    return parse_seed_registry(raw)


def _plan_routes(
    result: ImportPlan, entries: list[SeedEntry], models: dict[str, str], options: ImportOptions
) -> None:
    names = list(models)
    listed = {e.ticker for e in entries}
    # Folders the registry does not mention are still routed: the folder names the ticker.
    for name, asset_class in models.items():
        ticker = name.split("/")[1]
        if name != UNIVERSAL_STOCK_MODEL and ticker not in listed:
            entries.append(SeedEntry(ticker, asset_class))
    for raw in options.stocks:
        try:
            ticker = normalize_ticker(raw)
        except ValueError as exc:
            raise Refused(f"--stocks: {exc}") from None
        if ticker not in {e.ticker for e in entries}:
            entries.append(SeedEntry(ticker, "stock"))
    for entry in sorted(entries, key=lambda e: e.ticker):
        routed = _route_model(entry, names)
        if routed is None:
            result.notes.append(
                f"not routed {entry.ticker} ({entry.asset_class}): no model folder for it"
            )
            continue
        signal = options.signal or SIGNAL
        result.routes.append(RouteChange(entry.ticker, entry.asset_class, routed, signal=signal))


def model_for_path(path: str, names: list[str]) -> str | None:
    """Map a seed ``model_path`` (absolute, relative, with or without a file) to a model name."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if parts and parts[-1].endswith(_FILE_SUFFIXES):
        parts.pop()
    if parts and parts[-1] == PRODUCTION:
        parts.pop()
    for name in names:
        segments = name.lower().split("/")
        if [p.lower() for p in parts[-len(segments) :]] == segments:
            return name
    return None


def _route_model(entry: SeedEntry, names: list[str]) -> str | None:
    if entry.model_path is not None:
        model = model_for_path(entry.model_path, names)
        if model is None:
            raise Refused(
                f"asset_registry.json: {entry.ticker}: model_path {entry.model_path!r} "
                "matches no model folder in the tree"
            )
        return model
    own = f"{ETF_PREFIX if entry.asset_class == 'etf' else 'stocks'}/{entry.ticker}"
    if own in names:
        return own
    if entry.asset_class == "stock" and UNIVERSAL_STOCK_MODEL in names:
        return UNIVERSAL_STOCK_MODEL
    return None


def _histories(root: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for kind, key in HISTORY_KEYS.items():
        file = root / key
        if file.is_file():
            log = parse_records(file.read_bytes())
            if log.malformed:
                raise Refused(f"{file}: {log.malformed} line(s) are not JSON objects")
            found[kind] = [{**r, "imported_from": "seed"} for r in log.records]
    return found
