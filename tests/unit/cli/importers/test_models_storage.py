"""Seed 000 trees (models_storage/): accepted registry shapes, inferred routes, and refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.seed_support import write_json
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers import models_storage
from tickerserve.cli.importers.asset_registry import SeedEntry, parse_seed_registry
from tickerserve.cli.importers.plan import ImportOptions
from tickerserve.publishing.release import RouteChange

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


def plan_tree(path, *, stocks):
    root = models_storage.find_root(path) or path
    return models_storage.plan(root, ImportOptions(stocks=tuple(stocks)))


def _tree(tmp_path, etfs=("SMH", "QQQ"), universal=True):
    """Production folders as seed 000 shows them (the plan does not open the files)."""
    root = tmp_path / "models_storage"
    folders = [root / "etfs" / ticker / "production" for ticker in etfs]
    if universal:
        folders.append(root / "stocks/universal/production")
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "lightgbm_clean_model.pkl").write_bytes(b"")
    (root / "etfs/OLD/archive").mkdir(parents=True)
    return root


def test_without_registry_routes_are_inferred(tmp_path):
    # Given a tree without metadata/asset_registry.json, and --stocks
    _tree(tmp_path)
    # When planning (pointing at the folder that contains models_storage/)
    plan = plan_tree(tmp_path, stocks=["aapl", "MSFT"])
    # Then ETFs come from folder names, stocks from --stocks, and OLD is skipped with a note
    assert [c.model for c in plan.candidates] == ["etfs/QQQ", "etfs/SMH", "stocks/universal"]
    assert plan.routes == [
        RouteChange("AAPL", "stock", "stocks/universal"),
        RouteChange("MSFT", "stock", "stocks/universal"),
        RouteChange("QQQ", "etf", "etfs/QQQ"),
        RouteChange("SMH", "etf", "etfs/SMH"),
    ]
    assert plan.notes == ["skipped etfs/OLD: no production/ folder"]
    assert not plan.registry_found


def test_registry_ticker_without_model_is_noted_not_routed(tmp_path):
    # Given a registry listing an ETF that has no folder, and stocks but no universal model
    root = _tree(tmp_path, universal=False)
    write_json(root / "metadata/asset_registry.json", {"etfs": ["SMH", "XLK"], "stocks": ["AAPL"]})
    # When planning
    plan = plan_tree(root, stocks=[])
    # Then the folders are routed and the others are reported
    assert {r.ticker for r in plan.routes} == {"SMH", "QQQ"}
    assert "not routed AAPL (stock): no model folder for it" in plan.notes
    assert "not routed XLK (etf): no model folder for it" in plan.notes


def test_model_path_that_matches_no_folder_is_refused(tmp_path):
    root = _tree(tmp_path)
    write_json(
        root / "metadata/asset_registry.json", {"etfs": {"SMH": "/data/etfs/XLK/production"}}
    )
    with pytest.raises(Refused) as error:
        plan_tree(root, stocks=[])
    assert error.value.message == (
        "asset_registry.json: SMH: model_path '/data/etfs/XLK/production' "
        "matches no model folder in the tree"
    )


def test_model_path_can_route_a_ticker_to_another_model(tmp_path):
    # Given a registry that routes SOXX to SMH's model by path
    root = _tree(tmp_path)
    write_json(
        root / "metadata/asset_registry.json",
        {"SOXX": {"type": "etf", "model_path": "models_storage/etfs/SMH/production/model.joblib"}},
    )
    # When planning / Then SOXX shares etfs/SMH
    plan = plan_tree(root, stocks=[])
    assert RouteChange("SOXX", "etf", "etfs/SMH") in plan.routes


def test_empty_tree_is_refused(tmp_path):
    with pytest.raises(Refused) as error:
        plan_tree(tmp_path, stocks=[])
    assert error.value.message == (
        f"{tmp_path}: no model folders (expected etfs/*/production or stocks/universal/production)"
    )
