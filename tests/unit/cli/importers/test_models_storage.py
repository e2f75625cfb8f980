"""Seed 000 trees (models_storage/): routes from the seed's registry or inferred from the
folders, and refusals (the registry's shapes: ``test_asset_registry.py``)."""

from __future__ import annotations

import pytest

from tests.seed_support import write_json
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers import models_storage
from tickerserve.cli.importers.plan import ImportOptions
from tickerserve.publishing.release import RouteChange


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
        RouteChange("AAPL", "stock", "stocks/universal", signal="strategy"),
        RouteChange("MSFT", "stock", "stocks/universal", signal="strategy"),
        RouteChange("QQQ", "etf", "etfs/QQQ", signal="strategy"),
        RouteChange("SMH", "etf", "etfs/SMH", signal="strategy"),
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
    assert RouteChange("SOXX", "etf", "etfs/SMH", signal="strategy") in plan.routes


def test_empty_tree_is_refused(tmp_path):
    with pytest.raises(Refused) as error:
        plan_tree(tmp_path, stocks=[])
    assert error.value.message == (
        f"{tmp_path}: no model folders (expected etfs/*/production or stocks/universal/production)"
    )
