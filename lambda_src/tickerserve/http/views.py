"""Read-only views for GET /models, GET /models/{ticker} and GET /health.

They read the registry and (for one ticker) its metadata.json; they never load a model.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tickerserve.errors import RegistryNeedsImport, StorageUnavailable, TickerserveError
from tickerserve.http import pagination
from tickerserve.serving.service import ModelService
from tickerserve.serving.traffic import describe_settings
from tickerserve.storage.registry import Registry


def describe_models(
    service: ModelService, *, limit: object = None, next_token: object = None
) -> dict[str, Any]:
    """One page of what serves what (``GET /models``), straight from the registry: ticker
    routes with the aliases of the models they name (see ``route_pages``)."""
    size = pagination.parse_limit(limit)
    after = None if next_token is None else pagination.decode_token(next_token)
    return pagination.page(service.registry(), limit=size, after=after)


def describe_ticker(
    service: ModelService,
    ticker: str,
    timeframe: str | None = None,
    signal: str | None = None,
) -> dict[str, Any]:
    """The model and version that would answer for ``ticker`` (on ``signal``, for
    ``timeframe``), with its inputs and outputs, and every signal x timeframe the ticker
    routes."""
    registry = service.registry()
    route = registry.route(ticker, None, timeframe, signal)
    resolved = registry.resolve(route.model)
    metadata, digest = service.metadata(resolved)
    entry = registry.models[route.model]
    own = registry.tickers.get(ticker)
    signals = _signals(registry, ticker)
    return {
        "ticker": ticker,
        "asset_class": route.asset_class,
        "via_fallback": route.via_fallback,
        "signal": route.signal,
        "default_signal": own.default_signal if own is not None else route.signal,
        "signals": signals,
        "timeframe": route.timeframe,
        "timeframes": signals[route.signal]["timeframes"],
        "model": {"name": resolved.model, "version": resolved.version, "alias": resolved.alias},
        "aliases": {alias: t.version for alias, t in sorted(entry.aliases.items())},
        # Shadow and canary of the ticker's model (capture sample, challenger, canary weight).
        **describe_settings(entry),
        "task": metadata.task,
        "ensemble": metadata.describe_ensemble(),
        "accepts_missing": metadata.accepts_missing,
        "model_type": metadata.model_type,
        "feature_names": metadata.feature_names,
        "selected_features": metadata.selected_features,
        "required_features": metadata.used_features,
        "classes": metadata.classes,
        # A network's input (a window of rows, or an observation's shape) and answer.
        "network": None if metadata.network is None else metadata.network.to_dict(),
        "metrics": metadata.metrics,
        "training": metadata.training,
        "created_at": metadata.created_at,
        "metadata_sha256": digest,
    }


def _signals(registry: Registry, ticker: str) -> dict[str, dict[str, Any]]:
    """Signal -> its default model (the fallback's where that answers) and its timeframes."""
    own = registry.tickers.get(ticker)
    out: dict[str, dict[str, Any]] = {}
    for signal in registry.signals_of(ticker, own.asset_class if own is not None else None):
        routes = own.on(signal) if own is not None else None
        if routes is None:
            cls = own.asset_class if own is not None else ""
            out[signal] = {
                "model": registry.fallbacks.get(cls),
                "timeframes": {},
                "via_fallback": True,
            }
        else:
            out[signal] = {
                "model": routes.model,
                "timeframes": dict(sorted(routes.timeframes.items())),
                "via_fallback": False,
            }
    return out


def health(service: ModelService, *, cold: bool) -> tuple[dict[str, Any], int]:
    """Body and status: 200 when the registry is readable (or cached), else 503."""
    status, code = "ok", 200
    error: TickerserveError | None = None
    try:
        registry = service.registry()
        age = service.registry_age()
        registry_info: dict[str, Any] | None = {
            "revision": registry.revision,
            "updated_at": registry.updated_at,
            "models": len(registry.models),
            "tickers": len(registry.tickers),
            "age_seconds": None if age is None else round(age, 3),
        }
    except (StorageUnavailable, RegistryNeedsImport) as exc:
        status, code, error, registry_info = "unavailable", 503, exc, None
    body: dict[str, Any] = {
        "status": status,
        "cold": cold,
        "store": service.store.describe(),
        "registry": registry_info,
        "loaded_models": service.loaded(),
        "memory": {
            "used_bytes": service.memory.used_bytes,
            "budget_bytes": service.memory.budget_bytes,
        },
        "disk": {"used_bytes": service.disk.used_bytes, "budget_bytes": service.disk.budget_bytes},
        "counters": asdict(service.counters),
        "uptime_seconds": round(service.clock() - service.started, 3),
    }
    if error is not None:
        body["error"] = {"code": error.code, "message": error.message}
    return body, code
