"""The asset registry: routing (ticker x signal x timeframe -> model) and aliases (model ->
version).

One small JSON object at ``metadata/asset_registry.json``:

```json
{"schema": 3, "revision": 12, "updated_at": "2026-11-23T09:00:00Z",
 "tickers":   {"SMH": {"asset_class": "etf", "default_signal": "strategy",
                       "signals": {"strategy": {"model": "etfs/SMH"}}},
               "SPY": {"asset_class": "etf", "default_signal": "strategy",
                       "signals": {"strategy": {"model": "etfs/SPY"},
                                   "volatility": {"model": "etfs/SPY/volatility"},
                                   "direction": {"model": "etfs/SPY/d1",
                                                 "timeframes": {"d1": "etfs/SPY/d1",
                                                                "h1": "etfs/SPY/h1"}}}}},
 "fallbacks": {"stock": "stocks/universal"},
 "models":    {"etfs/SMH": {
     "aliases": {"production": {"version": "1.0.1", "metadata_sha256": "…", "updated_at": "…"}},
     "history": {"production": [{"version": "1.0.0", "metadata_sha256": "…", "updated_at": "…"}]},
     "capture": {"sample": 0.25},
     "shadow":  {"alias": "challenger", "sample": 1.0},
     "canary":  {"alias": "canary", "weight": 0.1}}}}
```

A route is keyed by ticker, signal and timeframe. A *signal* names what a model predicts for
the ticker (``strategy``, ``volatility``, ``direction``, ...; the rule is in ``contract.json``);
each ticker has a ``default_signal``, which answers requests that name none. Within a signal,
``model`` is its default route (a request naming no timeframe) and ``timeframes`` routes named
timeframes (``d1``, ``h4``, ...) to their own models. A fallback (per asset class) answers on
a ticker's default signal when the ticker has no route of its own there.

Schemas 1 and 2 (no signals) are read as every route on the contract's default signal
(``strategy``) and written back as schema 3; a newer schema is refused. Fields this version
does not know are kept on every write (top level, per ticker, per signal, per model), so an
older CLI never erases what a newer one wrote.

A per-model setting (``capture``, ``shadow``, ``canary``) that does not parse (a canary weight
of 1.5, -1, NaN, "0.5" or null) never invalidates the registry: that model alone serves as if
the setting were off (its ``production`` answers, nothing shadowed, none of its rows
captured), ``invalid_settings`` names the problem, and the raw value is kept on every write
until ``set_capture`` / ``set_shadow`` / ``set_canary`` (``tickerserve capture|shadow|canary
MODEL --off``) replaces it.

While a version is being deleted, ``"deleting": {"etfs/SMH": {"1.0.2": "<since>"}}`` marks it
so that no alias can move to it (``begin_delete`` / ``end_delete``); the mark is an optional
field older readers ignore.

Every write is a compare-and-swap (``update_registry``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tickerserve.contract import DEFAULT_SIGNAL, NAMES
from tickerserve.errors import BadRequest, Conflict, InvalidModel, NotFound, RegistryNeedsImport
from tickerserve.layout import (
    SEED_000_REGISTRY_KEY,
    Version,
    normalize_ticker,
    validate_alias,
    validate_model_name,
    validate_signal,
    validate_timeframe,
)
from tickerserve.storage.compare_and_swap import ATTEMPTS, compare_and_swap
from tickerserve.storage.store import KeyNotFound, Store

SCHEMA = 3
READABLE_SCHEMAS = (1, 2, 3)
SIGNALS_SINCE = 3  # the first schema that keys routes by signal
DEFAULT_ALIAS = "production"
HISTORY_LIMIT = 50
_SHA_RE = re.compile(r"[0-9a-f]{64}")
# Keys each level of the registry understands; anything else is carried through untouched.
_TOP_KEYS = frozenset(
    {"schema", "revision", "updated_at", "tickers", "fallbacks", "models", "deleting"}
)
_ROUTE_KEYS = frozenset({"asset_class", "default_signal", "signals"})
_LEGACY_ROUTE_KEYS = frozenset({"asset_class", "model", "timeframes"})  # schemas 1 and 2
_SIGNAL_KEYS = frozenset({"model", "timeframes"})
_MODEL_KEYS = frozenset({"aliases", "history", "capture", "shadow", "canary"})
TRAFFIC_SETTINGS = ("capture", "shadow", "canary")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_asset_class(value: str) -> str:
    return NAMES["asset_class"].check(value)


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


@dataclass(frozen=True)
class CaptureSettings:
    """Share of a model's scored rows written to capture (0 = none, 1 = all)."""

    sample: float = 1.0

    def __post_init__(self) -> None:
        _check_fraction("capture sample", self.sample, low_open=False)

    def to_dict(self) -> dict[str, float]:
        return {"sample": self.sample}


@dataclass(frozen=True)
class ShadowSettings:
    """Score the ``alias`` version on the same rows as the champion (a share ``sample``)."""

    alias: str
    sample: float = 1.0

    def __post_init__(self) -> None:
        validate_alias(self.alias)
        _check_fraction("shadow sample", self.sample, low_open=True)

    def to_dict(self) -> dict[str, object]:
        return {"alias": self.alias, "sample": self.sample}


@dataclass(frozen=True)
class CanarySettings:
    """Answer a share ``weight`` (0 < weight < 1) of requests from the ``alias`` version."""

    alias: str
    weight: float

    def __post_init__(self) -> None:
        validate_alias(self.alias)
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, float | int) or not 0 < weight < 1:
            raise ValueError(
                f"canary weight must be between 0 and 1 (exclusive), not {self.weight!r}"
            )

    def to_dict(self) -> dict[str, object]:
        return {"alias": self.alias, "weight": self.weight}


def _check_fraction(what: str, value: object, *, low_open: bool) -> None:
    number = value if isinstance(value, float | int) and not isinstance(value, bool) else None
    if number is None or not (0.0 < number <= 1.0 if low_open else 0.0 <= number <= 1.0):
        bounds = "0 < x <= 1" if low_open else "0 <= x <= 1"
        raise ValueError(f"{what} must be a number with {bounds}, not {value!r}")


@dataclass(frozen=True)
class InvalidSetting:
    """A per-model setting as stored, and why it cannot be used (it acts as off)."""

    raw: Any
    problem: str


@dataclass
class ModelEntry:
    aliases: dict[str, AliasTarget] = field(default_factory=dict)
    history: dict[str, list[AliasTarget]] = field(default_factory=dict)
    capture: CaptureSettings | None = None
    shadow: ShadowSettings | None = None
    canary: CanarySettings | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields a newer writer added
    # capture / shadow / canary settings that did not parse: off until replaced
    invalid: dict[str, InvalidSetting] = field(default_factory=dict)


@dataclass(frozen=True)
class SignalRoute:
    """One signal of a ticker: its default model and its per-timeframe models."""

    model: str | None = None
    timeframes: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.model is None and not self.timeframes


@dataclass(frozen=True)
class TickerRoute:
    """A ticker's asset class, its routes per signal and its default signal.

    No route on the default signal means "use the asset class's fallback" there.
    """

    asset_class: str
    signals: dict[str, SignalRoute] = field(default_factory=dict)
    default_signal: str = DEFAULT_SIGNAL
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def single(
        cls, asset_class: str, model: str | None, timeframes: dict[str, str] | None = None
    ) -> TickerRoute:
        """A ticker with routes on the default signal only (what schemas 1 and 2 held)."""
        route = SignalRoute(model, dict(timeframes or {}))
        return cls(asset_class, {} if route.empty else {DEFAULT_SIGNAL: route})

    def on(self, signal: str | None = None) -> SignalRoute | None:
        """The routes of ``signal`` (the default signal when None), None if it has none."""
        return self.signals.get(signal or self.default_signal)

    @property
    def model(self) -> str | None:
        """The default model of the default signal."""
        own = self.on()
        return own.model if own is not None else None

    @property
    def timeframes(self) -> dict[str, str]:
        """The timeframe routes of the default signal."""
        own = self.on()
        return dict(own.timeframes) if own is not None else {}

    def routes(self) -> list[tuple[str, str | None, str]]:
        """Every (signal, timeframe or None, model) this ticker routes."""
        out: list[tuple[str, str | None, str]] = []
        for signal, own in sorted(self.signals.items()):
            if own.model is not None:
                out.append((signal, None, own.model))
            out += [(signal, tf, m) for tf, m in sorted(own.timeframes.items())]
        return out

    def target(self, signal: str, timeframe: str | None) -> str | None:
        """The model one route (signal x timeframe) points at, None where there is none."""
        own = self.signals.get(signal)
        if own is None:
            return None
        return own.model if timeframe is None else own.timeframes.get(timeframe)


@dataclass(frozen=True)
class Route:
    """Where a ticker's predictions come from."""

    ticker: str
    model: str
    asset_class: str
    via_fallback: bool
    timeframe: str | None = None
    signal: str = DEFAULT_SIGNAL


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
    # Versions being deleted (model -> version -> since): no alias may move to one. Set by
    # the delete's first registry write, cleared by its last; see ``begin_delete``.
    deleting: dict[str, dict[str, str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # fields a newer writer added

    # -- reading ---------------------------------------------------------------------------
    def route(
        self,
        ticker: str,
        asset_class: str | None = None,
        timeframe: str | None = None,
        signal: str | None = None,
    ) -> Route:
        """Ticker (x signal x timeframe) -> model: its own route, else (on its default signal
        only) the explicit fallback of its asset class.

        ``signal`` None is the ticker's default signal; a named signal must be one the ticker
        has. ``asset_class`` (from the request) only matters for a ticker the registry does not
        list. A named ``timeframe`` must be one the signal routes; fallbacks serve no
        timeframe, and a signal routed only per timeframe must be asked with one.
        """
        entry = self.tickers.get(ticker)
        default = entry.default_signal if entry is not None else DEFAULT_SIGNAL
        wanted = signal or default
        own = entry.signals.get(wanted) if entry is not None else None
        if own is None and wanted != default:
            listed = self.signals_of(ticker, asset_class)
            raise NotFound(
                f"ticker {ticker!r} has no signal {wanted!r}"
                + (f"; it has {', '.join(listed)}" if listed else "; it has no route"),
                code="unknown_signal",
            )
        on = "" if wanted == DEFAULT_SIGNAL and signal is None else f" on signal {wanted}"
        cls = entry.asset_class if entry is not None else asset_class
        if timeframe is not None:
            if own is None or timeframe not in own.timeframes:
                listed = sorted(own.timeframes) if own is not None else []
                raise NotFound(
                    f"ticker {ticker!r} has no model for timeframe {timeframe!r}{on}"
                    + (f"; it routes {', '.join(listed)}" if listed else ""),
                    code="unknown_timeframe",
                )
            return Route(ticker, own.timeframes[timeframe], cls or "", False, timeframe, wanted)
        if own is not None and own.model is not None:
            return Route(ticker, own.model, cls or "", False, None, wanted)
        if own is not None and own.timeframes:
            # Its own per-timeframe models exist: never answer for it from a fallback.
            raise BadRequest(
                f"ticker {ticker!r} has no default model{on}; name a timeframe: "
                f"{', '.join(sorted(own.timeframes))}",
                code="timeframe_required",
            )
        if cls is not None and cls in self.fallbacks:
            return Route(ticker, self.fallbacks[cls], cls, True, None, wanted)
        if entry is not None and entry.signals:
            raise NotFound(
                f"ticker {ticker!r} has no model on its default signal {default!r} and no "
                f"{cls} fallback; name a signal: {', '.join(sorted(entry.signals))}",
                code="unknown_signal",
            )
        if entry is not None:
            raise NotFound(
                f"ticker {ticker!r} ({cls}) has no model and no {cls} fallback is configured",
                code="unknown_ticker",
            )
        raise NotFound(
            f"unknown ticker {ticker!r}: no route in the registry", code="unknown_ticker"
        )

    def signals_of(self, ticker: str, asset_class: str | None = None) -> list[str]:
        """The signals a ticker answers on (sorted): its own, and its default signal when a
        fallback answers there."""
        entry = self.tickers.get(ticker)
        own = set(entry.signals) if entry is not None else set()
        cls = entry.asset_class if entry is not None else asset_class
        default = entry.default_signal if entry is not None else DEFAULT_SIGNAL
        if cls in self.fallbacks and (entry is None or default not in entry.signals):
            own.add(default)
        return sorted(own)

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
        """Tickers routed to ``model`` explicitly (on any signal, by default or for a
        timeframe) or through a fallback (on their default signal)."""
        return sorted(
            t
            for t, r in self.tickers.items()
            if any(m == model for _, _, m in r.routes())
            or (r.on() is None and self.fallbacks.get(r.asset_class) == model)
        )

    def aliases_pointing_at(self, model: str, version: str) -> list[str]:
        entry = self.models.get(model)
        if entry is None:
            return []
        return sorted(a for a, t in entry.aliases.items() if t.version == version)

    # -- writing (applied inside update_registry) ------------------------------------------
    def set_route(
        self,
        ticker: str,
        model: str | None,
        asset_class: str,
        timeframe: str | None = None,
        signal: str | None = None,
    ) -> None:
        """Route ``ticker`` on ``signal`` (its default signal when None; its default route, or
        one ``timeframe``) to ``model``; the ticker's other routes stay as they are.

        A ticker new to the registry gets ``signal`` as its default signal, unless a fallback
        of its asset class already answers for it (on the contract's default signal): then
        that stays its default, so requests naming no signal keep their answer.
        """
        ticker = normalize_ticker(ticker)
        validate_asset_class(asset_class)
        model = None if model is None else validate_model_name(model)
        old = self.tickers.get(ticker)
        if old is not None:
            default = old.default_signal
        elif signal is None or asset_class in self.fallbacks:
            default = DEFAULT_SIGNAL
        else:
            default = validate_signal(signal)
        wanted = default if signal is None else validate_signal(signal)
        signals = dict(old.signals) if old is not None else {}
        own = signals.get(wanted, SignalRoute())
        if timeframe is None:
            own = SignalRoute(model, own.timeframes, own.extra)
        elif model is None:
            raise ValueError("a timeframe route needs a model")
        else:
            own = SignalRoute(
                own.model, {**own.timeframes, validate_timeframe(timeframe): model}, own.extra
            )
        if own.empty:
            signals.pop(wanted, None)
        else:
            signals[wanted] = own
        extra = dict(old.extra) if old is not None else {}
        self.tickers[ticker] = TickerRoute(asset_class, signals, default, extra)

    def set_default_signal(self, ticker: str, signal: str) -> None:
        """Make ``signal`` the one that answers ``ticker``'s requests naming none."""
        ticker = normalize_ticker(ticker)
        old = self.tickers.get(ticker)
        if old is None:
            raise NotFound(f"ticker {ticker!r} is not routed", code="unknown_ticker")
        self.tickers[ticker] = dataclasses.replace(old, default_signal=validate_signal(signal))

    def remove_route(
        self, ticker: str, timeframe: str | None = None, signal: str | None = None
    ) -> bool:
        """Remove a ticker's routes: all of them (neither ``signal`` nor ``timeframe``), one
        signal's, or one timeframe (of ``signal``, else of the default signal). A ticker left
        without routes leaves the registry."""
        ticker = normalize_ticker(ticker)
        old = self.tickers.get(ticker)
        if old is None:
            return False
        if timeframe is None and signal is None:
            del self.tickers[ticker]
            return True
        wanted = old.default_signal if signal is None else validate_signal(signal)
        own = old.signals.get(wanted)
        if own is None:
            return False
        signals = dict(old.signals)
        if timeframe is None:
            del signals[wanted]
        else:
            if validate_timeframe(timeframe) not in own.timeframes:
                return False
            rest = {k: v for k, v in own.timeframes.items() if k != timeframe}
            own = SignalRoute(own.model, rest, own.extra)
            if own.empty:
                del signals[wanted]
            else:
                signals[wanted] = own
        if not signals:
            del self.tickers[ticker]
        else:
            self.tickers[ticker] = dataclasses.replace(old, signals=signals)
        return True

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
        self._refuse_deleting(model, version)
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
        self._refuse_deleting(model, history[-1].version)
        target = history.pop()
        entry.aliases[alias] = AliasTarget(target.version, target.metadata_sha256, utc_now())
        return target

    def begin_delete(self, model: str, version: str) -> None:
        """The first step of deleting a version: refused while an alias points at it; drops it
        from the alias histories (so rollback never lands on it) and marks it as being
        deleted, so no alias can move to it until ``end_delete``. Because promote, rollback
        and publish write the registry with compare-and-swap too, a delete and an alias move
        on the same version serialize: whichever writes second sees the other."""
        pointing = self.aliases_pointing_at(model, version)
        if pointing:
            raise Conflict(
                f"refusing to delete {model} {version}: alias {', '.join(pointing)} points at it",
                code="version_in_use",
            )
        entry = self.models.get(model)
        for history in entry.history.values() if entry else []:
            history[:] = [h for h in history if h.version != version]
        self.deleting.setdefault(validate_model_name(model), {})[str(Version.parse(version))] = (
            utc_now()
        )

    def end_delete(self, model: str, version: str) -> None:
        """The last step of a delete: its files are gone and its digest index says so."""
        versions = self.deleting.get(model, {})
        versions.pop(version, None)
        if not versions:
            self.deleting.pop(model, None)

    def _refuse_deleting(self, model: str, version: str) -> None:
        since = self.deleting.get(model, {}).get(version)
        if since is not None:
            raise Conflict(
                f"{model} {version} is being deleted (since {since}); if that delete was "
                f"interrupted, run `tickerserve delete {model} {version}` again",
                code="version_deleting",
            )

    def remove_alias(self, model: str, alias: str) -> None:
        entry = self.models.get(model)
        if entry is not None:
            entry.aliases.pop(alias, None)

    def _entry(self, model: str) -> ModelEntry:
        entry = self.models.get(validate_model_name(model))
        if entry is None:
            raise NotFound(f"model {model!r} is not in the registry", code="unknown_model")
        return entry

    def set_capture(self, model: str, sample: float | None) -> None:
        """Capture a share ``sample`` of the model's rows; None restores the default (all).
        Either replaces an invalid capture setting."""
        entry = self._entry(model)
        entry.capture = None if sample is None else CaptureSettings(sample)
        entry.invalid.pop("capture", None)

    def set_shadow(self, model: str, shadow: ShadowSettings | None) -> None:
        """Score a challenger alias beside the champion; None turns shadow off (and drops an
        invalid shadow setting)."""
        entry = self._entry(model)
        entry.shadow = shadow
        entry.invalid.pop("shadow", None)

    def set_canary(self, model: str, canary: CanarySettings | None) -> None:
        """Answer a share of requests from another alias; None turns the canary off (and
        drops an invalid canary setting)."""
        entry = self._entry(model)
        entry.canary = canary
        entry.invalid.pop("canary", None)

    def invalid_settings(self) -> list[tuple[str, str, str]]:
        """``(model, setting, problem)`` for every per-model setting that is off because it
        does not parse."""
        return [
            (name, setting, bad.problem)
            for name, entry in sorted(self.models.items())
            for setting, bad in sorted(entry.invalid.items())
        ]

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "schema": SCHEMA,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "tickers": {t: _route_dict(r) for t, r in sorted(self.tickers.items())},
            "fallbacks": dict(sorted(self.fallbacks.items())),
            "models": {name: _entry_dict(e) for name, e in sorted(self.models.items())},
            **({"deleting": _sorted_nested(self.deleting)} if self.deleting else {}),
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, where: str | None = None) -> Registry:
        """Parse and validate; any structural problem raises ``InvalidModel`` naming the field.
        A seed project's own registry raises ``RegistryNeedsImport``, naming the command that
        converts the store (``where``: the store's description, e.g. ``s3://models``)."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidModel(f"registry is not valid JSON: {exc}") from None
        if is_seed_registry(raw):
            raise needs_import(where)
        try:
            return cls.from_dict(raw)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise InvalidModel(f"registry is invalid: {exc}") from None

    @classmethod
    def from_dict(cls, raw: Any) -> Registry:
        if not isinstance(raw, dict):
            raise TypeError("top level must be an object")
        schema = raw.get("schema")
        if schema not in READABLE_SCHEMAS:
            newer = isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA
            raise ValueError(
                f"unsupported schema {schema!r}: this tickerserve reads schemas "
                f"{', '.join(map(str, READABLE_SCHEMAS))}"
                + (
                    "; a newer tickerserve wrote it: upgrade (deploy the function first)"
                    if newer
                    else ""
                )
            )
        revision = raw.get("revision")
        if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
            raise ValueError("revision must be a non-negative integer")
        tickers = {}
        for ticker, route in _mapping(raw, "tickers").items():
            if normalize_ticker(ticker) != ticker:
                raise ValueError(f"ticker {ticker!r} must be upper case")
            if not isinstance(route, dict):
                raise TypeError(f"route of {ticker} must be an object")
            tickers[ticker] = (
                _ticker_route(ticker, route) if schema >= SIGNALS_SINCE else _legacy_route(route)
            )
        fallbacks = {
            validate_asset_class(k): validate_model_name(v)
            for k, v in _mapping(raw, "fallbacks").items()
        }
        models = {}
        for name, entry in _mapping(raw, "models").items():
            validate_model_name(name)
            if not isinstance(entry, dict):
                raise TypeError(f"model {name} must be an object")
            aliases = {validate_alias(a): _target(t) for a, t in _mapping(entry, "aliases").items()}
            history = {
                validate_alias(a): [_target(t) for t in _list(h, a)]
                for a, h in _mapping(entry, "history").items()
            }
            parsed, invalid = _traffic_settings(entry)
            models[name] = ModelEntry(
                aliases, history, **parsed, extra=_unknown(entry, _MODEL_KEYS), invalid=invalid
            )
        deleting: dict[str, dict[str, str]] = {}
        for model, versions in _mapping(raw, "deleting").items():
            if not isinstance(versions, dict):
                raise TypeError(f"deleting.{model} must be an object")
            deleting[validate_model_name(model)] = {
                str(Version.parse(v)): str(since) for v, since in versions.items()
            }
        return cls(
            revision=revision,
            updated_at=str(raw.get("updated_at", "")),
            tickers=tickers,
            fallbacks=fallbacks,
            models=models,
            deleting=deleting,
            extra=_unknown(raw, _TOP_KEYS),
        )


def _route_dict(route: TickerRoute) -> dict[str, Any]:
    return {
        **route.extra,
        "asset_class": route.asset_class,
        "default_signal": route.default_signal,
        "signals": {name: _signal_dict(own) for name, own in sorted(route.signals.items())},
    }


def _signal_dict(own: SignalRoute) -> dict[str, Any]:
    out: dict[str, Any] = {**own.extra, "model": own.model}
    if own.timeframes:
        out["timeframes"] = dict(sorted(own.timeframes.items()))
    return out


def _timeframes(raw: dict[str, Any]) -> dict[str, str]:
    return {
        validate_timeframe(tf): validate_model_name(m)
        for tf, m in _mapping(raw, "timeframes").items()
    }


def _legacy_route(raw: dict[str, Any]) -> TickerRoute:
    """A schema 1 or 2 ticker: its routes are on the default signal."""
    model = raw.get("model")
    own = SignalRoute(None if model is None else validate_model_name(model), _timeframes(raw))
    return TickerRoute(
        validate_asset_class(raw["asset_class"]),
        {} if own.empty else {DEFAULT_SIGNAL: own},
        DEFAULT_SIGNAL,
        _unknown(raw, _LEGACY_ROUTE_KEYS),
    )


def _ticker_route(ticker: str, raw: dict[str, Any]) -> TickerRoute:
    signals = {}
    for name, own in _mapping(raw, "signals").items():
        validate_signal(name)
        if not isinstance(own, dict):
            raise TypeError(f"signal {name} of {ticker} must be an object")
        model = own.get("model")
        route = SignalRoute(
            None if model is None else validate_model_name(model),
            _timeframes(own),
            _unknown(own, _SIGNAL_KEYS),
        )
        if not route.empty:
            signals[name] = route
    return TickerRoute(
        validate_asset_class(raw["asset_class"]),
        signals,
        validate_signal(raw.get("default_signal", DEFAULT_SIGNAL)),
        _unknown(raw, _ROUTE_KEYS),
    )


_SETTING_TYPES: dict[str, type[CaptureSettings | ShadowSettings | CanarySettings]] = {
    "capture": CaptureSettings,
    "shadow": ShadowSettings,
    "canary": CanarySettings,
}


def _traffic_settings(entry: dict[str, Any]) -> tuple[dict[str, Any], dict[str, InvalidSetting]]:
    """A model's capture, shadow and canary settings, each parsed on its own: one that does
    not parse is off (None) and recorded with its problem, and never fails the registry."""
    parsed: dict[str, Any] = {}
    invalid: dict[str, InvalidSetting] = {}
    for name, kind in _SETTING_TYPES.items():
        raw = entry.get(name)
        if raw is None:
            parsed[name] = None
            continue
        try:
            if not isinstance(raw, dict):
                raise TypeError(f"must be an object, not {type(raw).__name__}")
            parsed[name] = kind(**raw)
        except (TypeError, ValueError) as exc:
            parsed[name] = None
            invalid[name] = InvalidSetting(raw, f"{name} setting is invalid: {exc}")
    return parsed, invalid


def _entry_dict(entry: ModelEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        **entry.extra,
        "aliases": {a: t.to_dict() for a, t in sorted(entry.aliases.items())},
        "history": {a: [t.to_dict() for t in h] for a, h in sorted(entry.history.items()) if h},
    }
    for name in TRAFFIC_SETTINGS:
        settings = getattr(entry, name)
        if settings is not None:
            out[name] = settings.to_dict()
        elif name in entry.invalid:  # kept as found until a command replaces it
            out[name] = copy.deepcopy(entry.invalid[name].raw)
    return out


def _sorted_nested(mapping: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {k: dict(sorted(v.items())) for k, v in sorted(mapping.items())}


def _unknown(raw: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in known}


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
    if not isinstance(digest, str) or not _SHA_RE.fullmatch(digest):
        raise ValueError(f"alias target {version}: metadata_sha256 must be 64 hex characters")
    return AliasTarget(version, digest, str(raw.get("updated_at", "")))


# What a seed 000 registry is made of (``cli/importers/asset_registry`` reads every shape).
_SEED_GROUPS = frozenset(
    {"etf", "etfs", "fund", "stock", "stocks", "equity", "equities", "single_stock"}
)
_SEED_WRAPPERS = frozenset({"tickers", "assets", "registry", "symbols"})
_SEED_FIELDS = frozenset({"asset_class", "type", "asset_type", "class", "category", "model_path"})


def is_seed_registry(raw: Any) -> bool:
    """True for a seed project's own ``asset_registry.json`` (seed 000 keeps it at the key
    tickerserve's registry has): no ``schema``, and grouped by asset class, wrapped, listed
    per ticker, or a list of ``{"ticker", ...}`` objects."""
    if isinstance(raw, list):
        return bool(raw) and all(
            isinstance(item, dict) and ("ticker" in item or "symbol" in item) for item in raw
        )
    if not isinstance(raw, dict) or not raw or "schema" in raw:
        return False
    keys = {str(k).lower() for k in raw}
    if keys & (_SEED_GROUPS | _SEED_WRAPPERS):
        return True
    objects = [v for v in raw.values() if isinstance(v, dict)]
    return bool(objects) and all(_SEED_FIELDS & set(v) for v in objects)


def import_command(where: str | None) -> str:
    """The command that converts the store ``where`` describes in place."""
    if where is None:
        return "tickerserve --bucket NAME import-seed (or --store PATH)"
    if where.startswith("s3://"):
        return f"tickerserve --bucket {where.removeprefix('s3://')} import-seed"
    return f"tickerserve --store {where} import-seed"


def needs_import(where: str | None) -> RegistryNeedsImport:
    place = f" in {where}" if where else ""
    return RegistryNeedsImport(
        f"the registry{place} is seed 000's own asset_registry.json, which tickerserve "
        f"serves only once converted: run `{import_command(where)}` once (it publishes the "
        f"production/ folders as versions and keeps the seed's file as "
        f"{SEED_000_REGISTRY_KEY})"
    )


@dataclass(frozen=True)
class RegistrySnapshot:
    """A registry as read, with the ETag a compare-and-swap write needs (None if absent)."""

    registry: Registry
    etag: str | None


def read_registry(store: Store, key: str, *, replace_seed: bool = False) -> RegistrySnapshot:
    """Read the registry; an absent registry is an empty one (revision 0), and so is a seed
    project's own registry with ``replace_seed`` (an import converting the store); without it
    that is ``RegistryNeedsImport``."""
    try:
        blob = store.get(key)
    except KeyNotFound:
        return RegistrySnapshot(Registry(), None)
    assert blob is not None  # unconditional GET always returns content
    try:
        return RegistrySnapshot(Registry.from_json(blob.data, where=store.describe()), blob.etag)
    except RegistryNeedsImport:
        if not replace_seed:
            raise
        return RegistrySnapshot(Registry(), blob.etag)


def update_registry(
    store: Store,
    key: str,
    mutate: Callable[[Registry], object],
    *,
    attempts: int = ATTEMPTS,
    replace_seed: bool = False,
) -> Registry:
    """Apply ``mutate`` with compare-and-swap, retrying from a fresh read when another writer won.

    ``mutate`` may raise to abort; nothing is written then. With ``replace_seed`` a seed
    project's own registry at ``key`` counts as an empty one and is replaced (``import-seed``
    keeps a copy first); without it, it is ``RegistryNeedsImport``.
    """

    def change(current: bytes | None) -> tuple[bytes, Registry]:
        before = Registry()
        if current is not None:
            try:
                before = Registry.from_json(current, where=store.describe())
            except RegistryNeedsImport:
                if not replace_seed:
                    raise
        registry = copy.deepcopy(before)
        mutate(registry)
        registry.revision = before.revision + 1
        registry.updated_at = utc_now()
        return registry.to_json(), registry

    return compare_and_swap(store, key, change, attempts=attempts)
