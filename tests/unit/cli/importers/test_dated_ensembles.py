"""Seed 002's dated ensembles: one model per symbol and timeframe, versions in date order with
production moving through them (the newest last), routed per timeframe on the direction
signal (``d1`` also that signal's default), and files whose names do not follow
``{SYMBOL}_{timeframe}_{YYYYMMDD}.pkl`` skipped with the reason."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from tests.seed_layouts import FEATURES, ensemble_predict, write_seed_002
from tickerserve.cli.importers import dated_ensembles
from tickerserve.cli.importers.plan import ImportOptions, Skipped
from tickerserve.publishing.release import RouteChange
from tickerserve.serving.model import LoadedModel


def test_the_trained_models_folder_is_found_at_or_under_the_path(tmp_path: Path):
    folder = write_seed_002(tmp_path)
    assert dated_ensembles.find_root(tmp_path) == folder == dated_ensembles.find_root(folder)
    (tmp_path / "other").mkdir()
    (tmp_path / "other/model.pkl").write_bytes(b"x")
    assert dated_ensembles.find_root(tmp_path / "other") is None


def test_each_symbol_and_timeframe_is_a_model_with_dated_versions(tmp_path: Path):
    plan = dated_ensembles.plan(write_seed_002(tmp_path), ImportOptions())
    found = [(c.model, c.source, c.aliases, c.origin["date"]) for c in plan.candidates]
    assert found == [
        ("stocks/AAPL/d1", "AAPL_d1_20250114.pkl", ("production",), "20250114"),
        ("stocks/AAPL/d1", "AAPL_d1_20250121.pkl", ("production",), "20250121"),
        ("stocks/AAPL/h1", "AAPL_h1_20250121.pkl", ("production",), "20250121"),
    ]
    assert plan.routes == [
        RouteChange("AAPL", "stock", "stocks/AAPL/d1", "d1", "direction"),
        RouteChange("AAPL", "stock", "stocks/AAPL/d1", signal="direction"),
        RouteChange("AAPL", "stock", "stocks/AAPL/h1", "h1", "direction"),
    ]


def test_etfs_and_another_alias_are_honoured(tmp_path: Path):
    options = ImportOptions(alias="staging", etfs=frozenset({"AAPL"}))
    plan = dated_ensembles.plan(write_seed_002(tmp_path), options)
    assert {c.model for c in plan.candidates} == {"etfs/AAPL/d1", "etfs/AAPL/h1"}
    assert [c.aliases for c in plan.candidates] == [("staging",)] * 3
    assert {r.asset_class for r in plan.routes} == {"etf"}


def test_badly_named_files_are_skipped_with_the_reason(tmp_path: Path):
    folder = write_seed_002(tmp_path)
    (folder / "notes.pkl").write_bytes(b"x")
    (folder / "AAPL_d1_20251399.pkl").write_bytes(b"x")
    (folder / "AAPL_hourly_20250101.pkl").write_bytes(b"x")
    (folder / "README.md").write_text("not a pickle")
    skipped = dated_ensembles.plan(folder, ImportOptions()).skipped
    assert skipped[0] == Skipped("AAPL_d1_20251399.pkl", "unconverted data remains: 99")
    assert skipped[1].source == "AAPL_hourly_20250101.pkl"
    assert skipped[1].reason.startswith("invalid timeframe 'hourly'")
    assert skipped[2] == Skipped("notes.pkl", "name is not {SYMBOL}_{timeframe}_{YYYYMMDD}.pkl")
    assert len(skipped) == 3


def test_a_candidate_converts_to_the_weighted_ensemble_dated_by_its_file(tmp_path: Path):
    plan = dated_ensembles.plan(write_seed_002(tmp_path), ImportOptions())
    converted = plan.candidates[1].convert()
    meta = converted.bundle.metadata
    assert (meta.method, meta.created_at) == ("weighted_average", "2025-01-21")
    artifact = pickle.loads((tmp_path / "trained_models/AAPL_d1_20250121.pkl").read_bytes())
    x = np.random.default_rng(0).normal(size=(10, len(FEATURES)))
    mine = LoadedModel(meta, converted.bundle.files).predict_proba(x)
    np.testing.assert_allclose(mine, ensemble_predict(artifact, x), rtol=1e-9)
