"""A seed's ``metadata/asset_registry.json`` (seed 000): which tickers it lists, their asset
class and, optionally, the path of the model that serves each. Many shapes are accepted (see
``parse_seed_registry``); contradictions are refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tickerserve.cli.errors import Refused
from tickerserve.layout import normalize_ticker
from tickerserve.storage.registry import validate_asset_class

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


@dataclass(frozen=True)
class SeedEntry:
    """One ticker of a seed registry: its asset class and, optionally, its model's path."""

    ticker: str
    asset_class: str
    model_path: str | None = None


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
        # Seed files are hand-written: surrounding blanks are forgiven here, nowhere else.
        name = normalize_ticker(ticker.strip() if isinstance(ticker, str) else ticker)
    except ValueError as exc:
        raise Refused(f"asset_registry.json: {exc}") from None
    path = _field(info, _MODEL_FIELDS)
    if path is not None and not isinstance(path, str):
        raise Refused(f"asset_registry.json: {name}: model_path must be a string")
    return SeedEntry(name, normalize_asset_class(asset_class, name), path)
