"""A GRU from its state dict alone: stacked, bidirectional and batch-first-or-not GRUs with
linear heads are rebuilt to answer exactly what the original answers; keys that fit no
template are refused by name; --torch-module builds the user's own class."""

from __future__ import annotations

import importlib.util
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from tests.network_support import GRUModel
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.gru import (
    Probabilities,
    infer_architecture,
    rebuild,
    strip_wrappers,
    user_module,
)


class SingleHead(nn.Module):
    """A GRU with one linear head named ``head.out`` (a nested name)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.GRU(4, 6, num_layers=3, batch_first=True, bidirectional=True)
        self.head = nn.Module()
        self.head.add_module("out", nn.Linear(12, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.encoder(x)
        return self.head.get_submodule("out")(out[:, -1, :])


def windows(n: int = 16, rows: int = 7, width: int = 4) -> torch.Tensor:
    return torch.as_tensor(
        np.random.default_rng(0).normal(size=(n, rows, width)), dtype=torch.float32
    )


@pytest.mark.parametrize(
    ("kwargs", "layers", "bidirectional"),
    [
        ({}, 2, False),
        ({"num_layers": 1}, 1, False),
        ({"num_layers": 3, "bidirectional": True}, 3, True),
        ({"batch_first": False}, 2, False),
    ],
)
def test_the_rebuilt_network_answers_exactly_what_the_original_answers(
    kwargs, layers, bidirectional
):
    # Given seed 001's GRUModel in several shapes
    torch.manual_seed(0)
    original = GRUModel(4, hidden_size=8, **kwargs).eval()
    # When it is rebuilt from its state dict
    batch_first = kwargs.get("batch_first", True)
    rebuilt, arch = rebuild(original.state_dict(), batch_first=batch_first)
    # Then the architecture is what the keys say, and every output is identical
    assert (arch.input_size, arch.hidden_size, arch.num_layers) == (4, 8, layers)
    assert arch.bidirectional is bidirectional
    assert [(h.name, h.in_features, h.out_features) for h in arch.head] == [
        ("fc1", 16 if bidirectional else 8, 4),
        ("fc2", 4, 1),
    ]
    x = windows()
    with torch.no_grad():
        assert torch.equal(rebuilt(x), original(x))


def test_a_nested_single_head_and_its_gru_name_are_taken_from_the_keys():
    torch.manual_seed(1)
    original = SingleHead().eval()
    rebuilt, arch = rebuild(original.state_dict())
    assert arch.prefix == "encoder" and arch.outputs == 3
    assert arch.describe() == "bidirectional GRU 4->6 x3 layer(s), head head.out 12->3"
    with torch.no_grad():
        assert torch.equal(rebuilt(windows()), original(windows()))


def test_dataparallel_and_compile_prefixes_are_stripped():
    state = GRUModel(4).state_dict()
    wrapped = OrderedDict((f"module._orig_mod.{k}", v) for k, v in state.items())
    assert list(strip_wrappers(wrapped)) == list(state)
    assert infer_architecture(wrapped).input_size == 4


def test_an_lstm_is_refused_saying_what_it_is():
    state = {**nn.LSTM(4, 8, batch_first=True).state_dict()}
    state = {f"gru.{k}": v for k, v in state.items()} | {"fc.weight": torch.zeros(1, 8)}
    with pytest.raises(NotConvertible) as caught:
        infer_architecture(state)
    assert caught.value.message.startswith(
        "gru.weight_hh_l0 is (32, 8), not a GRU's (3H, H): an LSTM (4 gates)"
    )
    assert caught.value.message.endswith("give --torch-module module:Class to build your own class")


def test_keys_that_fit_no_template_are_refused_by_name():
    state = dict(GRUModel(4).state_dict())
    state["norm.weight"] = torch.ones(4)
    state["norm.bias"] = torch.zeros(4)
    state["norm.running_mean"] = torch.zeros(4)
    with pytest.raises(NotConvertible) as caught:
        infer_architecture(state)
    assert caught.value.message == (
        "state dict keys that fit no supported layer (nn.GRU, then nn.Linear head layers): "
        "norm.weight, norm.bias, norm.running_mean; give --torch-module module:Class to build "
        "your own class"
    )


def test_head_layers_that_do_not_chain_are_refused():
    state = dict(GRUModel(4, hidden_size=8).state_dict())
    state["fc2.weight"] = torch.zeros(1, 5)
    with pytest.raises(
        NotConvertible,
        match=r"fc2\.weight takes 5 inputs where the layer before "
        r"gives 4: the head layers do not chain",
    ):
        infer_architecture(state)


def test_a_gru_whose_layers_disagree_is_refused_naming_the_keys():
    state = dict(GRUModel(4, hidden_size=8).state_dict())
    state["gru.weight_ih_l1"] = torch.zeros(24, 5)
    with pytest.raises(
        NotConvertible,
        match=r"do not fit a 2-layer GRU with hidden size 8: "
        r"gru\.weight_ih_l1$",
    ):
        infer_architecture(state)


def test_two_grus_are_refused():
    state = {
        **{f"a.{k}": v for k, v in nn.GRU(2, 3).state_dict().items()},
        **{f"b.{k}": v for k, v in nn.GRU(2, 3).state_dict().items()},
    }
    with pytest.raises(
        NotConvertible, match=r"expected one nn\.GRU in the state dict, found 'a', 'b'"
    ):
        infer_architecture(state)


def test_an_unknown_activation_is_refused():
    with pytest.raises(NotConvertible, match="model_config names activation 'swish'"):
        rebuild(GRUModel(4).state_dict(), activation="swish")


def test_a_named_activation_runs_between_head_layers():
    torch.manual_seed(2)
    original = GRUModel(4, hidden_size=8).eval()
    rebuilt, _ = rebuild(original.state_dict(), activation="tanh")
    x = windows()
    with torch.no_grad():
        out, _ = original.gru(x)
        want = original.fc2(torch.tanh(original.fc1(out[:, -1, :])))
        assert torch.equal(rebuilt(x), want)


def test_torch_module_builds_the_users_class_from_model_config(tmp_path, monkeypatch):
    # Given the user's own module in a file importable from the run's folder
    (tmp_path / "my_nets.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self, input_size, hidden_size, scale=1.0):\n"
        "        super().__init__()\n"
        "        self.rnn = torch.nn.GRU(input_size, hidden_size, batch_first=True)\n"
        "        self.norm = torch.nn.LayerNorm(hidden_size)\n"
        "        self.out = torch.nn.Linear(hidden_size, 1)\n"
        "        self.scale = scale\n"
        "    def forward(self, x):\n"
        "        h, _ = self.rnn(x)\n"
        "        return self.out(self.norm(h[:, -1])) * self.scale\n"
    )
    monkeypatch.setattr(sys, "path", list(sys.path))  # user_module adds the run's folder
    monkeypatch.delitem(sys.modules, "my_nets", raising=False)
    torch.manual_seed(3)
    spec = importlib.util.spec_from_file_location("their_nets", tmp_path / "my_nets.py")
    assert spec is not None and spec.loader is not None
    theirs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(theirs)
    original = theirs.Net(4, 6, scale=2.0)
    config = {"input_size": 4, "hidden_size": 6, "scale": 2.0, "dropout": 0.1}
    # When it is built by --torch-module (unknown config keys left out)
    module = user_module("my_nets:Net", config, original.state_dict(), search=tmp_path)
    # Then it answers what the original answers
    with torch.no_grad():
        assert torch.equal(module(windows(width=4)), original.eval()(windows(width=4)))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("my_nets", "expected module:Class"),
        ("no_such_module_here:Net", "cannot import it"),
        ("tests.network_support:GRUModel", "RuntimeError: Error"),
    ],
)
def test_torch_module_failures_say_why(spec, message, tmp_path):
    state = nn.GRU(2, 3).state_dict()
    with pytest.raises(NotConvertible, match=message):
        user_module(spec, {"input_size": 2}, state, search=tmp_path)


def test_probabilities_of_one_logit_are_two_columns():
    net = nn.Linear(3, 1)
    x = torch.randn(5, 3)
    out = Probabilities(net)(x)
    p = torch.sigmoid(net(x))
    assert torch.equal(out, torch.cat([1 - p, p], dim=1))
    many = nn.Linear(3, 4)
    assert torch.allclose(Probabilities(many)(x).sum(dim=1), torch.ones(5))
