"""The answer of a network version (``metadata.network``), in the shapes tree models answer:

- a regressor: ``"prediction": value``, or ``{name: value}`` when the head has several outputs;
- a classifier: ``"prediction"`` (label), ``"confidence"`` and ``"probabilities"``;
- a discrete policy: as a classifier over its actions (``"prediction"`` is the action's label,
  or its index as a string), plus ``"action"`` (the index) and ``"label"`` where
  ``action_space_info`` named the actions;
- a box policy: ``"action"``, the deterministic action clipped to the space's bounds (a list,
  one number per dimension);
- any policy whose critic is answered: ``"value"``.
"""

from __future__ import annotations

from typing import Any

from tickerserve.members.network import BOX, DISCRETE, NetworkSpec
from tickerserve.serving.model import Prediction

REGRESSION = "regression"


def network_answer(
    answer: dict[str, Any],
    network: NetworkSpec,
    task: str,
    classes: list[str],
    result: Prediction,
    position: int,
) -> dict[str, Any]:
    """Add one row's prediction to ``answer`` (which names the request and the model)."""
    outputs = result.outputs[position].tolist()  # Python numbers: a float, or a list of them
    policy = network.policy
    if policy is not None and policy.action_space == BOX:
        answer["action"] = outputs if type(outputs) is list else [outputs]
    elif task == REGRESSION:
        if type(outputs) is not list:
            answer["prediction"] = outputs
        else:
            answer["prediction"] = dict(zip(network.outputs, outputs, strict=True))
    else:
        probabilities = outputs
        best = probabilities.index(max(probabilities))  # the first maximum, as argmax
        answer["prediction"] = classes[best]
        answer["confidence"] = probabilities[best]
        answer["probabilities"] = dict(zip(classes, probabilities, strict=True))
        if policy is not None and policy.action_space == DISCRETE:
            answer["action"] = best
            if policy.labelled:
                answer["label"] = classes[best]
    if result.value is not None:
        answer["value"] = result.value.item(position)  # a Python float, without a numpy scalar
    return answer
