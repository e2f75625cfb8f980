"""What an import plans: ``--route TICKER`` or ``TICKER=MODEL`` read against the import's
models (ETF or stock by the model's folder or ``--etfs``), and sources shown relative to the
imported folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.plan import ImportOptions, ImportPlan, routes_from_flags
from tickerserve.publishing.release import RouteChange


def test_a_bare_ticker_routes_to_the_one_model():
    options = ImportOptions(routes=("spy", "QQQ"), etfs=frozenset({"QQQ"}))
    assert routes_from_flags(options, ["stocks/vol"], "volatility") == [
        RouteChange("SPY", "stock", "stocks/vol", signal="volatility"),
        RouteChange("QQQ", "etf", "stocks/vol", signal="volatility"),
    ]


def test_signal_names_the_signal_routes_go_on_else_the_layouts_default():
    options = ImportOptions(routes=("SPY",), signal="vol_1d")
    assert routes_from_flags(options, ["stocks/vol"], "volatility") == [
        RouteChange("SPY", "stock", "stocks/vol", signal="vol_1d"),
    ]


def test_a_model_under_etfs_routes_as_an_etf():
    routes = routes_from_flags(ImportOptions(routes=("SPY",)), ["etfs/SPY/vol"], "volatility")
    assert routes == [RouteChange("SPY", "etf", "etfs/SPY/vol", signal="volatility")]


def test_ticker_equals_model_picks_one_of_several_models():
    options = ImportOptions(routes=("AAPL=stocks/a", "MSFT=stocks/b"))
    assert [r.model for r in routes_from_flags(options, ["stocks/a", "stocks/b"], "strategy")] == [
        "stocks/a",
        "stocks/b",
    ]


@pytest.mark.parametrize(
    ("route", "models", "message"),
    [
        ("AAPL", ["stocks/a", "stocks/b"],
         "--route 'AAPL': this import has several models (stocks/a, stocks/b); give --route "
         "TICKER=MODEL"),
        ("AAPL=stocks/c", ["stocks/a", "stocks/b"],
         "--route 'AAPL=stocks/c': 'stocks/c' is not a model of this import (stocks/a, "
         "stocks/b)"),
        ("A A", ["stocks/a"], "--route 'A A': invalid ticker"),
    ],
)  # fmt: skip
def test_a_route_that_names_no_model_of_the_import_is_refused(route, models, message):
    with pytest.raises(Refused, match=f"^{re.escape(message)}"):
        routes_from_flags(ImportOptions(routes=(route,)), models, "strategy")


def test_sources_are_shown_relative_to_the_imported_folder(tmp_path: Path):
    plan = ImportPlan("001", tmp_path / "models")
    assert plan.relative(tmp_path / "models/lightgbm/BTCEUR/run") == "lightgbm/BTCEUR/run"
    assert plan.relative(tmp_path / "models") == "."
    assert plan.relative(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")
