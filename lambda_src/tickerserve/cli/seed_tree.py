"""Read a seed ``models_storage/`` tree: which model folders it has, and which tickers route
to which model (from ``metadata/asset_registry.json`` when present, else inferred).

Tree:

```
models_storage/
  etfs/{TICKER}/production/         one model per ETF -> model etfs/{TICKER}, routes TICKER
  stocks/universal/production/      the shared stock model -> model stocks/universal
  stocks/{TICKER}/production/       a per-stock model (optional) -> model stocks/{TICKER}
  metadata/asset_registry.json      optional, see parse_seed_registry
  metadata/training_history.jsonl   optional, copied into the store's history
  metadata/monitoring_history.jsonl optional, copied into the store's history
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickerserve.cli.errors import Refused
from tickerserve.layout import ETF_PREFIX, UNIVERSAL_STOCK_MODEL, normalize_ticker
from tickerserve.publishing.history import HISTORY_KEYS, parse_records
from tickerserve.publishing.release import RouteChange
from tickerserve.registry import validate_asset_class

PRODUCTION = "production"
SEED_REGISTRY = Path("metadata") / "asset_registry.json"
_ASSET_CLASSES = {
    "etf": "etf",
    "etfs": "etf",
    "fund": "etf",
    "stock": "stock",
    "stocks": "stock",
    "equity": "stock",
    "equities": "stock",
    "single_stock": "stock",
}
_CLASS_FIELDS = ("asset_class", "type", "asset_type", "class", "category")
_MODEL_FIELDS = ("model_path", "model", "path", "model_dir")
_TICKER_FIELDS = ("ticker", "symbol")
_WRAPPERS = ("tickers", "assets", "registry", "symbols")
_FILE_SUFFIXES = (".joblib", ".pkl", ".pickle", ".txt", ".json")


@dataclass(frozen=True)
class SeedEntry:
    """One ticker of a seed registry: its asset class and, optionally, its model's path."""

    ticker: str
    asset_class: str
    model_path: str | None = None


@dataclass(frozen=True)
class SeedModel:
    """A model folder of the tree and the model name it is published as."""

    name: str
    folder: Path
    asset_class: str


@dataclass
class SeedPlan:
    """What an import would publish and route."""

    root: Path
    models: list[SeedModel] = field(default_factory=list)
    routes: list[RouteChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    registry_found: bool = False


def normalize_asset_class(raw: object, ticker: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise Refused(f"asset_registry.json: {ticker} has no asset class (asset_class or type)")
    value = raw.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return _ASSET_CLASSES.get(value) or validate_asset_class(value)
    except ValueError as exc:
        raise Refused(f"asset_registry.json: {ticker}: {exc}") from None


def parse_seed_registry(raw: Any) -> list[SeedEntry]:
    """Accepted shapes (keys case-insensitive where noted):

    - grouped: ``{"etfs": [...] | {T: {...}|"path"|null}, "stocks": [...] | {...}}``
      (group keys etf/etfs, stock/stocks/equities);
    - per ticker: ``{"SMH": {"asset_class"|"type": "etf", "model_path": "etfs/SMH/production"}}``;
    - either of those wrapped: ``{"tickers"|"assets"|"registry": ...}`` (a tickerserve
      registry's ``tickers`` reads this way too);
    - a list: ``[{"ticker"|"symbol": "SMH", "asset_class"|"type": "etf", "model_path"?: ...}]``.

    Scalar top-level fields (``version``, ``updated_at`` ...) are ignored. A ticker listed twice
    with different asset classes, an invalid ticker or a missing asset class is refused.
    """
    entries: list[SeedEntry] = []
    _collect(raw, entries, depth=0)
    seen: dict[str, SeedEntry] = {}
    for entry in entries:
        previous = seen.get(entry.ticker)
        if previous is not None and previous != entry:
            raise Refused(
                f"asset_registry.json: {entry.ticker} is listed twice "
                f"({previous.asset_class} and {entry.asset_class})"
            )
        seen[entry.ticker] = entry
    return list(seen.values())


def _collect(raw: Any, out: list[SeedEntry], depth: int) -> None:
    if depth > 2:
        raise Refused("asset_registry.json: nested too deeply to be a registry")
    if isinstance(raw, list):
        for item in raw:
            if not isinstance(item, dict):
                raise Refused("asset_registry.json: list items must be objects with a ticker")
            ticker = _field(item, _TICKER_FIELDS)
            if ticker is None:
                raise Refused("asset_registry.json: a list item has no ticker (or symbol)")
            out.append(_entry(ticker, _field(item, _CLASS_FIELDS), item))
        return
    if not isinstance(raw, dict):
        raise Refused("asset_registry.json: must be a JSON object or list")
    lowered = {str(k).lower(): v for k, v in raw.items()}
    for wrapper in _WRAPPERS:
        if isinstance(lowered.get(wrapper), dict | list):
            _collect(lowered[wrapper], out, depth + 1)
            return
    groups = {
        k: v for k, v in lowered.items() if k in _ASSET_CLASSES and isinstance(v, dict | list)
    }
    if groups:
        for key, members in groups.items():
            _group(_ASSET_CLASSES[key], members, out)
        return
    for ticker, value in raw.items():
        if isinstance(value, dict):
            out.append(_entry(ticker, _field(value, _CLASS_FIELDS), value))


def _group(asset_class: str, members: Any, out: list[SeedEntry]) -> None:
    if isinstance(members, list):
        for ticker in members:
            if isinstance(ticker, dict):
                name = _field(ticker, _TICKER_FIELDS)
                if name is None:
                    raise Refused("asset_registry.json: a group item has no ticker (or symbol)")
                out.append(_entry(name, asset_class, ticker))
            else:
                out.append(_entry(ticker, asset_class, {}))
        return
    for ticker, value in members.items():
        if isinstance(value, str):
            out.append(_entry(ticker, asset_class, {"model_path": value}))
        elif value is None or isinstance(value, dict | bool):
            info = value if isinstance(value, dict) else {}
            out.append(_entry(ticker, _field(info, _CLASS_FIELDS) or asset_class, info))
        else:
            raise Refused(f"asset_registry.json: {ticker}: expected an object, a path or null")


def _field(info: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if info.get(name) is not None:
            return info[name]
    return None


def _entry(ticker: Any, asset_class: Any, info: dict[str, Any]) -> SeedEntry:
    try:
        name = normalize_ticker(ticker)
    except ValueError as exc:
        raise Refused(f"asset_registry.json: {exc}") from None
    path = _field(info, _MODEL_FIELDS)
    if path is not None and not isinstance(path, str):
        raise Refused(f"asset_registry.json: {name}: model_path must be a string")
    return SeedEntry(name, normalize_asset_class(asset_class, name), path)


# -- the tree ------------------------------------------------------------------------------
def seed_root(path: Path) -> Path:
    """Accept the ``models_storage/`` folder itself or a folder that contains it."""
    if not path.is_dir():
        raise Refused(f"{path}: not a folder")
    inner = path / "models_storage"
    if inner.is_dir() and not (path / "etfs").is_dir() and not (path / "stocks").is_dir():
        return inner
    return path


def find_models(root: Path, notes: list[str]) -> list[SeedModel]:
    """Every ``{etfs|stocks}/{NAME}/production/`` folder, as the model it becomes."""
    models: list[SeedModel] = []
    for group, asset_class in ((ETF_PREFIX, "etf"), ("stocks", "stock")):
        base = root / group
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            production = folder / PRODUCTION
            if not production.is_dir():
                notes.append(f"skipped {group}/{folder.name}: no {PRODUCTION}/ folder")
                continue
            if group == "stocks" and folder.name == UNIVERSAL_STOCK_MODEL.split("/")[1]:
                models.append(SeedModel(UNIVERSAL_STOCK_MODEL, production, "stock"))
                continue
            try:
                ticker = normalize_ticker(folder.name)
            except ValueError as exc:
                raise Refused(f"{folder}: {exc}") from None
            models.append(SeedModel(f"{group}/{ticker}", production, asset_class))
    return models


def _model_for_path(path: str, names: list[str]) -> str | None:
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


def plan_tree(path: Path, *, stocks: list[str]) -> SeedPlan:
    """Models to publish and routes to create; refuse contradictions, note omissions."""
    root = seed_root(path)
    plan = SeedPlan(root)
    plan.models = find_models(root, plan.notes)
    if not plan.models:
        raise Refused(
            f"{root}: no model folders (expected etfs/*/production or stocks/universal/production)"
        )
    names = [m.name for m in plan.models]
    registry_file = root / SEED_REGISTRY
    entries: list[SeedEntry] = []
    if registry_file.is_file():
        plan.registry_found = True
        try:
            raw = json.loads(registry_file.read_text())
        except (OSError, ValueError) as exc:
            raise Refused(f"{registry_file}: not valid JSON ({exc})") from None
        entries = parse_seed_registry(raw)
    listed = {e.ticker for e in entries}
    # ETF folders the registry does not mention are still routed: the folder names the ticker.
    for model in plan.models:
        ticker = model.name.split("/")[1]
        if model.name != UNIVERSAL_STOCK_MODEL and ticker not in listed:
            entries.append(SeedEntry(ticker, model.asset_class))
    for raw_ticker in stocks:
        try:
            ticker = normalize_ticker(raw_ticker)
        except ValueError as exc:
            raise Refused(f"--stocks: {exc}") from None
        if ticker not in {e.ticker for e in entries}:
            entries.append(SeedEntry(ticker, "stock"))
    for entry in sorted(entries, key=lambda e: e.ticker):
        routed = _route_model(entry, names)
        if routed is None:
            plan.notes.append(
                f"not routed {entry.ticker} ({entry.asset_class}): no model folder for it"
            )
            continue
        plan.routes.append(RouteChange(entry.ticker, entry.asset_class, routed))
    plan.histories = _histories(root)
    return plan


def _route_model(entry: SeedEntry, names: list[str]) -> str | None:
    if entry.model_path is not None:
        model = _model_for_path(entry.model_path, names)
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
