"""The asset registry: routing (ticker -> model) and aliases (model -> version).

One small JSON object at ``metadata/asset_registry.json``:

```json
{"schema": 1, "revision": 12, "updated_at": "2026-11-23T09:00:00Z",
 "tickers":   {"SMH": {"asset_class": "etf", "model": "etfs/SMH"},
               "AAPL": {"asset_class": "stock", "model": "stocks/universal"}},
 "fallbacks": {"stock": "stocks/universal"},
 "models":    {"etfs/SMH": {
     "aliases": {"production": {"version": "1.0.1", "metadata_sha256": "…", "updated_at": "…"}},
     "history": {"production": [{"version": "1.0.0", "metadata_sha256": "…", "updated_at": "…"}]}}}}
```

Every write is a compare-and-swap (``update_registry``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tickerserve.cas import ATTEMPTS, compare_and_swap
from tickerserve.errors import InvalidModel, NotFound
from tickerserve.layout import (
    Version,
    normalize_ticker,
    validate_alias,
    validate_model_name,
)
from tickerserve.store import KeyNotFound, Store

SCHEMA = 1
DEFAULT_ALIAS = "production"
HISTORY_LIMIT = 50
_ASSET_CLASS_RE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_asset_class(value: str) -> str:
    if not isinstance(value, str) or not _ASSET_CLASS_RE.match(value):
        raise ValueError(f"invalid asset class {str(value)[:20]!r}: lower-case, e.g. etf or stock")
    return value


@dataclass(frozen=True)
class AliasTarget:
    """A version an alias points (or pointed) at, with the sha256 of its metadata.json."""

    version: str
    metadata_sha256: str
    updated_at: str

    def to_dict(self) -> dict[str, str]:
        return {
            "version": self.version,
            "metadata_sha256": self.metadata_sha256,
            "updated_at": self.updated_at,
        }


@dataclass
class ModelEntry:
    aliases: dict[str, AliasTarget] = field(default_factory=dict)
    history: dict[str, list[AliasTarget]] = field(default_factory=dict)


@dataclass(frozen=True)
class TickerRoute:
    """A ticker's asset class and model; no model means "use the asset class's fallback"."""

    asset_class: str
    model: str | None


@dataclass(frozen=True)
class Route:
    """Where a ticker's predictions come from."""

    ticker: str
    model: str
    asset_class: str
    via_fallback: bool


@dataclass(frozen=True)
class Resolved:
    """A concrete model version to serve; ``alias`` is None for a pinned version."""

    model: str
    version: str
    alias: str | None
    metadata_sha256: str | None


@dataclass
class Registry:
    """The parsed, validated registry."""

    revision: int = 0
    updated_at: str = ""
    tickers: dict[str, TickerRoute] = field(default_factory=dict)
    fallbacks: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    schema: int = SCHEMA

    # -- reading ---------------------------------------------------------------------------
    def route(self, ticker: str, asset_class: str | None = None) -> Route:
        """Ticker -> model: its own entry, else the explicit fallback of its asset class.

        ``asset_class`` (from the request) only matters for a ticker the registry does not list.
        """
        entry = self.tickers.get(ticker)
        if entry is not None and entry.model is not None:
            return Route(ticker, entry.model, entry.asset_class, False)
        cls = entry.asset_class if entry is not None else asset_class
        if cls is not None and cls in self.fallbacks:
            return Route(ticker, self.fallbacks[cls], cls, True)
        if entry is not None:
            raise NotFound(
                f"ticker {ticker!r} ({cls}) has no model and no {cls} fallback is configured",
                code="unknown_ticker",
            )
        raise NotFound(
            f"unknown ticker {ticker!r}: no route in the registry", code="unknown_ticker"
        )

    def resolve(
        self, model: str, *, alias: str | None = None, version: str | None = None
    ) -> Resolved:
        """Pick the version to serve: a pinned version, else the alias (``production``)."""
        entry = self.models.get(model)
        if version is not None:
            digest = None
            if entry is not None:
                known = [t for t in entry.aliases.values() if t.version == version]
                known += [t for h in entry.history.values() for t in h if t.version == version]
                digest = known[0].metadata_sha256 if known else None
            return Resolved(model, version, None, digest)
        alias = alias or DEFAULT_ALIAS
        if entry is None or alias not in entry.aliases:
            raise NotFound(f"model {model!r} has no alias {alias!r}", code="unknown_alias")
        target = entry.aliases[alias]
        return Resolved(model, target.version, alias, target.metadata_sha256)

    def tickers_for(self, model: str) -> list[str]:
        """Tickers routed to ``model`` explicitly or through a fallback."""
        return sorted(
            t
            for t, r in self.tickers.items()
            if (r.model or self.fallbacks.get(r.asset_class)) == model
        )

    def aliases_pointing_at(self, model: str, version: str) -> list[str]:
        entry = self.models.get(model)
        if entry is None:
            return []
        return sorted(a for a, t in entry.aliases.items() if t.version == version)

    # -- writing (applied inside update_registry) ------------------------------------------
    def set_route(self, ticker: str, model: str | None, asset_class: str) -> None:
        self.tickers[normalize_ticker(ticker)] = TickerRoute(
            validate_asset_class(asset_class), None if model is None else validate_model_name(model)
        )

    def remove_route(self, ticker: str) -> bool:
        return self.tickers.pop(normalize_ticker(ticker), None) is not None

    def set_fallback(self, asset_class: str, model: str | None) -> None:
        if model is None:
            self.fallbacks.pop(validate_asset_class(asset_class), None)
        else:
            self.fallbacks[validate_asset_class(asset_class)] = validate_model_name(model)

    def set_alias(self, model: str, alias: str, version: str, metadata_sha256: str) -> None:
        """Point an alias at a version, keeping the previous target in the alias history."""
        validate_model_name(model)
        validate_alias(alias)
        Version.parse(version)
        entry = self.models.setdefault(model, ModelEntry())
        previous = entry.aliases.get(alias)
        if previous is not None and previous.version != version:
            entry.history.setdefault(alias, []).append(previous)
            del entry.history[alias][:-HISTORY_LIMIT]
        entry.aliases[alias] = AliasTarget(version, metadata_sha256, utc_now())

    def rollback_alias(self, model: str, alias: str) -> AliasTarget:
        """Move an alias back to the version it held before; that step leaves the history."""
        entry = self.models.get(model)
        history = entry.history.get(alias) if entry else None
        if entry is None or not history:
            raise NotFound(
                f"model {model!r} alias {alias!r} has no earlier version to roll back to"
            )
        target = history.pop()
        entry.aliases[alias] = AliasTarget(target.version, target.metadata_sha256, utc_now())
        return target

    def remove_alias(self, model: str, alias: str) -> None:
        entry = self.models.get(model)
        if entry is not None:
            entry.aliases.pop(alias, None)

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "tickers": {
                t: {"asset_class": r.asset_class, "model": r.model}
                for t, r in sorted(self.tickers.items())
            },
            "fallbacks": dict(sorted(self.fallbacks.items())),
            "models": {
                name: {
                    "aliases": {a: t.to_dict() for a, t in sorted(e.aliases.items())},
                    "history": {
                        a: [t.to_dict() for t in h] for a, h in sorted(e.history.items()) if h
                    },
                }
                for name, e in sorted(self.models.items())
            },
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Registry:
        """Parse and validate; any structural problem raises ``InvalidModel`` naming the field."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidModel(f"registry is not valid JSON: {exc}") from None
        try:
            return cls.from_dict(raw)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise InvalidModel(f"registry is invalid: {exc}") from None

    @classmethod
    def from_dict(cls, raw: Any) -> Registry:
        if not isinstance(raw, dict):
            raise TypeError("top level must be an object")
        schema = raw.get("schema")
        if schema != SCHEMA:
            raise ValueError(f"unsupported schema {schema!r} (this tickerserve reads {SCHEMA})")
        revision = raw.get("revision")
        if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
            raise ValueError("revision must be a non-negative integer")
        tickers = {}
        for ticker, route in _mapping(raw, "tickers").items():
            if normalize_ticker(ticker) != ticker:
                raise ValueError(f"ticker {ticker!r} must be upper case")
            model = route.get("model")
            tickers[ticker] = TickerRoute(
                validate_asset_class(route["asset_class"]),
                None if model is None else validate_model_name(model),
            )
        fallbacks = {
            validate_asset_class(k): validate_model_name(v)
            for k, v in _mapping(raw, "fallbacks").items()
        }
        models = {}
        for name, entry in _mapping(raw, "models").items():
            validate_model_name(name)
            aliases = {validate_alias(a): _target(t) for a, t in _mapping(entry, "aliases").items()}
            history = {
                validate_alias(a): [_target(t) for t in _list(h, a)]
                for a, h in _mapping(entry, "history").items()
            }
            models[name] = ModelEntry(aliases, history)
        return cls(
            revision=revision,
            updated_at=str(raw.get("updated_at", "")),
            tickers=tickers,
            fallbacks=fallbacks,
            models=models,
        )


def _mapping(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be an object")
    return value


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"history of {name} must be a list")
    return value


def _target(raw: Any) -> AliasTarget:
    if not isinstance(raw, dict):
        raise TypeError("alias target must be an object")
    version = str(Version.parse(raw["version"]))
    digest = raw["metadata_sha256"]
    if not isinstance(digest, str) or not _SHA_RE.match(digest):
        raise ValueError(f"alias target {version}: metadata_sha256 must be 64 hex characters")
    return AliasTarget(version, digest, str(raw.get("updated_at", "")))


@dataclass(frozen=True)
class RegistrySnapshot:
    """A registry as read, with the ETag a compare-and-swap write needs (None if absent)."""

    registry: Registry
    etag: str | None


def read_registry(store: Store, key: str) -> RegistrySnapshot:
    """Read the registry; an absent registry is an empty one (revision 0)."""
    try:
        blob = store.get(key)
    except KeyNotFound:
        return RegistrySnapshot(Registry(), None)
    assert blob is not None  # unconditional GET always returns content
    return RegistrySnapshot(Registry.from_json(blob.data), blob.etag)


def update_registry(
    store: Store,
    key: str,
    mutate: Callable[[Registry], object],
    *,
    attempts: int = ATTEMPTS,
) -> Registry:
    """Apply ``mutate`` with compare-and-swap, retrying from a fresh read when another writer won.

    ``mutate`` may raise to abort; nothing is written then.
    """

    def change(current: bytes | None) -> tuple[bytes, Registry]:
        before = Registry() if current is None else Registry.from_json(current)
        registry = copy.deepcopy(before)
        mutate(registry)
        registry.revision = before.revision + 1
        registry.updated_at = utc_now()
        return registry.to_json(), registry

    return compare_and_swap(store, key, change, attempts=attempts)
