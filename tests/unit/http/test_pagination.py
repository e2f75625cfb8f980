"""GET /models one page at a time: every route exactly once, pages bounded by count and bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import REGISTRY_KEY, load_event
from tickerserve.contract import LIMITS
from tickerserve.http.api import Api
from tickerserve.http.pagination import TOKEN_PATTERN
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.registry import AliasTarget, ModelEntry, Registry, TickerRoute
from tickerserve.storage.store import LocalStore

SHA = "0" * 64
MIB = 1024 * 1024


def registry_of(
    tickers: int,
    *,
    models: int = 3,
    name_length: int = 10,
    aliases: int = 1,
    alias_length: int = 2,
    timeframes: int = 0,
) -> Registry:
    """``tickers`` tickers spread over ``models`` models (each with ``aliases`` aliases), each
    ticker also routing ``timeframes`` timeframes; names padded to ``name_length``."""
    names = [f"m/{i:0{name_length - 2}d}"[:64] for i in range(models)]
    registry = Registry(revision=7, updated_at="2026-11-23T09:00:00Z")
    for name in names:
        registry.models[name] = ModelEntry(
            aliases={
                f"a{j:0{alias_length - 1}d}": AliasTarget(f"1.0.{j}", SHA, "")
                for j in range(aliases)
            }
        )
    for t in range(tickers):
        # Consecutive rows name different models, so a page names as many as it holds rows.
        first = t * (timeframes + 1)
        frames = {f"m{f + 1}": names[(first + f + 1) % models] for f in range(timeframes)}
        registry.tickers[f"T{t:014d}"] = TickerRoute.single("stock", names[first % models], frames)
    registry.fallbacks["stock"] = names[0]
    registry.models["unrouted/model"] = ModelEntry()
    return registry


def api_over(registry: Registry | bytes, tmp_path: Path) -> Api:
    store = LocalStore(tmp_path / "store")
    store.put(REGISTRY_KEY, registry if isinstance(registry, bytes) else registry.to_json())
    settings = Settings(store_path=str(store.root), cache_dir=str(tmp_path / "cache"))
    return Api(ModelService(settings))


def get_page(api: Api, **query: str) -> tuple[int, dict[str, Any], int]:
    event = load_event("rest_models.json")
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    response = api.handle(event, None)
    return response["statusCode"], json.loads(response["body"]), len(response["body"].encode())


def walk(api: Api, **query: str) -> list[dict[str, Any]]:
    """Every page, following ``next``."""
    pages = []
    token = None
    while True:
        status, body, _ = get_page(api, **query, **({"next": token} if token else {}))
        assert status == 200, body
        pages.append(body)
        token = body["next"]
        if token is None:
            return pages


def test_pages_hold_every_route_exactly_once_in_order(tmp_path):
    # Given 250 tickers over 3 models, some with timeframes, a fallback and an unrouted model
    registry = registry_of(250, timeframes=1)
    api = api_over(registry, tmp_path)
    # When walking with the default page size
    pages = walk(api)
    rows = [r for p in pages for r in p["routes"]]
    # Then pages hold 100 rows (the default) until the last, whose next is null
    assert [len(p["routes"]) for p in pages] == [100, 100, 100, 100, 100, 2]
    assert pages[-1]["next"] is None
    # And every ticker route, the fallback and the unrouted model appear once, in order
    assert len(rows) == 250 * 2 + 2
    tickers = sorted(registry.tickers)
    assert [(r["ticker"], r["timeframe"]) for r in rows[:500]] == [
        (t, tf) for t in tickers for tf in (None, "m1")
    ]
    assert rows[500] == {
        "ticker": None,
        "signal": "strategy",
        "timeframe": None,
        "asset_class": "stock",
        "model": "m/00000000",
        "via_fallback": True,
        "default": True,
    }
    assert rows[501]["model"] == "unrouted/model"
    # And each page names the aliases of exactly the models its rows name
    for p in pages:
        assert {m["name"] for m in p["models"]} == {r["model"] for r in p["routes"]}
        assert all(
            m["aliases"] == {"a0": "1.0.0"} for m in p["models"] if m["name"] != "unrouted/model"
        )


def test_limit_is_honoured_and_bounded(tmp_path):
    api = api_over(registry_of(30), tmp_path)
    assert [len(p["routes"]) for p in walk(api, limit="7")] == [7, 7, 7, 7, 4]
    assert len(get_page(api, limit="1000")[1]["routes"]) == 32
    for bad in ("0", "1001", "-1", "ten", "1.5", "", "\u0661"):
        status, body, _ = get_page(api, limit=bad)
        assert (status, body["error"]["code"]) == (400, "invalid_limit"), bad


@pytest.mark.parametrize("token", ["x", "eyJhIjoxfQ", "W10", "WzEsOSwieCIsIiJd", "%" * 2000])
def test_a_next_token_not_from_a_page_is_400(tmp_path, token):
    status, body, _ = get_page(api_over(registry_of(3), tmp_path), next=token)
    assert (status, body["error"]["code"]) == (400, "invalid_next")


def test_a_change_between_pages_neither_repeats_nor_skips_a_route_that_stayed(tmp_path):
    # Given the first page of 10 tickers, 4 at a time
    registry = registry_of(10)
    api = api_over(registry, tmp_path)
    _, first, _ = get_page(api, limit="4")
    # When tickers before and after the cursor come and go before the next page
    api.service.store.put(REGISTRY_KEY, _changed(registry).to_json())
    api.service._next_check = 0  # the registry is re-read on the next request
    rest = []
    token = first["next"]
    while token:
        _, body, _ = get_page(api, limit="4", next=token)
        rest += [r["ticker"] for r in body["routes"]]
        token = body["next"]
    # Then the rest continues after the last ticker the first page held
    seen = [r["ticker"] for r in first["routes"]]
    assert seen == ["T00000000000000", "T00000000000001", "T00000000000002", "T00000000000003"]
    assert rest[: rest.index(None)] == [
        "T00000000000004",
        "T00000000000006",
        "T00000000000007",
        "T00000000000008",
        "T00000000000009",
        "T00000000000010",
    ]


def _changed(registry: Registry) -> Registry:
    changed = Registry.from_json(registry.to_json())
    del changed.tickers["T00000000000001"]  # before the cursor
    del changed.tickers["T00000000000005"]  # after it
    changed.tickers["T00000000000010"] = TickerRoute.single("stock", "m/00000000")
    return changed


def test_no_page_exceeds_1_mib_whatever_the_registry_holds(tmp_path):
    # Given a registry at the edges of what its names allow: every ticker 15 characters with
    # 20 timeframes, 1,000 models with 64-character names and 40 aliases of 32 characters
    registry = registry_of(
        1000, models=1000, name_length=64, aliases=40, alias_length=32, timeframes=20
    )
    data = registry.to_json()
    assert len(data) > 6 * MIB  # over Lambda's response limit in one answer
    api = api_over(data, tmp_path)
    # When every page is fetched at the largest page size
    sizes, rows = [], 0
    token = None
    while True:
        status, body, size = get_page(api, limit="1000", **({"next": token} if token else {}))
        assert status == 200
        sizes.append(size)
        rows += len(body["routes"])
        token = body["next"]
        if token is None:
            break
    # Then no page passes 1 MiB, yet together they hold every route
    assert max(sizes) <= LIMITS.models_page_bytes == MIB
    assert rows == 1000 * 21 + 2
    assert len(sizes) > 1000 * 21 / 1000 + 1  # pages stopped below 1,000 rows for size


def test_a_model_whose_aliases_alone_overflow_a_page_is_truncated_and_flagged(tmp_path):
    registry = registry_of(1, models=1, aliases=25_000, alias_length=32)
    _, body, size = get_page(api_over(registry, tmp_path))
    assert size <= MIB
    (entry,) = [m for m in body["models"] if m["name"] == "m/00000000"]
    assert entry["aliases_truncated"] is True
    assert 1000 < len(entry["aliases"]) < 25_000


def test_direct_invoke_pages_too(tmp_path):
    api = api_over(registry_of(5), tmp_path)
    first = api.handle({"action": "models", "limit": 2}, None)
    assert len(first["routes"]) == 2
    second = api.handle({"action": "models", "limit": 2, "next": first["next"]}, None)
    assert second["routes"][0]["ticker"] == "T00000000000002"
    assert api.handle({"action": "models", "limit": True}, None)["error"]["code"] == "invalid_limit"


def test_every_token_the_document_allows_names_a_position(tmp_path):
    # A schema-driven client may send any token the pattern allows: it is a place in the order
    api = api_over(registry_of(5), tmp_path)

    @settings(max_examples=200, deadline=None)
    @given(token=st.from_regex(TOKEN_PATTERN, fullmatch=True))
    def answered(token: str) -> None:
        status, body, _ = get_page(api, next=token)
        assert status == 200, body

    answered()


def test_a_tickers_signals_are_rows_of_their_own_and_its_default_is_marked(tmp_path):
    # Given SPY on its strategy model (the default), a volatility model and direction per
    # timeframe, and GME with only a direction model beside the stock fallback
    registry = registry_of(0)
    for name in ("etfs/SPY", "etfs/SPY/volatility", "etfs/SPY/d1"):
        registry.models[name] = ModelEntry(aliases={"production": AliasTarget("1.0.0", SHA, "")})
    registry.set_route("SPY", "etfs/SPY", "etf")
    registry.set_route("SPY", "etfs/SPY/volatility", "etf", signal="volatility")
    registry.set_route("SPY", "etfs/SPY/d1", "etf", timeframe="d1", signal="direction")
    registry.set_route("GME", "etfs/SPY/d1", "stock", timeframe="d1", signal="direction")
    api = api_over(registry, tmp_path)
    # When walked one row a page
    rows = [r for p in walk(api, limit="1") for r in p["routes"]]
    # Then each ticker lists its signals in order, each with its timeframes
    assert [(r["ticker"], r["signal"], r["timeframe"], r["model"], r["default"]) for r in rows] == [
        ("GME", "direction", "d1", "etfs/SPY/d1", False),
        ("GME", "strategy", None, "m/00000000", True),  # the stock fallback answers
        ("SPY", "direction", "d1", "etfs/SPY/d1", False),
        ("SPY", "strategy", None, "etfs/SPY", True),
        ("SPY", "volatility", None, "etfs/SPY/volatility", False),
        (None, "strategy", None, "m/00000000", True),
        (None, None, None, "m/00000001", False),
        (None, None, None, "m/00000002", False),
        (None, None, None, "unrouted/model", False),
    ]
    assert rows[1]["via_fallback"]
