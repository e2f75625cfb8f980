"""Registry routing, aliases, validation and compare-and-swap updates."""

from __future__ import annotations

import json
import threading

import pytest

from tickerserve.errors import InvalidModel, NotFound
from tickerserve.registry import Registry, read_registry, update_registry
from tickerserve.store import LocalStore

SHA = "a" * 64
KEY = "metadata/asset_registry.json"


def sample() -> Registry:
    registry = Registry()
    registry.set_route("SMH", "etfs/SMH", "etf")
    registry.set_route("AAPL", "stocks/universal", "stock")
    registry.set_route("TSLA", None, "stock")
    registry.set_alias("etfs/SMH", "production", "1.0.0", SHA)
    registry.set_alias("stocks/universal", "production", "2.1.0", SHA)
    return registry


def test_routes_and_fallbacks():
    registry = sample()
    assert registry.route("SMH").model == "etfs/SMH"
    assert registry.route("AAPL").model == "stocks/universal"
    with pytest.raises(NotFound, match="no stock fallback"):
        registry.route("TSLA")
    with pytest.raises(NotFound, match="unknown ticker"):
        registry.route("GME", "stock")
    registry.set_fallback("stock", "stocks/universal")
    assert registry.route("TSLA").via_fallback
    assert registry.route("GME", "stock").model == "stocks/universal"
    with pytest.raises(NotFound):
        registry.route("GME")  # no asset class claimed: still unknown
    assert registry.tickers_for("stocks/universal") == ["AAPL", "TSLA"]


def test_alias_history_and_rollback():
    registry = sample()
    registry.set_alias("etfs/SMH", "production", "1.0.1", "b" * 64)
    registry.set_alias("etfs/SMH", "production", "1.0.2", "c" * 64)
    assert registry.resolve("etfs/SMH").version == "1.0.2"
    assert registry.rollback_alias("etfs/SMH", "production").version == "1.0.1"
    assert registry.resolve("etfs/SMH").version == "1.0.1"
    assert registry.rollback_alias("etfs/SMH", "production").version == "1.0.0"
    with pytest.raises(NotFound, match="no earlier version"):
        registry.rollback_alias("etfs/SMH", "production")
    # A pinned version that an alias once held carries its verified digest
    assert registry.resolve("etfs/SMH", version="1.0.0").metadata_sha256 == SHA


def test_round_trip_through_json():
    registry = sample()
    assert Registry.from_json(registry.to_json()).to_dict() == registry.to_dict()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema=99), "unsupported schema"),
        (lambda d: d.update(revision=-1), "revision"),
        (lambda d: d["tickers"].update(smh={"asset_class": "etf", "model": "etfs/SMH"}), "upper"),
        (lambda d: d["tickers"]["SMH"].update(model="../../x"), "model name"),
        (lambda d: d["models"]["etfs/SMH"]["aliases"]["production"].update(version="1"), "version"),
        (
            lambda d: d["models"]["etfs/SMH"]["aliases"]["production"].update(metadata_sha256="x"),
            "sha256",
        ),
        (lambda d: d.update(tickers=[]), "tickers must be an object"),
    ],
)
def test_invalid_registries_are_rejected_with_the_field(mutate, message):
    raw = sample().to_dict()
    mutate(raw)
    with pytest.raises(InvalidModel, match=message):
        Registry.from_json(json.dumps(raw).encode())


def test_concurrent_updates_never_lose_a_change(tmp_path):
    # Given a store and 8 writers each routing its own ticker at the same time
    store = LocalStore(tmp_path)
    tickers = [f"T{i}" for i in range(8)]
    barrier = threading.Barrier(len(tickers))

    def writer(ticker: str) -> None:
        barrier.wait()
        update_registry(store, KEY, lambda r: r.set_route(ticker, "stocks/universal", "stock"))

    threads = [threading.Thread(target=writer, args=(t,)) for t in tickers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every route survived and the revision counts every write
    registry = read_registry(store, KEY).registry
    assert sorted(registry.tickers) == tickers
    assert registry.revision == len(tickers)


def test_failed_mutation_writes_nothing(tmp_path):
    store = LocalStore(tmp_path)
    update_registry(store, KEY, lambda r: r.set_route("SMH", "etfs/SMH", "etf"))

    def bad(registry: Registry) -> None:
        registry.set_route("SPY", "etfs/SPY", "etf")
        raise NotFound("abort")

    with pytest.raises(NotFound):
        update_registry(store, KEY, bad)
    assert sorted(read_registry(store, KEY).registry.tickers) == ["SMH"]
