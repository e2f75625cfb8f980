"""A seed's ``metadata/asset_registry.json``: every shape seeds write it in reads as the same
tickers, asset classes and model paths; contradictions and unreadable entries are refused
naming the ticker."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.asset_registry import (
    SeedEntry,
    normalize_asset_class,
    parse_seed_registry,
)

EXPECTED = {
    SeedEntry("SMH", "etf", None),
    SeedEntry("QQQ", "etf", None),
    SeedEntry("AAPL", "stock", None),
}


@pytest.mark.parametrize(
    "raw",
    [
        {"etfs": ["SMH", "QQQ"], "stocks": ["AAPL"]},
        {"ETF": {"smh": {}, "QQQ": None}, "Stocks": {"AAPL": {"sector": "tech"}}, "version": 3},
        {"SMH": {"type": "ETF"}, "QQQ": {"asset_class": "etf"}, "AAPL": {"type": "equity"}},
        {"assets": {"SMH": {"type": "etf"}, "QQQ": {"type": "etfs"}, "AAPL": {"type": "stock"}}},
        [
            {"ticker": "SMH", "asset_class": "etf"},
            {"symbol": "QQQ", "type": "etf"},
            {"ticker": "aapl", "type": "stocks"},
        ],
        {
            "schema": 1,
            "tickers": {
                "SMH": {"asset_class": "etf"},
                "QQQ": {"asset_class": "etf"},
                "AAPL": {"asset_class": "stock"},
            },
        },
    ],
    ids=["grouped-lists", "grouped-maps", "per-ticker", "wrapped", "list", "tickerserve"],
)
def test_accepted_registry_shapes(raw):
    # Given any accepted shape / When parsed / Then the same three entries come out
    assert set(parse_seed_registry(raw)) == EXPECTED


def test_model_path_is_kept():
    # Given a grouped registry whose value is a path
    entries = parse_seed_registry({"etfs": {"SMH": "models_storage/etfs/SMH/production"}})
    # Then the path is carried for route resolution
    assert entries == [SeedEntry("SMH", "etf", "models_storage/etfs/SMH/production")]


_tickers = st.lists(
    st.from_regex(r"[A-Z]{1,5}", fullmatch=True), min_size=1, max_size=8, unique=True
)


@given(etfs=_tickers, stocks=_tickers)
def test_grouped_and_listed_shapes_agree(etfs, stocks):
    # Given disjoint ETF and stock tickers
    stocks = [s for s in stocks if s not in etfs]
    grouped = {"etfs": etfs, "stocks": stocks}
    listed = [{"ticker": t, "type": "etf"} for t in etfs]
    listed += [{"ticker": t, "type": "stock"} for t in stocks]
    # When both shapes are parsed / Then they describe the same registry
    assert set(parse_seed_registry(grouped)) == set(parse_seed_registry(listed))
    assert len(parse_seed_registry(grouped)) == len(etfs) + len(stocks)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"etfs": ["SMH"], "stocks": ["SMH"]},
            "asset_registry.json: SMH is listed twice (etf and stock)",
        ),
        (
            {"SMH": {"model_path": "x"}},
            "asset_registry.json: SMH has no asset class (asset_class or type)",
        ),
        ([{"asset_class": "etf"}], "asset_registry.json: a list item has no ticker (or symbol)"),
        ("SMH", "asset_registry.json: must be a JSON object or list"),
        (
            {"etfs": ["../X"]},
            "asset_registry.json: invalid ticker '../X': 1-15 ASCII letters, "
            "digits, '.', '-', '^', '='",
        ),
        ({"etfs": {"SMH": 3}}, "asset_registry.json: SMH: expected an object, a path or null"),
    ],
)
def test_invalid_registries_are_refused(raw, message):
    with pytest.raises(Refused) as error:
        parse_seed_registry(raw)
    assert error.value.message == message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ETF", "etf"), (" Equities ", "stock"), ("single-stock", "stock"), ("fund", "etf"),
     ("crypto", "crypto")],
)  # fmt: skip
def test_asset_classes_are_read_by_their_usual_names(raw: str, expected: str):
    assert normalize_asset_class(raw, "SMH") == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "asset_registry.json: SMH has no asset class (asset_class or type)"),
        ("  ", "asset_registry.json: SMH has no asset class (asset_class or type)"),
        ("Big Cap!", "asset_registry.json: SMH: invalid asset class"),
    ],
)
def test_an_asset_class_that_cannot_be_read_is_refused(raw: object, message: str):
    with pytest.raises(Refused) as caught:
        normalize_asset_class(raw, "SMH")
    assert caught.value.message.startswith(message)
