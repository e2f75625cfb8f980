"""Seed 001's training runs: every run a version in time order, the run ``latest`` names (a
symlink, or a pointer file written on Windows) in production, torch runs refused with the
reason, the walk-forward best as the ``best`` alias, and a symbol with runs of several model
types published per type and left unrouted."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.seed_layouts import FEATURES, SELECTED, originals, quiet, write_seed_001
from tickerserve.cli.importers import run_dirs
from tickerserve.cli.importers.plan import ImportOptions, Skipped
from tickerserve.publishing.conversion.pickles import NO_TORCH
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
        ("stocks/BTCEUR", "20240815_102314", ()),
        ("stocks/BTCEUR", "20240816_143502", ("production",)),
        # ETHEUR's pointer (written on Windows) names the older run
        ("stocks/ETHEUR", "20240810_090000", ("production",)),
        ("stocks/ETHEUR", "20240812_090000", ()),
        ("stocks/BTCEUR", "metadata/best_wf_lightgbm_BTCEUR.pkl", ("best",)),
    ]
    plan = run_dirs.plan(root, ImportOptions())
    assert plan.routes == [
        RouteChange("BTCEUR", "stock", "stocks/BTCEUR", signal="lightgbm"),
        RouteChange("ETHEUR", "stock", "stocks/ETHEUR", signal="lightgbm"),
    ]


def test_torch_runs_and_artifacts_are_skipped_with_the_reason(tmp_path: Path):
    skipped = run_dirs.plan(write_seed_001(tmp_path), ImportOptions()).skipped
    assert skipped == [
        Skipped("gru/BTCEUR/20240816_142301",
                f"model.pth is a PyTorch model (torch.save, e.g. a GRU): not imported, because "
                f"{NO_TORCH}"),
        Skipped("ppo/BTCEUR/20240816_144023",
                f"model.zip is a Stable-Baselines3 model (e.g. PPO, on torch): not imported, "
                f"because {NO_TORCH}"),
        Skipped("metadata/best_wf_gru_BTCEUR.pth",
                f"best_wf_gru_BTCEUR.pth is a PyTorch model (torch.save, e.g. a GRU): not "
                f"imported, because {NO_TORCH}"),
    ]  # fmt: skip


def test_etfs_and_another_alias_are_honoured(tmp_path: Path):
    found = planned(write_seed_001(tmp_path), etfs=frozenset({"ETHEUR"}), alias="live")
    assert ("etfs/ETHEUR", "20240810_090000", ("live",)) in found
    assert ("stocks/BTCEUR", "20240816_143502", ("live",)) in found


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
        ("BTCEUR", "stocks/BTCEUR", "lightgbm"),
        ("ETHEUR", "stocks/ETHEUR/lightgbm", "lightgbm"),
        ("ETHEUR", "stocks/ETHEUR/xgboost", "xgboost"),
    ]
    assert plan.notes == []
    # --signal renames the LightGBM runs' signal; the other types keep their own
    renamed = run_dirs.plan(root, ImportOptions(signal="direction"))
    assert [r.signal for r in renamed.routes] == ["direction", "direction", "xgboost"]


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
