"""Which folders hold a network, and each becomes a checked ONNX version: a GRU run or lone
checkpoint, a PPO run, a team's model.onnx; anything else is left to the other readers."""

from __future__ import annotations

import shutil

import pytest

from tests.network_support import networks
from tickerserve.cli.importers.network_runs import NetworkOptions, kind_of, read_network


@pytest.mark.parametrize(("name", "kind"), [("gru", "gru"), ("ppo", "ppo"), ("ppo_box", "ppo")])
def test_run_folders_are_recognised_by_their_model_file(name, kind):
    assert kind_of(networks()[name].folder) == kind


def test_a_lone_checkpoint_and_an_onnx_export_are_recognised(tmp_path):
    (tmp_path / "best_wf_gru_BTCEUR.pth").write_bytes(b"x")
    (tmp_path / "model.pkl").write_bytes(b"x")
    export = tmp_path / "export"
    export.mkdir()
    (export / "model.onnx").write_bytes(b"x")
    assert kind_of(tmp_path / "best_wf_gru_BTCEUR.pth") == "gru"
    assert kind_of(export) == "onnx"
    assert kind_of(tmp_path / "model.pkl") is None
    assert kind_of(tmp_path) is None  # a folder of other things
    assert read_network(tmp_path, model="x/y") is None


def test_a_lone_checkpoint_borrows_the_lenders_window_and_preprocessor(tmp_path):
    gru = networks()["gru"]
    best = tmp_path / "best_wf_gru_BTCEUR.pth"
    shutil.copy(gru.folder / "model.pth", best)
    converted = read_network(best, model="x/gru", lender=gru.folder)
    assert converted is not None
    meta = converted.bundle.metadata
    assert meta.network is not None and meta.network.shape == (8, 5)
    assert meta.selected_features == [0, 2, 5, 8, 11]
    assert converted.warnings == ["the preprocessor of gru is taken for best_wf_gru_BTCEUR.pth"]


def test_options_reach_the_gru_conversion(tmp_path):
    gru = networks()["gru"]
    converted = read_network(gru.folder, model="x/gru", options=NetworkOptions(window=8))
    assert converted is not None and converted.bundle.metadata.network is not None
    assert converted.bundle.metadata.network.rows == 8
