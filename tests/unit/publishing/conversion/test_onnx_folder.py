"""A team's own export (model.onnx + network.json) becomes a version that answers as the
function answers; a description that does not fit the graph, outputs that are not
probabilities, actions outside the box and a fixed batch are refused, saying so."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.network_bundle import export_onnx
from tickerserve.publishing.conversion.onnx_folder import read_onnx_folder
from tickerserve.serving.model import LoadedModel

NAMES = ["a", "b", "c"]


class Window(nn.Module):
    """A tiny GRU over (batch, 4, 3) answering ``k`` values, softmaxed when asked."""

    def __init__(self, k: int = 1, softmax: bool = False, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gru = nn.GRU(3, 5, batch_first=True)
        self.out = nn.Linear(5, k)
        self.softmax = softmax
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(x)
        y = self.out(h[:, -1]) * self.scale
        return torch.softmax(y, dim=1) if self.softmax else y


def folder_with(
    tmp_path: Path, module: nn.Module, shape: tuple[int, ...], description: dict[str, Any]
) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    graph = export_onnx(module.eval(), shape, input_name="x", output_names=["y"])
    (folder / "model.onnx").write_bytes(graph)
    (folder / "network.json").write_text(json.dumps(description))
    return folder


def test_a_window_regressor_answers_what_its_graph_answers(tmp_path):
    module = Window()
    folder = folder_with(
        tmp_path,
        module,
        (4, 3),
        {
            "feature_names": NAMES,
            "window": 4,
            "model_type": "tcn",
            "preprocessing": {
                "steps": [
                    {"op": "fill_missing", "values": [0.0, 1.0, 2.0]},
                    {"op": "subtract", "values": [1.0, 1.0, 1.0]},
                ]
            },
        },
    )
    converted = read_onnx_folder(folder, model="team/net")
    meta = converted.bundle.metadata
    assert (converted.kind, meta.model_type, meta.task) == ("native", "tcn", "regression")
    assert meta.network is not None
    assert meta.network.to_dict() == {
        "input": "window",
        "shape": [4, 3],
        "policy": None,
        "value": False,
    }
    assert meta.accepts_missing is True and converted.probe_rows == 256
    x = np.random.default_rng(0).normal(size=(6, 4, 3))
    got = LoadedModel(meta, converted.bundle.files).predict(x.reshape(6, 12)).outputs
    with torch.no_grad():
        want = module(torch.as_tensor(x - 1.0, dtype=torch.float32)).numpy()[:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_a_classifier_and_a_discrete_policy_name_their_labels(tmp_path):
    folder = folder_with(
        tmp_path,
        Window(3, softmax=True),
        (4, 3),
        {
            "feature_names": NAMES,
            "observation_shape": [4, 3],
            "value_output": None,
            "policy": {"action_space": "discrete", "actions": ["hold", "buy", "sell"]},
        },
    )
    meta = read_onnx_folder(folder, model="team/policy").bundle.metadata
    assert (meta.task, meta.classes) == ("classification", ["hold", "buy", "sell"])
    assert meta.network is not None and meta.network.policy is not None
    assert meta.network.policy.labelled is True and meta.network.input == "observation"


@pytest.mark.parametrize(
    ("module", "description", "message"),
    [
        (
            Window(3),
            {"window": 4, "task": "classification"},
            r"output 'y' is not class probabilities \(rows sum to .*\): export softmax\(logits\)",
        ),
        (
            Window(1, scale=100.0),
            {
                "observation_shape": [4, 3],
                "policy": {"action_space": "box", "low": [-1], "high": [1]},
            },
            "output 'y' leaves the box's bounds: clip the action in the graph",
        ),
        (Window(2), {"window": 4, "outputs": ["a"]}, "1 output names for an output of 2 values"),
        (
            Window(3, softmax=True),
            {"window": 4, "task": "classification", "labels": ["x", "y"]},
            "2 labels for an output of 3 probabilities",
        ),
        (Window(), {"window": 4, "observation_shape": [4, 3]}, "give window .* or observation"),
        (Window(), {"window": 4, "input_name": "z"}, r"the graph has inputs \['x'\]"),
        (Window(), {"window": 4, "output_name": "z"}, "the graph has no output 'z'"),
        (Window(), {"window": 5}, r"does not run on a batch of 2 inputs of shape \[5, 3\]"),
        (
            Window(),
            {"window": 4, "preprocessing": {"steps": [{"op": "divide", "values": 0}]}},
            "preprocessing: divide by zero",
        ),
    ],
)
def test_descriptions_that_do_not_fit_are_refused(tmp_path, module, description, message):
    folder = folder_with(tmp_path, module, (4, 3), {"feature_names": NAMES, **description})
    with pytest.raises(NotConvertible, match=message):
        read_onnx_folder(folder, model="team/net")


def test_a_graph_with_a_fixed_batch_is_refused(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    with warnings.catch_warnings():  # the exporter's own notices
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Window().eval(),
            (torch.zeros(1, 4, 3),),
            str(folder / "model.onnx"),
            input_names=["x"],
            output_names=["y"],
            dynamo=False,
            opset_version=17,
        )
    (folder / "network.json").write_text(json.dumps({"feature_names": NAMES, "window": 4}))
    with pytest.raises(NotConvertible, match="does not run on a batch of 2 inputs"):
        read_onnx_folder(folder, model="team/net")


def test_a_folder_without_its_description_says_what_to_add(tmp_path):
    folder = folder_with(tmp_path, Window(), (4, 3), {})
    (folder / "network.json").unlink()
    with pytest.raises(NotConvertible) as caught:
        read_onnx_folder(folder, model="team/net")
    assert caught.value.message == (
        f"{folder}: model.onnx needs network.json beside it (feature_names, window or "
        "observation_shape, task, labels)"
    )


def test_bytes_that_are_no_onnx_model_are_refused(tmp_path):
    folder = folder_with(tmp_path, Window(), (4, 3), {"feature_names": NAMES, "window": 4})
    (folder / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(NotConvertible, match="not an ONNX model onnxruntime can run"):
        read_onnx_folder(folder, model="team/net")
