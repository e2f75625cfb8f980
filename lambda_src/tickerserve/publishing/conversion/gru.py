"""A GRU sequence model from its state dict alone: the keys and shapes decide the architecture.

The template is seed 001's ``GRUModel`` (Bot_kilo): ``nn.GRU`` layers (stacked, optionally
bidirectional, batch-first or not) whose last time step feeds a chain of ``nn.Linear`` head
layers, with an activation between them (ReLU unless ``model_config`` names another) and none
after the last; dropout does nothing in evaluation. From the keys:

- ``{gru}.weight_ih_l{k}[_reverse]`` ``(3H, in_k)``, ``weight_hh_l{k}`` ``(3H, H)`` and their
  biases: ``num_layers`` = max k + 1, ``bidirectional`` = any ``_reverse``, hidden size ``H``,
  input size ``in_0``; every layer and direction is checked (``in_k = H`` or ``2H``);
- every other key belongs to a ``Linear`` (``{name}.weight`` ``(out, in)`` [+ ``.bias``]),
  chained in the state dict's order from ``H x directions`` inputs.

Keys that fit no template (an LSTM's ``4H`` gates, a LayerNorm, attention) are refused,
named; ``--torch-module module:Class`` then builds the user's own class from
``model_config`` instead. ``module.`` and ``_orig_mod.`` prefixes (DataParallel,
``torch.compile``) are stripped. Needs torch (the ``networks`` extra).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tickerserve.publishing.conversion import NotConvertible

_GRU_KEY = re.compile(
    r"^(?P<prefix>(?:.+\.)?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh)_l(?P<layer>\d+)"
    r"(?P<reverse>_reverse)?$"
)
_WRAPPERS = ("module.", "_orig_mod.")
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
}
_LISTED = 8  # keys named in a refusal


@dataclass(frozen=True)
class Linear:
    """One head layer: its name in the state dict and its shape."""

    name: str
    in_features: int
    out_features: int
    bias: bool


@dataclass(frozen=True)
class GruArchitecture:
    """What the state dict says the network is."""

    prefix: str  # the GRU's module name ("gru")
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    bias: bool
    head: tuple[Linear, ...]

    @property
    def outputs(self) -> int:
        return self.head[-1].out_features

    def describe(self) -> str:
        layers = " -> ".join(f"{h.name} {h.in_features}->{h.out_features}" for h in self.head)
        kind = "bidirectional GRU" if self.bidirectional else "GRU"
        return (
            f"{kind} {self.input_size}->{self.hidden_size} x{self.num_layers} layer(s), "
            f"head {layers}"
        )


def strip_wrappers(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Keys without the ``module.`` / ``_orig_mod.`` prefix every key of a wrapped model has."""
    out = dict(state_dict)
    for prefix in _WRAPPERS:
        if out and all(k.startswith(prefix) for k in out):
            out = {k[len(prefix) :]: v for k, v in out.items()}
    return out


def infer_architecture(state_dict: Mapping[str, Any]) -> GruArchitecture:
    """The architecture the keys and shapes describe; ``NotConvertible`` naming the keys
    that fit no template."""
    shapes = {k: tuple(v.shape) for k, v in strip_wrappers(state_dict).items()}
    gates: dict[str, dict[tuple[str, int, bool], tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        match = _GRU_KEY.match(key)
        if match:
            entry = (match["kind"], int(match["layer"]), bool(match["reverse"]))
            gates.setdefault(match["prefix"], {})[entry] = shape
    if len(gates) != 1:
        found = ", ".join(repr(p.rstrip(".")) for p in sorted(gates)) or "none"
        raise NotConvertible(
            f"expected one nn.GRU in the state dict, found {found}; give --torch-module "
            "module:Class to build your own class"
        )
    ((prefix, gru),) = gates.items()
    if "weight_hh" not in {kind for kind, _, _ in gru} or ("weight_hh", 0, False) not in gru:
        raise NotConvertible(f"{prefix}weight_hh_l0 is missing: not an nn.GRU")
    three_h, hidden = gru[("weight_hh", 0, False)]
    if three_h != 3 * hidden:
        kind = {4 * hidden: "an LSTM (4 gates)", hidden: "a plain RNN (1 gate)"}.get(three_h, "")
        raise NotConvertible(
            f"{prefix}weight_hh_l0 is {(three_h, hidden)}, not a GRU's (3H, H)"
            + (f": {kind}" if kind else "")
            + "; give --torch-module module:Class to build your own class"
        )
    layers = 1 + max(layer for _, layer, _ in gru)
    bidirectional = any(reverse for _, _, reverse in gru)
    bias = ("bias_ih", 0, False) in gru
    input_size = gru[("weight_ih", 0, False)][1] if ("weight_ih", 0, False) in gru else 0
    directions = 2 if bidirectional else 1
    expected: dict[tuple[str, int, bool], tuple[int, ...]] = {}
    for layer in range(layers):
        width = input_size if layer == 0 else hidden * directions
        for reverse in (False, True)[:directions]:
            expected[("weight_ih", layer, reverse)] = (3 * hidden, width)
            expected[("weight_hh", layer, reverse)] = (3 * hidden, hidden)
            if bias:
                expected[("bias_ih", layer, reverse)] = (3 * hidden,)
                expected[("bias_hh", layer, reverse)] = (3 * hidden,)
    if gru != expected:
        odd = sorted(
            _gru_key(prefix, entry)
            for entry in set(gru) | set(expected)
            if gru.get(entry) != expected.get(entry)
        )
        raise NotConvertible(
            f"the GRU's weights do not fit a {layers}-layer GRU with hidden size {hidden}: "
            f"{_keys(odd)}"
        )
    gru_keys = {_gru_key(prefix, entry) for entry in gru}
    head = _head(
        {k: s for k, s in shapes.items() if k not in gru_keys}, hidden * directions, prefix
    )
    return GruArchitecture(
        prefix.rstrip("."), input_size, hidden, layers, bidirectional, bias, head
    )


def _gru_key(prefix: str, entry: tuple[str, int, bool]) -> str:
    kind, layer, reverse = entry
    return f"{prefix}{kind}_l{layer}{'_reverse' if reverse else ''}"


def _keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _LISTED else "")


def _head(rest: dict[str, tuple[int, ...]], width: int, prefix: str) -> tuple[Linear, ...]:
    """Every other key must belong to a Linear, chained in order; refuse the rest, named."""
    modules: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, shape in rest.items():
        module, _, leaf = key.rpartition(".")
        modules.setdefault(module, {})[leaf] = shape
    unknown: list[str] = []
    for module, leaves in modules.items():
        linear = set(leaves) <= {"weight", "bias"} and len(leaves.get("weight", ())) == 2
        # A parameter inside the GRU's own module (a projection) is no head layer either.
        if not module or not linear or (prefix and module.startswith(prefix)):
            unknown.extend(f"{module}.{leaf}" if module else leaf for leaf in leaves)
    if unknown:
        raise NotConvertible(
            f"state dict keys that fit no supported layer (nn.GRU, then nn.Linear head "
            f"layers): {_keys(unknown)}; give --torch-module module:Class to build your own class"
        )
    head: list[Linear] = []
    for module, leaves in modules.items():
        out_features, in_features = leaves["weight"]
        if "bias" in leaves and leaves["bias"] != (out_features,):
            raise NotConvertible(f"{module}.bias is {leaves['bias']}, not ({out_features},)")
        if in_features != width:
            raise NotConvertible(
                f"{module}.weight takes {in_features} inputs where the layer before gives "
                f"{width}: the head layers do not chain (give --torch-module module:Class)"
            )
        head.append(Linear(module, in_features, out_features, "bias" in leaves))
        width = out_features
    if not head:
        raise NotConvertible("no nn.Linear head after the GRU in the state dict")
    return tuple(head)


class SeedGru(nn.Module):
    """The template network, with parameter names as the state dict has them. Takes
    ``(batch, window, features)``; a batch-first=False original is fed time-major inside, so
    the same window answers the same either way."""

    def __init__(
        self, arch: GruArchitecture, *, activation: str = "relu", batch_first: bool = True
    ) -> None:
        super().__init__()
        self.batch_first = batch_first
        self._gru_name = arch.prefix
        _attach(
            self,
            arch.prefix,
            nn.GRU(
                arch.input_size,
                arch.hidden_size,
                arch.num_layers,
                bias=arch.bias,
                batch_first=batch_first,
                bidirectional=arch.bidirectional,
            ),
        )
        for layer in arch.head:
            _attach(self, layer.name, nn.Linear(layer.in_features, layer.out_features, layer.bias))
        self._head_names = [layer.name for layer in arch.head]
        self._activation = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gru = self.get_submodule(self._gru_name)
        if self.batch_first:
            out, _ = gru(x)
            hidden = out[:, -1, :]
        else:
            out, _ = gru(x.transpose(0, 1))
            hidden = out[-1]
        last = len(self._head_names) - 1
        for index, name in enumerate(self._head_names):
            hidden = self.get_submodule(name)(hidden)
            if index < last:
                hidden = self._activation(hidden)
        return hidden


def _attach(root: nn.Module, dotted: str, module: nn.Module) -> None:
    """Register ``module`` under a dotted name (``head.0``), creating containers on the way."""
    *path, leaf = dotted.split(".")
    parent = root
    for part in path:
        if not hasattr(parent, part):
            parent.add_module(part, nn.Module())
        parent = getattr(parent, part)
    parent.add_module(leaf, module)


def rebuild(
    state_dict: Mapping[str, Any], *, activation: str = "relu", batch_first: bool = True
) -> tuple[SeedGru, GruArchitecture]:
    """The template network with the checkpoint's weights, in evaluation mode."""
    if activation not in ACTIVATIONS:
        raise NotConvertible(
            f"model_config names activation {activation!r}; the template knows "
            f"{', '.join(ACTIVATIONS)} (or give --torch-module module:Class)"
        )
    arch = infer_architecture(state_dict)
    module = SeedGru(arch, activation=activation, batch_first=batch_first)
    module.load_state_dict(strip_wrappers(state_dict), strict=True)
    return module.eval(), arch


def user_module(
    spec: str, config: Mapping[str, Any], state_dict: Mapping[str, Any], *, search: Path
) -> nn.Module:
    """``module:Class`` built from ``model_config`` (the keyword arguments its constructor
    takes) with the checkpoint's weights; ``search`` (the run folder's tree) is importable."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise NotConvertible(f"--torch-module {spec!r}: expected module:Class")
    for folder in (Path.cwd(), search):
        if str(folder) not in sys.path:
            sys.path.append(str(folder))
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise NotConvertible(f"--torch-module {spec}: cannot import it ({exc})") from None
    params: Mapping[str, inspect.Parameter] = {}
    with contextlib.suppress(TypeError, ValueError):  # a class without a signature
        params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in config.items() if takes_any or k in params}
    try:
        module = cls(**kwargs)
        module.load_state_dict(strip_wrappers(state_dict), strict=True)
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise NotConvertible(f"--torch-module {spec}: {type(exc).__name__}: {text}") from None
    if not isinstance(module, nn.Module):
        raise NotConvertible(f"--torch-module {spec}: {class_name} is not a torch.nn.Module")
    return module.eval()


class Probabilities(nn.Module):
    """A classifier head's probabilities: softmax of its logits, or ``[1 - p, p]`` of one
    logit's sigmoid."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.network(x)
        if logits.shape[-1] == 1:
            p = torch.sigmoid(logits)
            return torch.cat([1.0 - p, p], dim=-1)
        return torch.softmax(logits, dim=-1)
