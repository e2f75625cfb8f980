"""Seed 001's GRU runs -> an ONNX network version, checked against the original.

A run folder holds ``model.pth`` (``torch.save`` of a dict: ``model_state_dict``,
``model_config`` (``input_size``, ``hidden_size``, ``num_layers``, ``dropout``,
``output_size``), ``feature_names``, ``selected_features``, ``feature_count``,
``input_size_actual``, ``symbol``, ``created_at``, ``model_type``), ``metadata.json``
(``sequence_length``, ``feature_names``, ``selected_features``, ...), ``config.json`` and
``preprocessor.pkl``. A walk-forward best artifact (``best_wf_gru_{symbol}.pth``) is the same
checkpoint without the folder; its symbol's newest run lends it the window, feature names
and preprocessor.

- The network: the state dict's keys and shapes (``gru``), or ``--torch-module module:Class``
  built from ``model_config``; a checkpoint that pickled a whole module is taken as it is.
- The window length: ``metadata.json``'s ``sequence_length``, else ``config.json``'s (or its
  ``params``), else ``model_config``'s or ``training_config``'s; ``--window N`` when none
  says it (and refused when it contradicts one that does).
- The task: regression (one value, or ``output_names`` when the head has several outputs)
  unless the config says the head classifies (``task: classification``, a cross-entropy
  ``loss``); class labels from ``classes``/``class_names``/``labels``, else ``0``, ``1``, ...
- The preprocessor as the seed applies it (``preprocessors``), as JSON steps.

Every conversion is checked on ``CHECK_INPUTS`` generated windows against the torch module
fed the seed's own preprocessing (the scikit-learn objects themselves).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tickerserve.members.network import WINDOW, NetworkSpec
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion import seed_metadata as seedmeta
from tickerserve.publishing.conversion.feature_names import all_ints, as_ints, as_names
from tickerserve.publishing.conversion.network_bundle import (
    check_inputs,
    check_network,
    export_onnx,
    network_bundle,
    roles,
)
from tickerserve.publishing.conversion.pickles import unpickle
from tickerserve.publishing.conversion.preprocessors import from_preprocessor
from tickerserve.publishing.conversion.recipe import Converted
from tickerserve.publishing.conversion.torch_extra import require
from tickerserve.storage.bundle import CLASSIFICATION, REGRESSION
from tickerserve.storage.store import sha256_hex

CHECKPOINT = "model.pth"
PREPROCESSOR = "preprocessor.pkl"
WINDOW_KEYS = ("sequence_length", "seq_len", "window", "window_size", "lookback", "lookback_window")
TASK_KEYS = ("task", "task_type", "problem_type", "objective", "mode")
CLASSIFY_LOSSES = ("cross_entropy", "crossentropy", "ce", "bce", "bce_with_logits", "nll")
LABEL_KEYS = ("classes", "class_names", "labels", "class_labels")
OUTPUT_KEYS = ("output_names", "targets", "target_names")


@dataclass
class GruRun:
    """Where a GRU's files are: the checkpoint and the folder that tells about it."""

    checkpoint: Path
    folder: Path | None = None  # metadata.json, config.json, preprocessor.pkl
    lent: bool = False  # the folder is another run's (a walk-forward best artifact)
    notes: list[str] = field(default_factory=list)


def convert_gru(
    run: GruRun,
    *,
    model: str,
    asset_class: str | None = None,
    window: int | None = None,
    torch_module: str | None = None,
    fallback_names: list[str] | None = None,
) -> Converted:
    """Convert and check one GRU checkpoint; ``NotConvertible`` says why not."""
    label = run.checkpoint
    try:
        return _convert(run, model, asset_class, window, torch_module, fallback_names)
    except NotConvertible as exc:
        prefix = f"{label}: "
        raise NotConvertible(
            exc.message if exc.message.startswith(prefix) else prefix + exc.message
        ) from None


def _convert(
    run: GruRun,
    model: str,
    asset_class: str | None,
    window: int | None,
    torch_module: str | None,
    fallback: list[str] | None,
) -> Converted:
    torch = require("torch", "a GRU checkpoint (model.pth)")
    from tickerserve.publishing.conversion import gru

    notes = list(run.notes)
    checkpoint = _load_checkpoint(torch, run.checkpoint, notes)
    meta = _json(run.folder, "metadata.json")
    config = _json(run.folder, "config.json")
    saved = checkpoint if isinstance(checkpoint, dict) else {}
    model_config = dict(saved.get("model_config") or {})
    training_config = dict(saved.get("training_config") or {})
    settings = {**_flat(config), **_flat(training_config), **model_config}
    state = saved.get("model_state_dict", saved.get("state_dict"))
    if (
        state is None
        and isinstance(checkpoint, dict)
        and checkpoint
        and all(hasattr(v, "shape") for v in checkpoint.values())
    ):
        state = checkpoint  # a bare state dict
    estimator = "GRU"
    if torch_module is not None:
        if state is None:
            raise NotConvertible("--torch-module needs a state dict in the checkpoint")
        module = gru.user_module(torch_module, model_config, state, search=run.checkpoint.parent)
        estimator = torch_module.partition(":")[2]
        width = int(model_config.get("input_size") or saved.get("input_size_actual") or 0)
        description = f"{torch_module} built from model_config"
    elif isinstance(checkpoint, torch.nn.Module):
        module = checkpoint.eval()
        estimator = type(checkpoint).__name__
        width = int(getattr(checkpoint, "input_size", 0) or model_config.get("input_size") or 0)
        description = f"a pickled {estimator} module"
    elif isinstance(state, Mapping):
        activation = str(settings.get("activation", "relu")).lower()
        batch_first = settings.get("batch_first", True) is not False
        module, arch = gru.rebuild(state, activation=activation, batch_first=batch_first)
        width = arch.input_size
        description = arch.describe()
        _compare_config(model_config, arch, notes)
    else:
        keys = ", ".join(sorted(map(str, saved))[:12])
        raise NotConvertible(f"the checkpoint holds no model_state_dict (keys: {keys})")
    length = _window(meta, config, model_config, training_config, window)
    names, selected = _features(meta, saved, width, fallback, notes)
    width = width or len(names if selected is None else selected)
    shape = (length, width)
    task, classes, outputs = _task(settings, _outputs(torch, module, shape))
    preprocessing, original_pre = _preprocessing(run, selected, width, notes)
    network = NetworkSpec(WINDOW, shape, outputs=outputs if len(outputs) > 1 else [])
    exported = gru.Probabilities(module) if task == CLASSIFICATION else module
    graph = export_onnx(exported, shape, input_name="window", output_names=["output"])
    files = {run.checkpoint.name: sha256_hex(run.checkpoint.read_bytes())}
    for name in ("metadata.json", "config.json", PREPROCESSOR):
        if run.folder is not None and (run.folder / name).is_file():
            files[name] = sha256_hex((run.folder / name).read_bytes())
    bundle = network_bundle(
        model=model,
        graph=graph,
        input_name="window",
        outputs=roles(False),
        network=network,
        task=task,
        classes=classes,
        feature_names=names,
        selected_features=selected,
        preprocessing=preprocessing,
        model_type="gru",
        estimator=estimator,
        asset_class=asset_class,
        created_at=seedmeta.created_at(meta, saved) if (meta or saved) else "",
        metrics=seedmeta.metrics({**_scalars(saved), **meta}, notes),
        hyperparameters=seedmeta.scalars(settings),
        training=seedmeta.training(meta),
        source={
            "kind": "seed",
            "estimator": estimator,
            "architecture": description,
            "window": length,
            "files": files,
        },
    )

    def original(inputs: np.ndarray) -> tuple[np.ndarray, None]:
        x = original_pre(inputs.reshape(len(inputs), *shape))
        with torch.no_grad():
            out = exported(torch.as_tensor(x, dtype=torch.float32))
        return out.numpy().astype(np.float64), None

    fills = preprocessing is not None and preprocessing.fills_missing
    check = check_network(bundle, check_inputs(shape, preprocessing, missing=fills), original)
    return Converted(bundle, "seed", estimator, check.inputs, check.max_abs_diff, {}, notes)


def _load_checkpoint(torch: Any, path: Path, notes: list[str]) -> Any:
    """``torch.load`` of tensors and plain values; a checkpoint that pickled other objects
    (numpy values, a whole module) is loaded as a pickle, which runs its code: trust it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=False)
        except Exception:
            text = " ".join(str(first).split())[:200]
            raise NotConvertible(f"torch cannot load it: {type(first).__name__}: {text}") from None
        notes.append("the checkpoint pickles more than tensors: loaded with weights_only=False")
        return loaded


def _json(folder: Path | None, name: str) -> dict[str, Any]:
    if folder is None or not (folder / name).is_file():
        return {}
    try:
        raw = json.loads((folder / name).read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise NotConvertible(f"{folder / name}: not valid JSON ({exc})") from None
    return raw if isinstance(raw, dict) else {}


def _flat(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config with its ``params`` (Bot_kilo's yaml nests them) lifted to the top level."""
    params = config.get("params")
    return {**config, **(params if isinstance(params, dict) else {})}


def _scalars(saved: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in saved.items() if seedmeta.scalar(v) and not isinstance(v, str)}


def _compare_config(config: Mapping[str, Any], arch: Any, notes: list[str]) -> None:
    """The weights decide; say where the recorded config disagrees with them."""
    for key, found in (
        ("input_size", arch.input_size),
        ("hidden_size", arch.hidden_size),
        ("num_layers", arch.num_layers),
        ("output_size", arch.outputs),
    ):
        said = config.get(key)
        if isinstance(said, int) and said != found:
            notes.append(f"model_config says {key} {said}, the weights {found}: the weights win")


def _window(
    meta: Mapping[str, Any],
    config: Mapping[str, Any],
    model_config: Mapping[str, Any],
    training_config: Mapping[str, Any],
    given: int | None,
) -> int:
    """The window length the run records (first found), or ``--window``."""
    recorded: int | None = None
    where = ""
    for name, source in (
        ("metadata.json", meta),
        ("config.json", _flat(config)),
        ("model_config", model_config),
        ("training_config", _flat(training_config)),
    ):
        value = seedmeta.first(source, WINDOW_KEYS)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            recorded, where = value, name
            break
    if recorded is None:
        if given is None:
            raise NotConvertible(
                "the window length is recorded nowhere (metadata.json sequence_length, "
                "config.json, model_config): give --window N"
            )
        return given
    if given is not None and given != recorded:
        raise NotConvertible(f"--window {given}, but {where} says the window is {recorded}")
    return recorded


def _features(
    meta: Mapping[str, Any],
    saved: Mapping[str, Any],
    width: int,
    fallback: list[str] | None,
    notes: list[str],
) -> tuple[list[str], list[int] | None]:
    """The full feature list requests name and the selected indices the network takes."""
    full: list[str] | None = None
    for source in (meta, saved):
        names = source.get("feature_names")
        if names is not None and not all_ints(names) and names:
            full = as_names(list(names), "feature_names")
            break
    if full is None and fallback is not None:
        full = list(fallback)
    picked = meta.get("selected_features", saved.get("selected_features"))
    selected = as_ints(list(picked), "selected_features") if all_ints(picked) else None
    if full is None:
        count = width or (len(selected) if selected else 0)
        if not count:
            raise NotConvertible("no feature names and no input size: give --features FILE")
        notes.append(
            f"no feature names: named feature_0 ... feature_{count - 1} (seed 001's convention)"
        )
        return [f"feature_{i}" for i in range(count)], None
    if selected is not None and (not width or len(selected) == width):
        if any(not 0 <= i < len(full) for i in selected):
            if len(full) == len(selected):  # the list already is the selected subset
                return full, None
            raise NotConvertible(f"selected_features point outside the {len(full)} feature names")
        return full, None if selected == list(range(len(full))) else selected
    if width and len(full) != width:
        raise NotConvertible(
            f"the network takes {width} features; feature_names lists {len(full)}"
            + (f" and selected_features {len(selected)}" if selected else "")
        )
    if selected is not None:
        notes.append(
            f"selected_features lists {len(selected)} features but the network takes all "
            f"{width}: the selection is not applied"
        )
    return full, None


def _outputs(torch: Any, module: Any, shape: tuple[int, int]) -> int:
    """How many values the head gives for a window."""
    with torch.no_grad():
        out = module(torch.zeros((1, *shape), dtype=torch.float32))
    if out.dim() != 2:
        shown = tuple(out.shape)
        raise NotConvertible(f"the network answers shape {shown} per batch, not (batch, k)")
    return int(out.shape[1])


def _task(settings: Mapping[str, Any], width: int) -> tuple[str, list[str], list[str]]:
    """(task, class labels, output names) as the config describes the head."""
    said = " ".join(str(settings.get(k, "")).lower() for k in TASK_KEYS)
    loss = str(settings.get("loss", "")).lower().replace("-", "_")
    if "class" in said or loss in CLASSIFY_LOSSES:
        labels = seedmeta.first(settings, LABEL_KEYS)
        count = 2 if width == 1 else width
        classes = [str(c) for c in labels] if isinstance(labels, list) else []
        if classes and len(classes) != count:
            raise NotConvertible(f"the config names {len(classes)} classes, the head gives {count}")
        return CLASSIFICATION, classes or [str(i) for i in range(count)], []
    names = seedmeta.first(settings, OUTPUT_KEYS)
    if isinstance(names, list) and len(names) == width and all(isinstance(n, str) for n in names):
        return REGRESSION, [], [str(n) for n in names]
    return REGRESSION, [], [f"output_{i}" for i in range(width)] if width > 1 else []


def _preprocessing(
    run: GruRun, selected: list[int] | None, width: int, notes: list[str]
) -> tuple[Any, Any]:
    """The JSON steps and, for the check, the seed's own transform (scikit-learn objects)."""
    file = None
    stem = run.checkpoint.stem
    beside = run.checkpoint.with_name(f"{stem}_{PREPROCESSOR}")
    if beside.is_file():
        file = beside
    elif run.folder is not None and (run.folder / PREPROCESSOR).is_file():
        file = run.folder / PREPROCESSOR
        if run.lent:
            notes.append(
                f"the preprocessor of {run.folder.name} is taken for {run.checkpoint.name}"
            )
    if file is None:
        return None, lambda x: x
    obj = unpickle(file)
    steps = from_preprocessor(obj, columns=selected, width=width, label=file.name)
    return steps, _seed_transform(obj, selected, width)


def _seed_transform(obj: Any, selected: list[int] | None, width: int) -> Any:
    """The seed's own ``DataPreprocessor.transform`` over windows, with its fitted objects."""
    if isinstance(obj, dict):
        imputer, scaler = obj.get("imputer"), obj.get("scaler")
        seed = "scaler_type" in obj or "imputer_strategy" in obj
    elif type(obj).__name__ == "Pipeline":
        imputer, scaler, seed = None, obj, False
    else:
        imputer, scaler, seed = None, obj, False
    fitted = int(getattr(scaler if scaler is not None else imputer, "n_features_in_", width))

    def transform(x: np.ndarray) -> np.ndarray:
        n, length, _ = x.shape
        flat = x.reshape(n * length, width)
        if fitted != width:  # fitted on the full list: unused columns do not matter
            full = np.zeros((n * length, fitted))
            assert selected is not None
            full[:, selected] = flat
            flat = full
        out = flat
        if imputer is not None:
            out = np.asarray(imputer.transform(out), dtype=np.float64)
            out = np.where(np.isnan(out), 0.0, out)
        if scaler is not None:
            out = np.asarray(scaler.transform(out), dtype=np.float64)
        if fitted != width:
            assert selected is not None
            out = out[:, selected]
        windows: np.ndarray = out.reshape(n, length, width)
        if seed:
            infinite = np.isinf(windows).reshape(n, -1).any(axis=1)
            windows[infinite] = np.clip(windows[infinite], -1e6, 1e6)
        return windows

    return transform
