"""Registry routing, aliases, validation and compare-and-swap updates."""

from __future__ import annotations

import json
import threading

import pytest

from tickerserve.errors import BadRequest, Conflict, InvalidModel, NotFound
from tickerserve.storage.registry import (
    CanarySettings,
    CaptureSettings,
    Registry,
    ShadowSettings,
    read_registry,
    update_registry,
)
from tickerserve.storage.store import LocalStore

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
    with pytest.raises(NotFound, match=r"^unknown ticker 'GME': no route in the registry$"):
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
        (
            lambda d: d["tickers"]["SMH"]["signals"]["strategy"].update(model="../../x"),
            "model name",
        ),
        (
            lambda d: d["tickers"]["SMH"]["signals"].update(Vol={"model": "etfs/SMH"}),
            "invalid signal 'Vol'",
        ),
        (lambda d: d["tickers"]["SMH"].update(default_signal="a b"), "invalid signal"),
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

    with pytest.raises(NotFound, match=r"^abort$"):
        update_registry(store, KEY, bad)
    assert sorted(read_registry(store, KEY).registry.tickers) == ["SMH"]


# -- schema 2: timeframes, traffic settings, compatibility --------------------------------


def timeframed() -> Registry:
    registry = sample()
    registry.set_route("AAPL", "stocks/AAPL/d1", "stock", timeframe="d1")
    registry.set_route("AAPL", "stocks/AAPL/h1", "stock", timeframe="h1")
    registry.set_route("MSFT", "stocks/MSFT/h4", "stock", timeframe="h4")
    return registry


def test_timeframe_routes_beside_the_default_route():
    registry = timeframed()
    # A named timeframe goes to its own model; no timeframe goes to the default route
    assert registry.route("AAPL", timeframe="h1").model == "stocks/AAPL/h1"
    assert registry.route("AAPL", timeframe="h1").timeframe == "h1"
    assert registry.route("AAPL").model == "stocks/universal"
    with pytest.raises(NotFound, match="no model for timeframe 'w1'; it routes d1, h1") as err:
        registry.route("AAPL", timeframe="w1")
    assert err.value.code == "unknown_timeframe"
    # Fallbacks never answer for a timeframe: a d1 question gets no h1 or universal answer
    registry.set_fallback("stock", "stocks/universal")
    with pytest.raises(NotFound, match="no model for timeframe") as err:
        registry.route("GME", "stock", "d1")
    assert err.value.code == "unknown_timeframe"


def test_a_ticker_with_only_timeframes_needs_one_named():
    registry = timeframed()
    registry.set_fallback("stock", "stocks/universal")
    with pytest.raises(BadRequest, match="name a timeframe: h4") as err:
        registry.route("MSFT")
    assert err.value.code == "timeframe_required"
    assert registry.tickers_for("stocks/MSFT/h4") == ["MSFT"]
    assert "MSFT" not in registry.tickers_for("stocks/universal")
    assert registry.tickers_for("stocks/AAPL/d1") == ["AAPL"]


def test_route_changes_keep_the_other_routes():
    registry = timeframed()
    registry.set_route("AAPL", "stocks/AAPL/d1", "stock")  # the default route moves...
    assert registry.tickers["AAPL"].timeframes == {
        "d1": "stocks/AAPL/d1",
        "h1": "stocks/AAPL/h1",
    }  # ...and the timeframes stay
    assert registry.remove_route("AAPL", "h1")
    assert not registry.remove_route("AAPL", "h1")
    assert registry.route("AAPL").model == "stocks/AAPL/d1"
    assert registry.remove_route("MSFT", "h4")
    assert "MSFT" not in registry.tickers  # nothing left to route
    with pytest.raises(ValueError, match="invalid timeframe"):
        registry.set_route("AAPL", "stocks/AAPL/d1", "stock", timeframe="1d")
    with pytest.raises(ValueError, match="invalid timeframe"):
        registry.set_route("AAPL", "stocks/AAPL/d1", "stock", timeframe="d1\n")


def test_traffic_settings_round_trip_and_validate():
    registry = timeframed()
    registry.set_capture("etfs/SMH", 0.25)
    registry.set_shadow("etfs/SMH", ShadowSettings("challenger", 0.5))
    registry.set_canary("etfs/SMH", CanarySettings("canary", 0.1))
    again = Registry.from_json(registry.to_json())
    entry = again.models["etfs/SMH"]
    assert entry.capture == CaptureSettings(0.25)
    assert entry.shadow == ShadowSettings("challenger", 0.5)
    assert entry.canary == CanarySettings("canary", 0.1)
    assert again.to_dict() == registry.to_dict()
    registry.set_canary("etfs/SMH", None)
    assert "canary" not in registry.to_dict()["models"]["etfs/SMH"]
    with pytest.raises(NotFound, match="not in the registry"):
        registry.set_capture("etfs/NOPE", 0.5)
    for bad in (0.0, 1.0, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match="canary weight"):
            CanarySettings("canary", bad)  # type: ignore[arg-type]
    for bad_sample in (-0.1, 1.01, float("nan"), None):
        with pytest.raises(ValueError, match="capture sample"):
            CaptureSettings(bad_sample)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shadow sample"):
        ShadowSettings("challenger", 0.0)


LEGACY = {  # a schema 2 registry, as the CLI wrote it before signals
    "schema": 2,
    "revision": 6,
    "updated_at": "2026-12-01T23:40:57Z",
    "tickers": {
        "AAPL": {"asset_class": "stock", "model": "stocks/universal",
                 "timeframes": {"h1": "stocks/AAPL/h1"}, "desk": "equities"},
        "SMH": {"asset_class": "etf", "model": "etfs/SMH"},
        "TSLA": {"asset_class": "stock", "model": None},
    },
    "fallbacks": {"stock": "stocks/universal"},
    "models": {"etfs/SMH": {"aliases": {"production": {"version": "1.0.1",
                                                       "metadata_sha256": SHA}}}},
}  # fmt: skip


@pytest.mark.parametrize("schema", [1, 2])
def test_a_registry_without_signals_reads_as_every_route_on_the_default_signal(schema):
    # Given a registry written before signals
    raw = {**LEGACY, "schema": schema}
    registry = Registry.from_json(json.dumps(raw).encode())
    # Then every route is on the default signal (strategy), which is every ticker's default
    aapl = registry.route("AAPL")
    assert (aapl.model, aapl.signal) == ("stocks/universal", "strategy")
    assert registry.route("AAPL", signal="strategy", timeframe="h1").model == "stocks/AAPL/h1"
    assert registry.route("TSLA").via_fallback
    assert registry.signals_of("AAPL") == ["strategy"]
    # And it is written back as schema 3, its routes and unknown fields as they were
    written = json.loads(registry.to_json())
    assert written["schema"] == 3
    assert written["tickers"]["AAPL"] == {
        "desk": "equities",
        "asset_class": "stock",
        "default_signal": "strategy",
        "signals": {
            "strategy": {"model": "stocks/universal", "timeframes": {"h1": "stocks/AAPL/h1"}}
        },
    }
    assert written["tickers"]["TSLA"]["signals"] == {}
    assert Registry.from_json(registry.to_json()).to_dict() == registry.to_dict()


def test_a_newer_schema_is_refused_with_an_upgrade_hint():
    raw = sample().to_dict()
    raw["schema"] = 4
    with pytest.raises(InvalidModel, match="newer tickerserve wrote it: upgrade"):
        Registry.from_json(json.dumps(raw).encode())


def test_writers_keep_fields_they_do_not_know(tmp_path):
    # Given a registry a newer writer extended at every level
    store = LocalStore(tmp_path)
    raw = timeframed().to_dict()
    raw["owner"] = "quant-team"
    raw["tickers"]["SMH"]["note"] = {"desk": "vol"}
    raw["tickers"]["SMH"]["signals"]["strategy"]["owner"] = "ana"
    raw["models"]["etfs/SMH"]["retention"] = {"days": 30}
    store.put(KEY, json.dumps(raw).encode())
    # When this version changes something unrelated
    update_registry(store, KEY, lambda r: r.set_route("QQQ", "etfs/SMH", "etf"))
    # Then the unknown fields are still there
    blob = store.get(KEY)
    assert blob is not None
    written = json.loads(blob.data)
    assert written["owner"] == "quant-team"
    assert written["tickers"]["SMH"]["note"] == {"desk": "vol"}
    assert written["tickers"]["SMH"]["signals"]["strategy"]["owner"] == "ana"
    assert written["models"]["etfs/SMH"]["retention"] == {"days": 30}
    assert written["tickers"]["AAPL"]["signals"]["strategy"]["timeframes"] == {
        "d1": "stocks/AAPL/d1",
        "h1": "stocks/AAPL/h1",
    }


def test_a_version_being_deleted_takes_no_alias_until_the_delete_ends():
    registry = Registry()
    registry.set_alias("etfs/SMH", "production", "1.0.0", SHA)
    registry.set_alias("etfs/SMH", "production", "1.0.1", SHA)  # 1.0.0 in the history
    # An aliased version cannot begin to be deleted
    with pytest.raises(Conflict, match="alias production points at it"):
        registry.begin_delete("etfs/SMH", "1.0.1")
    # A delete in progress leaves the history and blocks every way back to the version
    registry.begin_delete("etfs/SMH", "1.0.0")
    assert registry.models["etfs/SMH"].history == {"production": []}
    with pytest.raises(Conflict, match="is being deleted"):
        registry.set_alias("etfs/SMH", "staging", "1.0.0", SHA)
    # The mark survives a round trip (another process's compare-and-swap sees it)
    again = Registry.from_json(registry.to_json())
    assert again.deleting == {"etfs/SMH": {"1.0.0": registry.deleting["etfs/SMH"]["1.0.0"]}}
    again.end_delete("etfs/SMH", "1.0.0")
    assert again.deleting == {}
    assert "deleting" not in json.loads(again.to_json())


# -- schema 3: signals ---------------------------------------------------------------------


def signalled() -> Registry:
    """SPY on three signals: its strategy classifier (the default), a volatility forecaster
    and direction models per timeframe; a stock fallback for unlisted stocks."""
    registry = Registry()
    registry.set_route("SPY", "etfs/SPY", "etf")
    registry.set_route("SPY", "etfs/SPY/volatility", "etf", signal="volatility")
    registry.set_route("SPY", "etfs/SPY/d1", "etf", timeframe="d1", signal="direction")
    registry.set_route("SPY", "etfs/SPY/h1", "etf", timeframe="h1", signal="direction")
    registry.set_fallback("stock", "stocks/universal")
    return registry


def test_a_ticker_routes_several_signals_and_answers_its_default_without_one():
    registry = signalled()
    assert registry.route("SPY").model == "etfs/SPY"
    assert registry.route("SPY").signal == "strategy"
    vol = registry.route("SPY", signal="volatility")
    assert (vol.model, vol.signal, vol.timeframe) == ("etfs/SPY/volatility", "volatility", None)
    assert registry.route("SPY", signal="direction", timeframe="h1").model == "etfs/SPY/h1"
    assert registry.signals_of("SPY") == ["direction", "strategy", "volatility"]
    assert registry.tickers["SPY"].routes() == [
        ("direction", "d1", "etfs/SPY/d1"),
        ("direction", "h1", "etfs/SPY/h1"),
        ("strategy", None, "etfs/SPY"),
        ("volatility", None, "etfs/SPY/volatility"),
    ]
    assert registry.tickers_for("etfs/SPY/volatility") == ["SPY"]
    # A signal routed only per timeframe needs one named
    with pytest.raises(BadRequest, match="no default model on signal direction") as err:
        registry.route("SPY", signal="direction")
    assert err.value.code == "timeframe_required"
    # The default signal's timeframes are not the direction signal's
    with pytest.raises(NotFound, match="no model for timeframe 'd1'") as missing:
        registry.route("SPY", timeframe="d1")
    assert missing.value.code == "unknown_timeframe"


def test_an_unknown_signal_is_a_404_listing_the_tickers_signals():
    registry = signalled()
    with pytest.raises(NotFound) as err:
        registry.route("SPY", signal="gamma")
    assert err.value.code == "unknown_signal"
    assert err.value.message == (
        "ticker 'SPY' has no signal 'gamma'; it has direction, strategy, volatility"
    )
    # A fallback answers on the default signal only
    assert registry.route("GME", "stock").via_fallback
    assert registry.route("GME", "stock", signal="strategy").model == "stocks/universal"
    with pytest.raises(NotFound, match="has no signal 'volatility'; it has strategy") as err:
        registry.route("GME", "stock", signal="volatility")
    assert err.value.code == "unknown_signal"


def test_a_new_signal_never_changes_what_a_ticker_answers_without_one():
    registry = signalled()
    # A ticker new to the registry takes its first signal as its default...
    registry.set_route("ETH", "crypto/ETH/direction", "crypto", signal="direction")
    assert registry.route("ETH").model == "crypto/ETH/direction"
    # ...unless a fallback of its class already answered for it: that stays the default
    registry.set_route("AAPL", "stocks/AAPL/d1", "stock", timeframe="d1", signal="direction")
    assert registry.route("AAPL").model == "stocks/universal"
    assert registry.route("AAPL").via_fallback
    assert registry.signals_of("AAPL") == ["direction", "strategy"]
    # An existing ticker keeps its default when another signal is added
    registry.set_route("ETH", "crypto/ETH/vol", "crypto", signal="volatility")
    assert registry.route("ETH").signal == "direction"
    # The default moves only when asked
    registry.set_default_signal("ETH", "volatility")
    assert registry.route("ETH").model == "crypto/ETH/vol"
    with pytest.raises(NotFound, match="not routed"):
        registry.set_default_signal("NOPE", "volatility")


def test_removing_a_signal_keeps_the_others_and_round_trips():
    registry = signalled()
    again = Registry.from_json(registry.to_json())
    assert again.to_dict() == registry.to_dict()
    assert json.loads(registry.to_json())["tickers"]["SPY"]["signals"]["volatility"] == {
        "model": "etfs/SPY/volatility"
    }
    assert registry.remove_route("SPY", "h1", signal="direction")
    assert not registry.remove_route("SPY", "h1", signal="direction")
    assert registry.remove_route("SPY", signal="volatility")
    assert registry.signals_of("SPY") == ["direction", "strategy"]
    assert not registry.remove_route("SPY", signal="volatility")
    assert registry.remove_route("SPY", signal="strategy")
    # No route on its default signal and no etf fallback: a request must name a signal
    with pytest.raises(NotFound, match="no model on its default signal 'strategy'") as err:
        registry.route("SPY")
    assert err.value.code == "unknown_signal"
    assert registry.remove_route("SPY", "d1", signal="direction")
    assert "SPY" not in registry.tickers  # nothing left to route
    with pytest.raises(ValueError, match="invalid signal"):
        registry.set_route("SPY", "etfs/SPY", "etf", signal="Vol")
