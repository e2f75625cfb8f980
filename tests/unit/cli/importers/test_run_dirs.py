"""Seed 001's training runs: every run a version in time order, the run ``latest`` names (a
symlink, or a pointer file written on Windows) in production, GRU and PPO runs converted to
ONNX networks, the walk-forward best as the ``best`` alias, and a symbol with runs of several
model types published per type, each routed on its own signal."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.network_support import networks, write_gru_run
from tests.seed_layouts import FEATURES, SELECTED, originals, quiet, write_seed_001
from tickerserve.cli.importers import run_dirs
from tickerserve.cli.importers.network_runs import NetworkOptions
from tickerserve.cli.importers.plan import ImportOptions
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.release import RouteChange
from tickerserve.serving.model import LoadedModel


def planned(root: Path, **options) -> list[tuple[str, str, tuple[str, ...]]]:
    plan = run_dirs.plan(root, ImportOptions(**options))
    return [(c.model, c.origin.get("run_id") or c.source, c.aliases) for c in plan.candidates]


@pytest.mark.parametrize("pointer", [False, True])
def test_runs_become_versions_and_latest_gets_production(tmp_path: Path, pointer: bool):
    root = write_seed_001(tmp_path, pointer=pointer)
    assert run_dirs.find_root(tmp_path) == root
    assert planned(root) == [
        ("stocks/BTCEUR/lightgbm", "20240815_102314", ()),
        ("stocks/BTCEUR/lightgbm", "20240816_143502", ("production",)),
        ("stocks/BTCEUR/gru", "20240816_142301", ("production",)),
        ("stocks/BTCEUR/ppo", "20240816_144023", ("production",)),
        # ETHEUR's pointer (written on Windows) names the older run
        ("stocks/ETHEUR", "20240810_090000", ("production",)),
        ("stocks/ETHEUR", "20240812_090000", ()),
        ("stocks/BTCEUR/gru", "metadata/best_wf_gru_BTCEUR.pth", ("best",)),
        ("stocks/BTCEUR/lightgbm", "metadata/best_wf_lightgbm_BTCEUR.pkl", ("best",)),
    ]
    plan = run_dirs.plan(root, ImportOptions())
    # Each model type on its own signal: LightGBM's the symbol's default, gru and ppo beside it
    assert plan.routes == [
        RouteChange("BTCEUR", "stock", "stocks/BTCEUR/lightgbm", signal="lightgbm"),
        RouteChange("BTCEUR", "stock", "stocks/BTCEUR/gru", signal="gru"),
        RouteChange("BTCEUR", "stock", "stocks/BTCEUR/ppo", signal="ppo"),
        RouteChange("ETHEUR", "stock", "stocks/ETHEUR", signal="lightgbm"),
    ]
    assert plan.skipped == []


def test_gru_and_ppo_runs_convert_to_onnx_networks(tmp_path: Path):
    # Given seed 001's GRU and PPO runs (real networks, saved as the seed saves them)
    plan = run_dirs.plan(write_seed_001(tmp_path), ImportOptions())
    by_source = {c.source: c for c in plan.candidates}
    # When their candidates convert
    gru = by_source["gru/BTCEUR/20240816_142301"].convert().bundle.metadata
    ppo = by_source["ppo/BTCEUR/20240816_144023"].convert().bundle.metadata
    best = by_source["metadata/best_wf_gru_BTCEUR.pth"].convert()
    # Then each is one ONNX member, checked against its original
    assert (gru.model_type, gru.member_kinds, gru.network and gru.network.shape) == (
        "gru",
        ["onnx"],
        (8, 5),
    )
    assert (ppo.model_type, ppo.classes) == ("ppo", ["hold", "buy", "sell"])
    assert gru.source["probe"]["max_relative_diff"] <= 1e-5
    assert ppo.source["probe"]["max_relative_diff"] <= 1e-5
    # And the walk-forward best borrows its run's window, names and preprocessor
    assert best.bundle.files == by_source["gru/BTCEUR/20240816_142301"].convert().bundle.files
    assert best.warnings == [
        "the preprocessor of 20240816_142301 is taken for best_wf_gru_BTCEUR.pth"
    ]


def test_a_gru_run_without_a_window_needs_window(tmp_path: Path):
    root = write_seed_001(tmp_path)
    gru_net = networks()["gru"]  # the same run, saved without its sequence_length anywhere
    write_gru_run(
        root / "gru/BTCEUR/20240816_142301",
        gru_net.original,
        gru_net.extra,
        record_window=False,
        config={},
    )
    gru = next(
        c
        for c in run_dirs.plan(root, ImportOptions()).candidates
        if c.source == "gru/BTCEUR/20240816_142301"
    )
    with pytest.raises(NotConvertible, match=r"recorded nowhere .*: give --window N"):
        gru.convert()
    options = ImportOptions(network=NetworkOptions(window=8))
    gru = next(
        c
        for c in run_dirs.plan(root, options).candidates
        if c.source == "gru/BTCEUR/20240816_142301"
    )
    meta = gru.convert().bundle.metadata
    assert meta.network is not None and meta.network.rows == 8


def test_etfs_and_another_alias_are_honoured(tmp_path: Path):
    found = planned(write_seed_001(tmp_path), etfs=frozenset({"ETHEUR"}), alias="live")
    assert ("etfs/ETHEUR", "20240810_090000", ("live",)) in found
    assert ("stocks/BTCEUR/lightgbm", "20240816_143502", ("live",)) in found


def test_a_latest_that_names_no_run_leaves_production_to_the_newest(tmp_path: Path):
    root = write_seed_001(tmp_path, pointer=True)
    (root / "lightgbm/ETHEUR/latest_pointer.txt").write_text("C:\\runs\\20990101_000000")
    plan = run_dirs.plan(root, ImportOptions())
    eth = [(c.origin["run_id"], c.aliases) for c in plan.candidates if c.model == "stocks/ETHEUR"]
    assert eth == [("20240810_090000", ()), ("20240812_090000", ("production",))]
    assert plan.notes == [
        "lightgbm/ETHEUR: latest names '20990101_000000', which is not a run folder here; "
        "the newest run gets the alias"
    ]


def test_runs_of_several_model_types_are_routed_each_on_its_own_signal(tmp_path: Path):
    root = write_seed_001(tmp_path)
    shutil.copytree(root / "lightgbm/ETHEUR", root / "xgboost/ETHEUR", symlinks=True)
    plan = run_dirs.plan(root, ImportOptions())
    assert {c.model for c in plan.candidates if "ETHEUR" in c.model} == {
        "stocks/ETHEUR/lightgbm", "stocks/ETHEUR/xgboost",
    }  # fmt: skip
    # LightGBM first: a symbol new to the registry takes its signal as the default
    assert [(r.ticker, r.model, r.signal) for r in plan.routes] == [
        ("BTCEUR", "stocks/BTCEUR/lightgbm", "lightgbm"),
        ("BTCEUR", "stocks/BTCEUR/gru", "gru"),
        ("BTCEUR", "stocks/BTCEUR/ppo", "ppo"),
        ("ETHEUR", "stocks/ETHEUR/lightgbm", "lightgbm"),
        ("ETHEUR", "stocks/ETHEUR/xgboost", "xgboost"),
    ]
    assert plan.notes == []
    # --signal renames the LightGBM runs' signal; the other types keep their own
    renamed = run_dirs.plan(root, ImportOptions(signal="direction"))
    assert [r.signal for r in renamed.routes] == ["direction", "gru", "ppo", "direction", "xgboost"]


def test_seed_000s_production_folders_are_not_runs(tmp_path: Path):
    (tmp_path / "etfs/SMH/production").mkdir(parents=True)
    (tmp_path / "etfs/SMH/production/metadata.json").write_text("{}")
    assert run_dirs.find_root(tmp_path) is None


def test_a_run_converts_with_the_full_feature_list_and_its_selection(tmp_path: Path):
    plan = run_dirs.plan(write_seed_001(tmp_path), ImportOptions())
    converted = plan.candidates[1].convert()
    meta = converted.bundle.metadata
    assert (meta.feature_names, meta.selected_features) == (list(FEATURES), SELECTED)
    x = np.random.default_rng(0).normal(size=(8, len(SELECTED)))
    model = originals().runs["20240816_143502"]
    np.testing.assert_allclose(
        LoadedModel(meta, converted.bundle.files).predict_proba(x),
        quiet(lambda: model.predict_proba(x)), rtol=1e-9,
    )  # fmt: skip
