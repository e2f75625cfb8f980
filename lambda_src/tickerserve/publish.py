"""Publishing: write a bundle as a new immutable version, then move aliases and routes.

The registry is updated last, so an alias never points at an incomplete version.
"""

from __future__ import annotations

from collections.abc import Mapping

from tickerserve.bundle import Bundle, write_bundle
from tickerserve.registry import ModelEntry, Registry, update_registry
from tickerserve.store import Store


def publish_bundle(
    store: Store,
    bundle: Bundle,
    *,
    registry_key: str,
    aliases: tuple[str, ...] = ("production",),
    routes: Mapping[str, str] | None = None,
) -> Registry:
    """Write the version folder (create-only), then in one registry CAS point ``aliases`` at it
    and route ``routes`` (ticker -> asset class) to the model. Returns the new registry."""
    digest = write_bundle(store, bundle)
    meta = bundle.metadata

    def mutate(registry: Registry) -> None:
        for alias in aliases:
            registry.set_alias(meta.model, alias, meta.version, digest)
        for ticker, asset_class in (routes or {}).items():
            registry.set_route(ticker, meta.model, asset_class)
        registry.models.setdefault(meta.model, ModelEntry())

    return update_registry(store, registry_key, mutate)
