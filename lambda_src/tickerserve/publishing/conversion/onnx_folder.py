"""A team's own ONNX export: a folder with ``model.onnx`` and ``network.json``, its description.

```
{"feature_names": ["rsi_14", "macd", ...],   # the names requests use (required)
 "selected_features": [0, 2],                # indices the network takes (optional)
 "window": 60,                               # a sequence model: rows per request, oldest first
 "observation_shape": [20],                  # ... or a policy's observation ([rows, features])
 "task": "regression",                       # or "classification" (the output: probabilities)
 "outputs": ["ret_1h", "ret_4h"],            # a regressor's output names (when several)
 "labels": ["down", "up"],                   # a classifier's labels (default "0", "1", ...)
 "policy": {"action_space": "discrete", "actions": ["hold", "buy", "sell"]}
         | {"action_space": "box", "low": [-1.0], "high": [1.0]},
 "input_name": "x", "output_name": "y",      # the graph's names (default: its only input,
 "value_output": "value",                    # its first output); a critic's value (optional)
 "preprocessing": {"steps": [...]},          # JSON steps run before the graph (optional)
 "model_type": "tcn", "created_at": "...", "metrics": {...}, "training": {...}}
```

There is no original to compare with, so the check is that the version loads as the function
loads it and answers sensibly on ``CHECK_INPUTS`` generated inputs: finite outputs of the width
the description implies, probabilities that are probabilities, box actions within bounds, a
dynamic batch axis (one input alone answers what it answered in a batch).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tickerserve.errors import InvalidModel
from tickerserve.members.network import BOX, DISCRETE, OBSERVATION, WINDOW, NetworkSpec, Policy
from tickerserve.members.onnx import MAIN, VALUE, new_session, run_probe_input
from tickerserve.members.preprocessing import Preprocessing
from tickerserve.members.safe_load import safe_load
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion import seed_metadata as seedmeta
from tickerserve.publishing.conversion.feature_names import as_ints, as_names, selection
from tickerserve.publishing.conversion.network_bundle import (
    ONNX_FILE,
    check_inputs,
    compare,
    load,
    network_bundle,
)
from tickerserve.publishing.conversion.recipe import Converted
from tickerserve.storage.bundle import CLASSIFICATION, REGRESSION
from tickerserve.storage.store import sha256_hex

DESCRIPTION = "network.json"
_PROBABILITY_SUM = 1e-4


def is_onnx_folder(path: Path) -> bool:
    return (path / ONNX_FILE).is_file()


def read_onnx_folder(path: Path, *, model: str, asset_class: str | None = None) -> Converted:
    """The folder as a checked version; ``NotConvertible`` says what is wrong."""
    try:
        return _read(path, model, asset_class)
    except NotConvertible as exc:
        prefix = f"{path}: "
        raise NotConvertible(
            exc.message if exc.message.startswith(prefix) else prefix + exc.message
        ) from None


def _read(path: Path, model: str, asset_class: str | None) -> Converted:
    file = path / DESCRIPTION
    if not file.is_file():
        raise NotConvertible(
            f"{ONNX_FILE} needs {DESCRIPTION} beside it (feature_names, window or "
            "observation_shape, task, labels)"
        )
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise NotConvertible(f"{DESCRIPTION}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise NotConvertible(f"{DESCRIPTION} must be a JSON object")
    graph = (path / ONNX_FILE).read_bytes()
    names = as_names(raw.get("feature_names"), DESCRIPTION)
    picked = raw.get("selected_features")
    selected = (
        None
        if picked is None
        else selection(names, None, as_ints(picked, DESCRIPTION), label=DESCRIPTION)
    )
    width = len(names) if selected is None else len(selected)
    shape = _shape(raw, width)
    policy = _policy(raw.get("policy"))
    task = str(
        raw.get("task")
        or (CLASSIFICATION if policy and policy[0].action_space == DISCRETE else REGRESSION)
    )
    if task not in (CLASSIFICATION, REGRESSION):
        raise NotConvertible(f"{DESCRIPTION}: task must be classification or regression")
    try:  # onnxruntime's own verdict on the bytes (in a probe child first), before the rest
        session = safe_load(new_session, graph, what=ONNX_FILE, check=run_probe_input)
    except InvalidModel as exc:
        raise NotConvertible(exc.message) from None
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    input_name = str(raw.get("input_name") or (inputs[0] if len(inputs) == 1 else ""))
    if input_name not in inputs or len(inputs) != 1:
        raise NotConvertible(f"the graph has inputs {inputs}: one input, named by input_name")
    main = str(raw.get("output_name") or outputs[0])
    roles = {MAIN: main}
    if raw.get("value_output") is not None:
        roles[VALUE] = str(raw["value_output"])
    width_out = _output_width(session, input_name, main, shape)
    classes, output_names = _outputs(raw, task, policy, width_out)
    preprocessing = None
    if raw.get("preprocessing") is not None:
        try:
            body = json.dumps(raw["preprocessing"]).encode()
            preprocessing = Preprocessing.from_json(body, shape)
        except (ValueError, TypeError) as exc:
            raise NotConvertible(f"{DESCRIPTION}: preprocessing: {exc}") from None
    network = NetworkSpec(
        WINDOW if "window" in raw else OBSERVATION,
        shape,
        outputs=output_names,
        policy=None if policy is None else policy[0],
        value=VALUE in roles,
    )
    bundle = network_bundle(
        model=model,
        graph=graph,
        input_name=input_name,
        outputs=roles,
        network=network,
        task=task,
        classes=classes,
        feature_names=names,
        selected_features=selected,
        preprocessing=preprocessing,
        model_type=str(raw.get("model_type") or "onnx"),
        estimator="onnx",
        asset_class=asset_class,
        created_at=seedmeta.created_at(raw) if seedmeta.first(raw, seedmeta.CREATED_KEYS) else "",
        metrics=seedmeta.metrics({"metrics": raw.get("metrics") or {}}, []),
        hyperparameters=dict(raw.get("hyperparameters") or {}),
        training=seedmeta.training(raw),
        source={
            "kind": "onnx",
            "files": {ONNX_FILE: sha256_hex(graph), DESCRIPTION: sha256_hex(file.read_bytes())},
        },
    )
    probe = check_inputs(shape, preprocessing, missing=bundle.metadata.accepts_missing)
    loaded = load(bundle)
    answers = loaded.predict(probe)
    main_out = np.asarray(answers.outputs, dtype=np.float64).reshape(len(probe), -1)
    if not np.isfinite(main_out).all():
        raise NotConvertible("the graph answers non-finite values on generated inputs")
    if task == CLASSIFICATION:
        sums = main_out.sum(axis=1)
        if (main_out < 0).any() or (main_out > 1).any() or (abs(sums - 1) > _PROBABILITY_SUM).any():
            raise NotConvertible(
                f"output {main!r} is not class probabilities (rows sum to {sums.min():.4g} .. "
                f"{sums.max():.4g}): export softmax(logits)"
            )
    if policy is not None and policy[0].action_space == BOX:
        low, high = np.asarray(policy[0].low), np.asarray(policy[0].high)
        if (main_out < low - 1e-6).any() or (main_out > high + 1e-6).any():
            raise NotConvertible(
                f"output {main!r} leaves the box's bounds: clip the action in the graph"
            )
    single = np.asarray(loaded.predict(probe[:1]).outputs).reshape(1, -1)
    absolute, _ = compare("one input alone against the same input in a batch", single, main_out[:1])
    bundle.metadata.source["probe"] = {"rows": len(probe), "max_abs_diff": absolute}
    return Converted(bundle, "native", "onnx", len(probe), absolute)


def _shape(raw: dict[str, Any], width: int) -> tuple[int, ...]:
    window, observation = raw.get("window"), raw.get("observation_shape")
    if (window is None) == (observation is None):
        raise NotConvertible(f"{DESCRIPTION}: give window (a sequence) or observation_shape")
    if window is not None:
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise NotConvertible(f"{DESCRIPTION}: window must be a positive integer")
        return (window, width)
    if (
        not isinstance(observation, list)
        or not 1 <= len(observation) <= 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in observation)
    ):
        raise NotConvertible(f"{DESCRIPTION}: observation_shape lists one or two positive sizes")
    if observation[-1] != width:
        raise NotConvertible(
            f"{DESCRIPTION}: observation_shape {observation} ends in {observation[-1]} "
            f"features, feature_names gives {width}"
        )
    return tuple(observation)


def _policy(raw: Any) -> tuple[Policy, list[str] | None] | None:
    """The policy and its action labels, if the description names one."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise NotConvertible(f"{DESCRIPTION}: policy must be an object")
    space = raw.get("action_space")
    if space == DISCRETE:
        actions = raw.get("actions")
        labels = None if actions is None else as_names(actions, f"{DESCRIPTION} policy actions")
        return Policy(DISCRETE, labelled=labels is not None), labels
    if space == BOX:
        try:
            return Policy.from_dict(
                {"action_space": BOX, "low": raw.get("low"), "high": raw.get("high")}
            ), None
        except (ValueError, TypeError) as exc:
            raise NotConvertible(f"{DESCRIPTION}: policy: {exc}") from None
    raise NotConvertible(f"{DESCRIPTION}: policy action_space must be discrete or box")


def _output_width(session: Any, input_name: str, output: str, shape: tuple[int, ...]) -> int:
    names = [o.name for o in session.get_outputs()]
    if output not in names:
        raise NotConvertible(f"the graph has no output {output!r} (it has {', '.join(names)})")
    dtype = np.float64 if session.get_inputs()[0].type == "tensor(double)" else np.float32
    try:
        (out,) = session.run([output], {input_name: np.zeros((2, *shape), dtype=dtype)})
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise NotConvertible(
            f"the graph does not run on a batch of 2 inputs of shape {list(shape)}: {text}"
        ) from None
    return int(math.prod(np.asarray(out).shape[1:]))


def _outputs(
    raw: dict[str, Any], task: str, policy: tuple[Policy, list[str] | None] | None, width: int
) -> tuple[list[str], list[str]]:
    """(class labels, named outputs) for an output of ``width`` values per input."""
    if task == CLASSIFICATION:
        labels = raw.get("labels")
        if policy is not None and policy[1] is not None:
            labels = policy[1]
        classes = (
            as_names(labels, f"{DESCRIPTION} labels")
            if labels is not None
            else [str(i) for i in range(width)]
        )
        if len(classes) != width:
            raise NotConvertible(f"{len(classes)} labels for an output of {width} probabilities")
        return classes, []
    names = raw.get("outputs")
    if policy is not None and policy[0].action_space == BOX:
        if len(policy[0].low) != width:
            raise NotConvertible(f"the box has {len(policy[0].low)} dimensions, the output {width}")
        names = names or [f"action_{i}" for i in range(width)]
    if names is None:
        return [], [] if width == 1 else [f"output_{i}" for i in range(width)]
    listed = as_names(names, f"{DESCRIPTION} outputs")
    if len(listed) != width:
        raise NotConvertible(f"{len(listed)} output names for an output of {width} values")
    return [], listed if width > 1 or (policy is not None) else []
