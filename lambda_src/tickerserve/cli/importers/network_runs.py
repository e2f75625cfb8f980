"""Folders that hold a network, as ``publish`` and ``import-seed`` meet them:

- a seed 001 GRU run (``model.pth``, with ``metadata.json``, ``config.json``,
  ``preprocessor.pkl``) or a lone checkpoint (``*.pth``, ``*.pt``);
- a seed 001 PPO run (``model.zip`` with ``model_metadata.json`` and
  ``model_vecnormalize.pkl``), or a lone policy zip (a walk-forward best: its symbol's run
  lends it those files);
- a team's own export: ``model.onnx`` with ``network.json``.

Each becomes a checked ONNX version (``publishing.conversion``); torch and stable-baselines3
are imported only here, on the publisher's machine (the ``networks`` extra).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tickerserve.publishing.conversion.gru_runs import CHECKPOINT, GruRun, convert_gru
from tickerserve.publishing.conversion.onnx_folder import is_onnx_folder, read_onnx_folder
from tickerserve.publishing.conversion.ppo_runs import (
    POLICY,
    POLICY_METADATA,
    VECNORMALIZE,
    convert_ppo,
)
from tickerserve.publishing.conversion.recipe import Converted

CHECKPOINT_SUFFIXES = (".pth", ".pt")


@dataclass(frozen=True)
class NetworkOptions:
    """What a GRU's files may not say: ``--window N``, ``--torch-module module:Class``."""

    window: int | None = None
    torch_module: str | None = None


def kind_of(path: Path) -> str | None:
    """``gru``, ``ppo`` or ``onnx`` when ``path`` holds a network, else None."""
    if path.is_file():
        suffix = path.suffix.lower()
        return "gru" if suffix in CHECKPOINT_SUFFIXES else "ppo" if suffix == ".zip" else None
    if not path.is_dir():
        return None
    if is_onnx_folder(path):
        return "onnx"
    if (path / CHECKPOINT).is_file() or (path / "model.pt").is_file():
        return "gru"
    if (path / POLICY).is_file():
        return "ppo"
    return None


def read_network(
    path: Path,
    *,
    model: str,
    asset_class: str | None = None,
    features: list[str] | None = None,
    options: NetworkOptions | None = None,
    lender: Path | None = None,
) -> Converted | None:
    """The network ``path`` holds as a checked version, or None when it holds none.
    ``lender`` is the run folder a lone checkpoint borrows its window, names and preprocessor
    from (a walk-forward best artifact's symbol's newest run)."""
    options = options or NetworkOptions()
    kind = kind_of(path)
    if kind == "onnx":
        return read_onnx_folder(path, model=model, asset_class=asset_class)
    if kind == "ppo" and path.is_file():  # a lone model.zip: the lender's metadata beside it
        with tempfile.TemporaryDirectory(prefix="tickerserve-ppo-") as scratch:
            folder = Path(scratch)
            shutil.copyfile(path, folder / POLICY)
            for name in (POLICY_METADATA, VECNORMALIZE, "metadata.json"):
                if lender is not None and (lender / name).is_file():
                    shutil.copyfile(lender / name, folder / name)
            converted = convert_ppo(folder, model=model, asset_class=asset_class,
                                    fallback_names=features, label=path)  # fmt: skip
            if lender is not None:
                converted.warnings.append(
                    f"{path.name} is a policy alone: the metadata and VecNormalize statistics "
                    f"of {lender.name} are taken for it"
                )
            return converted
    if kind == "ppo":
        return convert_ppo(path, model=model, asset_class=asset_class, fallback_names=features)
    if kind != "gru":
        return None
    if path.is_file():
        run = GruRun(path, lender, lent=lender is not None)
    else:
        checkpoint = path / CHECKPOINT
        run = GruRun(checkpoint if checkpoint.is_file() else path / "model.pt", path)
    return convert_gru(
        run,
        model=model,
        asset_class=asset_class,
        window=options.window,
        torch_module=options.torch_module,
        fallback_names=features,
    )
