"""Seed 001's PPO runs -> an ONNX policy version, checked against stable-baselines3.

A run folder holds ``model.zip`` (stable-baselines3's own format), ``model_metadata.json``
(``feature_names``, ``observation_shape``, ``action_space_info``, ``symbol``, ``created_at``),
``model_vecnormalize.pkl`` (VecNormalize's statistics) and ``metadata.json``.

The policy is loaded by stable-baselines3 itself (``PPO.load``) and exported as its
documentation shows (``policies``); the VecNormalize statistics become JSON steps applied
before the graph exactly as VecNormalize applies them (``predict`` alone does not normalize:
the training wrapper did). ``action_space_info`` names the actions where it can (``actions``,
``action_names``, ``labels``, ``names`` or ``meanings``: a list, or index -> name); the
observation's last axis is named by ``feature_names`` when they count the same, else
``feature_0`` ... (seed 001's trading environment appends balance, position and PnL to the
market features, so its observations have three more columns than ``feature_names``).

Checked on ``CHECK_INPUTS`` generated raw observations (some far past ``clip_obs``) against
``VecNormalize.normalize_obs`` then ``model.predict(deterministic=True)``, the policy's action
probabilities and its ``predict_values``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tickerserve.members.network import BOX, DISCRETE, OBSERVATION, NetworkSpec, Policy
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion import seed_metadata as seedmeta
from tickerserve.publishing.conversion.feature_names import all_ints
from tickerserve.publishing.conversion.network_bundle import (
    check_inputs,
    check_network,
    export_onnx,
    network_bundle,
    roles,
)
from tickerserve.publishing.conversion.pickles import unpickle
from tickerserve.publishing.conversion.preprocessors import from_vecnormalize
from tickerserve.publishing.conversion.recipe import Converted
from tickerserve.publishing.conversion.torch_extra import require
from tickerserve.storage.bundle import CLASSIFICATION, REGRESSION
from tickerserve.storage.store import sha256_hex

POLICY = "model.zip"
POLICY_METADATA = "model_metadata.json"
VECNORMALIZE = "model_vecnormalize.pkl"
LABEL_KEYS = ("actions", "action_names", "action_labels", "labels", "names", "meanings")
# What a policy saved by another version needs to load for prediction only (stable-baselines3's
# documented way to load across Python versions): schedules are not needed to predict.
_PREDICT_ONLY = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}


def convert_ppo(
    folder: Path,
    *,
    model: str,
    asset_class: str | None = None,
    fallback_names: list[str] | None = None,
    label: object = None,
) -> Converted:
    """Convert and check one PPO run folder; ``NotConvertible`` says why not (prefixed with
    ``label``, the folder by default)."""
    try:
        return _convert(folder, model, asset_class, fallback_names)
    except NotConvertible as exc:
        prefix = f"{folder if label is None else label}: "
        raise NotConvertible(
            exc.message if exc.message.startswith(prefix) else prefix + exc.message
        ) from None


def _convert(
    folder: Path, model: str, asset_class: str | None, fallback: list[str] | None
) -> Converted:
    torch = require("torch", "a PPO policy (model.zip)")
    sb3 = require("stable_baselines3", "a PPO policy (model.zip)")
    from tickerserve.publishing.conversion.policies import PolicyGraph, check_policy

    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # version-skew notices: the check below decides
        try:
            algorithm = sb3.PPO.load(folder / POLICY, device="cpu", custom_objects=_PREDICT_ONLY)
        except Exception as exc:
            text = " ".join(str(exc).split())[:200]
            raise NotConvertible(
                f"stable-baselines3 cannot load {POLICY}: {type(exc).__name__}: {text}"
            ) from None
    policy = algorithm.policy.eval()
    check_policy(policy, POLICY)
    shape = tuple(int(n) for n in policy.observation_space.shape)
    info = _json(folder / POLICY_METADATA)
    meta = _json(folder / "metadata.json")
    recorded = info.get("observation_shape")
    if isinstance(recorded, list) and tuple(recorded) != shape:
        raise NotConvertible(
            f"{POLICY_METADATA} says observation_shape {recorded}, the policy takes {list(shape)}"
        )
    names = _names(info, meta, shape[-1], fallback, notes)
    vecnormalize = None
    preprocessing = None
    if (folder / VECNORMALIZE).is_file():
        vecnormalize = unpickle(folder / VECNORMALIZE)
        preprocessing = from_vecnormalize(vecnormalize, shape, VECNORMALIZE)
    else:
        notes.append(f"no {VECNORMALIZE}: observations reach the policy as they are sent")
    space = policy.action_space
    if hasattr(space, "n"):
        classes, labelled = _labels(info.get("action_space_info"), int(space.n), notes)
        task, outputs = CLASSIFICATION, []
        spec_policy = Policy(DISCRETE, labelled=labelled)
    else:
        classes, task = [], REGRESSION
        outputs = _action_names(info.get("action_space_info"), int(space.shape[0]))
        spec_policy = Policy(
            BOX, low=[float(v) for v in space.low], high=[float(v) for v in space.high]
        )
    network = NetworkSpec(OBSERVATION, shape, outputs=outputs, policy=spec_policy, value=True)
    graph_module = PolicyGraph(policy).eval()
    graph = export_onnx(
        graph_module, shape, input_name="observation", output_names=["output", "value"]
    )
    files = {POLICY: sha256_hex((folder / POLICY).read_bytes())}
    for name in (POLICY_METADATA, VECNORMALIZE, "metadata.json"):
        if (folder / name).is_file():
            files[name] = sha256_hex((folder / name).read_bytes())
    config = meta.get("config")
    hyper = seedmeta.scalars(config) if isinstance(config, dict) else {}
    bundle = network_bundle(
        model=model,
        graph=graph,
        input_name="observation",
        outputs=roles(True),
        network=network,
        task=task,
        classes=classes,
        feature_names=names,
        selected_features=None,
        preprocessing=preprocessing,
        model_type="ppo",
        estimator="PPO",
        asset_class=asset_class,
        created_at=seedmeta.created_at(info, meta) if (info or meta) else "",
        metrics=seedmeta.metrics(meta, notes),
        hyperparameters=hyper,
        training=seedmeta.training(meta),
        source={
            "kind": "seed",
            "estimator": "PPO",
            "policy": type(policy).__name__,
            "action_space": str(space),
            "files": files,
        },
    )

    def original(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        obs = inputs.reshape(len(inputs), *shape).astype(np.float32)
        if vecnormalize is not None:
            obs = vecnormalize.normalize_obs(obs)  # VecNormalize's own arithmetic
        actions, _ = algorithm.predict(obs, deterministic=True)
        with torch.no_grad():
            tensor, _ = policy.obs_to_tensor(obs)
            value = policy.predict_values(tensor).numpy()[:, 0]
            if hasattr(space, "n"):
                probs = policy.get_distribution(tensor).distribution.probs.numpy()
                if not (probs.argmax(axis=1) == np.asarray(actions).ravel()).all():
                    raise NotConvertible("predict() disagrees with the policy's probabilities")
                return probs.astype(np.float64), value.astype(np.float64)
        return np.asarray(actions, dtype=np.float64).reshape(len(obs), -1), value.astype(np.float64)

    check = check_network(bundle, check_inputs(shape, preprocessing), original)
    return Converted(bundle, "seed", "PPO", check.inputs, check.max_abs_diff, {}, notes)


def _json(file: Path) -> dict[str, Any]:
    if not file.is_file():
        return {}
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise NotConvertible(f"{file.name}: not valid JSON ({exc})") from None
    return raw if isinstance(raw, dict) else {}


def _names(
    info: dict[str, Any],
    meta: dict[str, Any],
    width: int,
    fallback: list[str] | None,
    notes: list[str],
) -> list[str]:
    """Names of the observation's last axis."""
    listed = []
    for source in (info, meta):
        names = source.get("feature_names")
        if isinstance(names, list) and names and not all_ints(names):
            named = all(isinstance(n, str) and n for n in names)
            if len(names) == width and named and len(set(names)) == len(names):
                return [str(n) for n in names]
            listed.append(len(names))
    if fallback is not None and len(fallback) == width:
        return list(fallback)
    counted = f" (feature_names lists {listed[0]})" if listed else ""
    notes.append(
        f"the observation's {width} columns are named feature_0 ... feature_{width - 1}"
        f"{counted}; send observations as lists in column order or by those names"
    )
    return [f"feature_{i}" for i in range(width)]


def _label_list(info: Any) -> list[str] | None:
    if not isinstance(info, dict):
        return None
    raw = seedmeta.first(info, LABEL_KEYS)
    if isinstance(raw, dict):
        try:
            ordered = sorted(raw.items(), key=lambda kv: int(kv[0]))
        except (TypeError, ValueError):
            return None
        raw = [v for _, v in ordered]
    if isinstance(raw, list) and raw and all(isinstance(v, str) and v for v in raw):
        return [str(v) for v in raw]
    return None


def _labels(info: Any, n: int, notes: list[str]) -> tuple[list[str], bool]:
    """The discrete actions' labels from ``action_space_info`` (else "0", "1", ...)."""
    labels = _label_list(info)
    if isinstance(info, dict) and isinstance(info.get("n"), int) and info["n"] != n:
        raise NotConvertible(f"action_space_info says {info['n']} actions, the policy has {n}")
    if labels is not None and len(labels) == n and len(set(labels)) == n:
        return labels, True
    if labels is not None:
        notes.append(f"action_space_info names {len(labels)} actions for {n}: answered by index")
    return [str(i) for i in range(n)], False


def _action_names(info: Any, dims: int) -> list[str]:
    """A box action's dimension names (``action_space_info`` labels, else action_0 ...)."""
    labels = _label_list(info)
    if labels is not None and len(labels) == dims and len(set(labels)) == dims:
        return labels
    return [f"action_{i}" for i in range(dims)]
