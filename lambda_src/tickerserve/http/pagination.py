"""``GET /models`` one page at a time, by ticker route.

The registry may route a million tickers; one answer listing them all would exceed Lambda's
6 MB response limit. A page holds at most ``limit`` route rows (default 100, at most 1,000)
and never more than 1 MiB however long the names and however many aliases the models carry,
plus the aliases of the models its rows name. ``next`` is an opaque token (the key of the
last row, so a registry that changes between pages neither repeats nor skips a row that
stayed); it is null on the last page.

Rows come in one order: every ticker (sorted), its signals (sorted), each with its default
route and then its timeframe routes; then the asset-class fallbacks (``ticker`` null, on the
default signal of the tickers they answer for); then models no route names (``ticker``,
``signal`` and ``asset_class`` null). ``default`` marks the row that answers a request naming
neither signal nor timeframe.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tickerserve.contract import DEFAULT_SIGNAL, LIMITS, MODEL_NAME, NAMES
from tickerserve.errors import BadRequest
from tickerserve.storage.registry import Registry

_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
TICKERS, FALLBACKS, UNROUTED = range(3)
# (section, ticker / asset class / model, signal or "", timeframe or "")
Key = tuple[int, str, str, str]
_MAX_TOKEN_CHARS = 300  # the longest token: "m~" + a 259-character model name + "~~"


@dataclass(frozen=True)
class _Index:
    """The sorted keys of one registry, computed once per registry (a million tickers take
    a second to sort; every page after the first reuses them)."""

    registry: Registry
    tickers: list[str]
    fallbacks: list[str]
    unrouted: list[str]


_cache: list[_Index] = []
_cache_lock = threading.Lock()


def _index(registry: Registry) -> _Index:
    with _cache_lock:
        if _cache and _cache[0].registry is registry:
            return _cache[0]
    named = set(registry.fallbacks.values())
    for route in registry.tickers.values():
        named.update(model for _, _, model in route.routes())
    index = _Index(
        registry,
        sorted(registry.tickers),
        sorted(registry.fallbacks),
        sorted(m for m in registry.models if m not in named),
    )
    with _cache_lock:
        _cache[:] = [index]
    return index


def _rows(registry: Registry, after: Key | None) -> Iterator[tuple[Key, dict[str, Any]]]:
    """Every route row after ``after`` (from the start when None), in page order."""
    index = _index(registry)
    section, name, _, _ = after if after is not None else (TICKERS, "", "", "")
    if section == TICKERS:
        start = bisect.bisect_left(index.tickers, name) if after is not None else 0
        for ticker in index.tickers[start:]:
            for key, row in _ticker_rows(registry, ticker):
                if after is None or key > after:
                    yield key, row
    if section <= FALLBACKS:
        start = bisect.bisect_right(index.fallbacks, name) if section == FALLBACKS else 0
        for cls in index.fallbacks[start:]:
            row = _row(None, DEFAULT_SIGNAL, None, cls, registry.fallbacks[cls], True, True)
            yield (FALLBACKS, cls, "", ""), row
    start = bisect.bisect_right(index.unrouted, name) if section == UNROUTED else 0
    for model in index.unrouted[start:]:
        yield (UNROUTED, model, "", ""), _row(None, None, None, None, model, False, False)


def _ticker_rows(registry: Registry, ticker: str) -> list[tuple[Key, dict[str, Any]]]:
    """The ticker's rows in key order (signal, then its default route before timeframes)."""
    route = registry.tickers[ticker]
    cls, default = route.asset_class, route.default_signal
    rows = []
    if default not in route.signals:  # the asset class's fallback answers there, if it has one
        model = registry.fallbacks.get(cls)
        rows.append(
            ((TICKERS, ticker, default, ""), _row(ticker, default, None, cls, model, True, True))
        )
    for signal, own in route.signals.items():
        if own.model is not None:
            row = _row(ticker, signal, None, cls, own.model, False, signal == default)
            rows.append(((TICKERS, ticker, signal, ""), row))
        for timeframe, model in own.timeframes.items():
            row = _row(ticker, signal, timeframe, cls, model, False, False)
            rows.append(((TICKERS, ticker, signal, timeframe), row))
    return sorted(rows, key=lambda item: item[0])


def _row(
    ticker: str | None,
    signal: str | None,
    timeframe: str | None,
    asset_class: str | None,
    model: str | None,
    via_fallback: bool,
    default: bool,
) -> dict[str, Any]:
    return {
        "ticker": ticker,
        "signal": signal,
        "timeframe": timeframe,
        "asset_class": asset_class,
        "model": model,
        "via_fallback": via_fallback,
        "default": default,
    }


def page(registry: Registry, *, limit: int, after: Key | None) -> dict[str, Any]:
    """One page of route rows after ``after``, with the aliases of the models they name."""
    body: dict[str, Any] = {
        "revision": registry.revision,
        "updated_at": registry.updated_at,
        "routes": [],
        "models": [],
        "next": None,
    }
    # What the answer costs apart from the rows and models, with room for the longest token.
    used = len(_dumps(body)) + _MAX_TOKEN_CHARS
    models: dict[str, dict[str, Any]] = {}
    last: Key | None = None  # the key of the last row on this page: the next page starts after
    for key, row in _rows(registry, after):
        model = row["model"]
        entry = None if model is None or model in models else _model_entry(registry, model)
        cost = len(_dumps(row)) + 1 + (len(_dumps(entry)) + 1 if entry is not None else 0)
        full = len(body["routes"]) == limit or used + cost > LIMITS.models_page_bytes
        if last is not None and full:
            body["next"] = encode_token(last)
            break
        if entry is not None and used + cost > LIMITS.models_page_bytes:
            entry = _truncated(entry, LIMITS.models_page_bytes - used - len(_dumps(row)) - 2)
            cost = len(_dumps(row)) + len(_dumps(entry)) + 2
        body["routes"].append(row)
        if entry is not None:
            models[model] = entry
        used += cost
        last = key
    body["models"] = [models[name] for name in sorted(models)]
    return body


def _model_entry(registry: Registry, model: str) -> dict[str, Any]:
    entry = registry.models.get(model)
    aliases = sorted(entry.aliases.items()) if entry is not None else []
    return {"name": model, "aliases": {alias: t.version for alias, t in aliases}}


def _truncated(entry: dict[str, Any], budget: int) -> dict[str, Any]:
    """A model entry whose aliases alone would overflow a page: as many as fit, flagged."""
    kept: dict[str, str] = {}
    out = {"name": entry["name"], "aliases": kept, "aliases_truncated": True}
    used = len(_dumps(out))
    for alias, version in entry["aliases"].items():
        used += len(_dumps(alias)) + len(_dumps(version)) + 2  # "alias":"version",
        if used > budget:
            break
        kept[alias] = version
    return out


# -- the next token ---------------------------------------------------------------------------
# The key of the last row of a page, ``{section}~{name}~{signal}~{timeframe}``
# (``t~AAPL~direction~h1``, ``f~stock~~``, ``m~etfs/SMH~~``): opaque to clients (pass it
# back unchanged), and such that every string the documented pattern allows names a position
# (the rows after it), so a schema-driven client never gets a 400 for a token the document
# says is valid.
_SECTIONS = {"t": TICKERS, "f": FALLBACKS, "m": UNROUTED}
_LETTERS = {number: letter for letter, number in _SECTIONS.items()}
_SEGMENT = MODEL_NAME.segment.pattern
_MODEL = f"{_SEGMENT}(?:/{_SEGMENT}){{0,{MODEL_NAME.max_segments - 1}}}"
TOKEN_PATTERN = (
    f"(t)~({NAMES['ticker'].pattern.pattern})~({NAMES['signal'].pattern.pattern})"
    f"~((?:{NAMES['timeframe'].pattern.pattern})?)"
    f"|(f)~({NAMES['asset_class'].pattern.pattern})~()~()"
    f"|(m)~({_MODEL})~()~()"
)
_TOKEN_RE = re.compile(TOKEN_PATTERN)


def encode_token(key: Key) -> str:
    section, name, signal, timeframe = key
    return f"{_LETTERS[section]}~{name}~{signal}~{timeframe}"


def decode_token(token: object) -> Key:
    """The key a ``next`` token names; ``BadRequest`` (``invalid_next``) for anything else."""
    match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise BadRequest(
            "next is not a token from an earlier GET /models page", code="invalid_next"
        )
    letter, name, signal, timeframe = (g for g in match.groups() if g is not None)
    return _SECTIONS[letter], name, signal, timeframe


def parse_limit(raw: object) -> int:
    """``limit``: 1 to 1,000 (default 100), as a query string or a direct-invoke number."""
    if raw is None:
        return LIMITS.models_page_default
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 6:
        value: object = int(raw)
    else:
        value = raw
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= LIMITS.models_page_max
    ):
        raise BadRequest(
            f"limit must be an integer from 1 to {LIMITS.models_page_max}", code="invalid_limit"
        )
    return value
