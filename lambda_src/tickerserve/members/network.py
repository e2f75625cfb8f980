"""What a network version takes and answers: ``metadata.json``'s ``network`` object.

```
"network": {
  "input": "window" | "observation",
  "shape": [60, 20],            # one request's input: window rows x used features, or the
                                # observation's shape ([20], or [20, 23] for rows x features)
  "outputs": ["ret_1h", ...],   # a regressor's named outputs (absent: one value)
  "policy": null | {"action_space": "discrete", "labelled": true}
                 | {"action_space": "box", "low": [...], "high": [...]},
  "value": false                # whether answers carry the critic's value
}
```

A sequence model's request sends a window: ``features`` as ``shape[0]`` rows, oldest first; a
policy's an observation of ``shape``. The last axis is always the used features (their names
are the version's ``feature_names``, selected by ``selected_features``). A discrete policy is a
classifier over its actions (the version's ``classes`` are the action labels, or ``"0"``,
``"1"``, ... when ``labelled`` is false); a box policy a regressor with one output per action
dimension, already clipped to the space's bounds by the graph.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WINDOW, OBSERVATION = "window", "observation"
INPUTS = (WINDOW, OBSERVATION)
DISCRETE, BOX = "discrete", "box"
ACTION_SPACES = (DISCRETE, BOX)
MAX_ELEMENTS = 1_000_000  # one request's input; a capture record keeps only its last row


@dataclass(frozen=True)
class Policy:
    """A policy's action space: discrete (labelled or not) or a box with its bounds."""

    action_space: str
    labelled: bool = False
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        if self.action_space == DISCRETE:
            return {"action_space": DISCRETE, "labelled": self.labelled}
        return {"action_space": BOX, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Policy:
        space = raw.get("action_space")
        if space == DISCRETE:
            labelled = raw.get("labelled", False)
            if not isinstance(labelled, bool):
                raise ValueError("policy labelled must be true or false")
            return cls(DISCRETE, labelled=labelled)
        if space == BOX:
            low = [float(v) for v in raw.get("low") or []]
            high = [float(v) for v in raw.get("high") or []]
            if not low or len(low) != len(high):
                raise ValueError("a box policy needs low and high bounds per action dimension")
            if any(not (a <= b) or math.isnan(a) for a, b in zip(low, high, strict=True)):
                raise ValueError("a box policy's low bounds must not be above its high bounds")
            return cls(BOX, low=low, high=high)
        raise ValueError(f"policy action_space must be one of {', '.join(ACTION_SPACES)}")


@dataclass(frozen=True)
class NetworkSpec:
    """The ``network`` object of a version's metadata."""

    input: str
    shape: tuple[int, ...]
    outputs: list[str] = field(default_factory=list)
    policy: Policy | None = None
    value: bool = False

    @property
    def rows(self) -> int | None:
        """Rows a request sends (a window's length, a 2-D observation's first axis); None when
        the input is one row of features (a 1-D observation)."""
        return self.shape[0] if len(self.shape) == 2 else None

    @property
    def n_features(self) -> int:
        """Features per row: the last axis."""
        return self.shape[-1]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"input": self.input, "shape": list(self.shape)}
        if self.outputs:
            out["outputs"] = list(self.outputs)
        out["policy"] = None if self.policy is None else self.policy.to_dict()
        out["value"] = self.value
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> NetworkSpec:
        if not isinstance(raw, Mapping):
            raise TypeError("network must be an object")
        shape = raw.get("shape")
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
        ):
            raise ValueError("network shape must list one or two positive integers")
        outputs = raw.get("outputs") or []
        if not isinstance(outputs, list) or not all(isinstance(n, str) and n for n in outputs):
            raise ValueError("network outputs must be a list of names")
        policy_raw = raw.get("policy")
        value = raw.get("value", False)
        if not isinstance(value, bool):
            raise ValueError("network value must be true or false")
        spec = cls(
            input=str(raw.get("input")),
            shape=tuple(shape),
            outputs=list(outputs),
            policy=None if policy_raw is None else Policy.from_dict(policy_raw),
            value=value,
        )
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.input not in INPUTS:
            raise ValueError(f"network input must be one of {', '.join(INPUTS)}")
        if self.input == WINDOW and len(self.shape) != 2:
            raise ValueError("a window is [rows, features]")
        if math.prod(self.shape) > MAX_ELEMENTS:
            raise ValueError(f"a network input holds at most {MAX_ELEMENTS} numbers")
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError("network outputs contains duplicates")
        if self.policy is not None and self.input != OBSERVATION:
            raise ValueError("a policy takes an observation")
