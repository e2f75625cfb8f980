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


def test_schema_1_is_read_and_written_back_as_schema_2():
    raw = sample().to_dict()
    raw["schema"] = 1
    registry = Registry.from_json(json.dumps(raw).encode())
    assert registry.route("SMH").model == "etfs/SMH"
    assert json.loads(registry.to_json())["schema"] == 2


def test_a_newer_schema_is_refused_with_an_upgrade_hint():
    raw = sample().to_dict()
    raw["schema"] = 3
    with pytest.raises(InvalidModel, match="newer tickerserve wrote it: upgrade"):
        Registry.from_json(json.dumps(raw).encode())


def test_writers_keep_fields_they_do_not_know(tmp_path):
    # Given a registry a newer writer extended at every level
    store = LocalStore(tmp_path)
    raw = timeframed().to_dict()
    raw["owner"] = "quant-team"
    raw["tickers"]["SMH"]["note"] = {"desk": "vol"}
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
    assert written["models"]["etfs/SMH"]["retention"] == {"days": 30}
    assert written["tickers"]["AAPL"]["timeframes"] == {
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
