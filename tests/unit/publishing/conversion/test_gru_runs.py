"""Seed 001's GRU runs become checked ONNX versions: the window, the features and the
preprocessor come from where the seed keeps them, and whatever cannot be served as the seed
served it is refused, saying what to give."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from tests.network_support import FEATURES, gru_answers, networks, train_gru, write_gru_run
from tickerserve.members.network import NetworkSpec
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.gru_runs import GruRun, convert_gru
from tickerserve.serving.model import LoadedModel


@pytest.fixture(scope="module")
def trained() -> tuple:
    return train_gru(4, window=6, seed=7)


def network_of(converted: Any) -> NetworkSpec:
    network = converted.bundle.metadata.network
    assert network is not None
    return network


def run_of(folder: Path) -> GruRun:
    return GruRun(folder / "model.pth", folder)


def test_a_run_is_checked_on_256_windows_and_says_so():
    converted = networks()["gru"].converted
    meta = converted.bundle.metadata
    probe = meta.source["probe"]
    assert probe["rows"] == converted.probe_rows == 256
    assert probe["max_relative_diff"] <= 1e-5 and probe["relative_tolerance"] == 1e-5
    assert meta.source["architecture"] == "GRU 5->16 x2 layer(s), head fc1 16->8 -> fc2 8->1"
    assert meta.source["window"] == 8
    assert set(meta.source["files"]) == {
        "model.pth",
        "metadata.json",
        "config.json",
        "preprocessor.pkl",
    }
    # The full feature list, the run's selection, and missing values the imputer fills
    assert meta.feature_names == FEATURES and meta.selected_features == [0, 2, 5, 8, 11]
    assert meta.accepts_missing is True and meta.model_type == "gru"
    assert set(converted.bundle.files) == {"model.onnx", "preprocessing.json"}
    assert meta.hyperparameters["hidden_size"] == 16 and meta.metrics["best_val_loss"] == 0.3


def test_the_window_comes_from_config_json_when_metadata_lacks_it(tmp_path, trained):
    model, pre = trained
    folder = write_gru_run(
        tmp_path / "run",
        model,
        pre,
        window=6,
        record_window=False,
        config={"params": {"sequence_length": 6}},
    )
    converted = convert_gru(run_of(folder), model="x/gru")
    assert network_of(converted).shape == (6, 4)


def test_a_window_recorded_nowhere_needs_window(tmp_path, trained):
    model, pre = trained
    folder = write_gru_run(tmp_path / "run", model, pre, record_window=False, config={})
    with pytest.raises(NotConvertible) as caught:
        convert_gru(run_of(folder), model="x/gru")
    assert caught.value.message == (
        f"{folder / 'model.pth'}: the window length is recorded nowhere (metadata.json "
        "sequence_length, config.json, model_config): give --window N"
    )
    converted = convert_gru(run_of(folder), model="x/gru", window=6)
    assert network_of(converted).rows == 6


def test_a_window_that_contradicts_the_run_is_refused(tmp_path, trained):
    model, pre = trained
    folder = write_gru_run(tmp_path / "run", model, pre, window=6)
    with pytest.raises(
        NotConvertible, match=r"--window 9, but metadata\.json says the window is 6"
    ):
        convert_gru(run_of(folder), model="x/gru", window=9)


def test_a_preprocessor_fitted_on_the_full_list_serves_the_selection(tmp_path):
    # Given a GRU over 3 of 6 features whose preprocessor was fitted on all 6
    model, _ = train_gru(3, window=5, seed=8)
    _, full = train_gru(6, window=5, seed=8)
    names = [f"x{i}" for i in range(6)]
    folder = write_gru_run(
        tmp_path / "run", model, full, window=5, feature_names=names, selected=[1, 3, 4]
    )
    # When converted
    converted = convert_gru(run_of(folder), model="x/gru")
    # Then requests name all six, and the network gets the three, scaled as the seed scaled them
    meta = converted.bundle.metadata
    assert meta.used_features == ["x1", "x3", "x4"]
    loaded = LoadedModel(meta, converted.bundle.files)
    raw = np.random.default_rng(1).normal(scale=5, size=(4, 5, 6))
    scaled = full["scaler"].transform(full["imputer"].transform(raw.reshape(-1, 6)))
    with torch.no_grad():
        want = model(
            torch.as_tensor(scaled.reshape(4, 5, 6)[:, :, [1, 3, 4]], dtype=torch.float32)
        ).numpy()
    got = loaded.predict(raw[:, :, [1, 3, 4]].reshape(4, 15)).outputs
    np.testing.assert_allclose(got, want[:, 0], rtol=1e-5, atol=1e-6)


def test_a_preprocessor_of_another_kind_is_refused_with_its_class(tmp_path, trained):
    model, _ = train_gru(4, window=6, seed=7)
    folder = write_gru_run(tmp_path / "run", model, None, window=6)
    joblib.dump(
        {"scaler": PCA(2).fit(np.random.default_rng(0).normal(size=(20, 4)))},
        folder / "preprocessor.pkl",
    )
    with pytest.raises(NotConvertible) as caught:
        convert_gru(run_of(folder), model="x/gru")
    assert caught.value.message.endswith(
        "preprocessor.pkl: the preprocessor is a PCA; a network's scaler must be one of "
        "StandardScaler, MinMaxScaler, RobustScaler (scikit-learn)"
    )


def test_without_a_preprocessor_missing_values_are_refused(tmp_path, trained):
    model, _ = trained
    folder = write_gru_run(tmp_path / "run", model, None, window=6)
    converted = convert_gru(run_of(folder), model="x/gru")
    assert converted.bundle.metadata.accepts_missing is False
    assert "preprocessing.json" not in converted.bundle.files


def test_a_bare_state_dict_is_named_as_the_seed_names_unnamed_features(tmp_path, trained):
    model, pre = trained
    folder = write_gru_run(tmp_path / "run", model, pre, window=6)
    torch.save(model.state_dict(), folder / "model.pth")
    (folder / "metadata.json").write_text(json.dumps({"sequence_length": 6}))
    converted = convert_gru(run_of(folder), model="x/gru")
    assert converted.bundle.metadata.feature_names == [f"feature_{i}" for i in range(4)]
    assert converted.warnings == [
        "no feature names: named feature_0 ... feature_3 (seed 001's convention)"
    ]


def test_a_checkpoint_holding_numpy_values_is_loaded_and_noted(tmp_path, trained):
    model, pre = trained
    folder = write_gru_run(tmp_path / "run", model, pre, window=6)
    saved = torch.load(folder / "model.pth", weights_only=False)
    saved["best_val_loss"] = np.float64(0.25)
    torch.save(saved, folder / "model.pth")
    converted = convert_gru(run_of(folder), model="x/gru")
    assert "loaded with weights_only=False" in converted.warnings[0]
    assert converted.bundle.metadata.metrics["best_val_loss"] == 0.25


def test_a_config_the_weights_contradict_is_noted_and_the_weights_win(tmp_path, trained):
    model, pre = trained
    config = {"input_size": 4, "hidden_size": 128, "num_layers": 3, "output_size": 1}
    folder = write_gru_run(tmp_path / "run", model, pre, window=6, model_config=config)
    converted = convert_gru(run_of(folder), model="x/gru")
    assert converted.warnings == [
        "model_config says hidden_size 128, the weights 16: the weights win",
        "model_config says num_layers 3, the weights 2: the weights win",
    ]


def test_a_walk_forward_best_borrows_its_symbols_run(tmp_path, trained):
    model, pre = trained
    folder = write_gru_run(tmp_path / "run", model, pre, window=6)
    best = tmp_path / "best_wf_gru_BTCEUR.pth"
    best.write_bytes((folder / "model.pth").read_bytes())
    converted = convert_gru(GruRun(best, folder, lent=True), model="x/gru")
    assert converted.warnings == ["the preprocessor of run is taken for best_wf_gru_BTCEUR.pth"]
    assert network_of(converted).rows == 6


def test_a_classifier_config_gives_labels(tmp_path):
    converted = networks()["gru_classifier"].converted
    meta = converted.bundle.metadata
    assert (meta.task, meta.classes) == ("classification", ["down", "flat", "up"])


def test_torch_module_converts_a_class_the_template_does_not_know(tmp_path, monkeypatch):
    # Given a run whose network has a LayerNorm (no template fits) and its class in a module
    (tmp_path / "normed.py").write_text(
        "import torch\n"
        "class Normed(torch.nn.Module):\n"
        "    def __init__(self, input_size, hidden_size, **_):\n"
        "        super().__init__()\n"
        "        self.gru = torch.nn.GRU(input_size, hidden_size, batch_first=True)\n"
        "        self.norm = torch.nn.LayerNorm(hidden_size)\n"
        "        self.fc = torch.nn.Linear(hidden_size, 1)\n"
        "    def forward(self, x):\n"
        "        h, _ = self.gru(x)\n"
        "        return self.fc(self.norm(h[:, -1]))\n"
    )
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.delitem(sys.modules, "normed", raising=False)
    import normed

    torch.manual_seed(4)
    net = normed.Normed(3, 8).eval()
    folder = tmp_path / "run"
    folder.mkdir()
    torch.save(
        {
            "model_state_dict": net.state_dict(),
            "model_config": {"input_size": 3, "hidden_size": 8, "dropout": 0.1},
        },
        folder / "model.pth",
    )
    (folder / "metadata.json").write_text(json.dumps({"sequence_length": 4}))
    with pytest.raises(NotConvertible, match=r"norm\.weight, norm\.bias; give --torch-module"):
        convert_gru(run_of(folder), model="x/gru")
    converted = convert_gru(run_of(folder), model="x/gru", torch_module="normed:Normed")
    assert converted.estimator == "Normed"
    assert (
        converted.bundle.metadata.source["architecture"] == "normed:Normed built from model_config"
    )


def test_a_network_onnx_cannot_reproduce_is_refused_with_the_difference(tmp_path, monkeypatch):
    # Given a module that draws random numbers when it runs (torch and onnxruntime differ)
    (tmp_path / "noisy.py").write_text(
        "import torch\n"
        "class Noisy(torch.nn.Module):\n"
        "    def __init__(self, input_size, **_):\n"
        "        super().__init__()\n"
        "        self.gru = torch.nn.GRU(input_size, 4, batch_first=True)\n"
        "        self.fc = torch.nn.Linear(4, 1)\n"
        "    def forward(self, x):\n"
        "        h, _ = self.gru(x)\n"
        "        return self.fc(h[:, -1]) + torch.rand_like(h[:, -1:, 0])\n"
    )
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.delitem(sys.modules, "noisy", raising=False)
    import noisy

    folder = tmp_path / "run"
    folder.mkdir()
    torch.save(
        {"model_state_dict": noisy.Noisy(3).state_dict(), "model_config": {"input_size": 3}},
        folder / "model.pth",
    )
    (folder / "metadata.json").write_text(json.dumps({"sequence_length": 4}))
    # When converted, then refused before anything is written, with the measured difference
    with pytest.raises(NotConvertible) as caught:
        convert_gru(run_of(folder), model="x/gru", torch_module="noisy:Noisy")
    assert "the network's output does not match the original: max difference" in str(
        caught.value.message
    )
    assert "relative, above 1e-05) on 256 inputs" in caught.value.message


def test_answers_match_the_seeds_own_pipeline_on_fresh_windows():
    network = networks()["gru_multi"]
    loaded = LoadedModel(network.converted.bundle.metadata, network.converted.bundle.files)
    raw = np.random.default_rng(5).normal(scale=4, size=(10, 5, 4))
    want = gru_answers(network, raw)
    got = loaded.predict(raw.reshape(10, 20)).outputs
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * max(1.0, abs(want).max()))
