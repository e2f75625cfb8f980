"""Member kinds: what a version's ``metadata.json`` says about each member (``MemberSpec``),
the tasks, and how a member's artifact bytes become a loaded, predicting member."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tickerserve.layout import validate_artifact_name

LIGHTGBM = "lightgbm"
TREELITE = "treelite"
ONNX = "onnx"  # a network (members.onnx); a version holds it alone
KINDS: tuple[str, ...] = (LIGHTGBM, TREELITE, ONNX)
TASKS: tuple[str, ...] = ("classification", "regression")


@dataclass(frozen=True)
class MemberSpec:
    """One member of the bundle: its artifact, its kind, its weight in a weighted average and
    the kind's own options (e.g. a Treelite member's recipe)."""

    artifact: str
    weight: float = 1.0
    kind: str = LIGHTGBM
    name: str = ""  # the original's own name for it (seed 002's "rf", seed 003's "xgb_model")
    options: dict[str, Any] = field(default_factory=dict)
    estimator: str = ""  # what it was converted from (XGBRegressor, RandomForestClassifier, ...)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"artifact": self.artifact, "kind": self.kind, "weight": self.weight}
        if self.name:
            out["name"] = self.name
        if self.estimator:
            out["estimator"] = self.estimator
        if self.options:
            out["options"] = self.options
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MemberSpec:
        options = raw.get("options") or {}
        if not isinstance(options, dict):
            raise TypeError("member options must be an object")
        return cls(
            artifact=validate_artifact_name(raw["artifact"]),
            weight=float(raw.get("weight", 1.0)),
            kind=str(raw.get("kind", LIGHTGBM)),
            name=str(raw.get("name", "")),
            options=dict(options),
            estimator=str(raw.get("estimator", "")),
        )


# Where an explanation adds up: before the link (log-odds, raw scores), class probabilities,
# or a regressor's value.
MARGIN, PROBABILITY, VALUE = "margin", "probability", "value"
SPACES: tuple[str, ...] = (MARGIN, PROBABILITY, VALUE)


class Unexplainable(Exception):
    """No exact per-feature explanation exists for this member (the message says why)."""


@dataclass(frozen=True)
class Contributions:
    """Per-feature contributions of some rows in one output space: for each row and output
    column, ``base + values.sum(-1)`` is the member's output in that space.

    Columns: a classifier's classes (probability space), its margins (margin space: one for
    a binary model, the positive class's log-odds; one per class otherwise), or one value.
    """

    space: str
    base: np.ndarray  # (n_columns,) the expected output over the training data
    values: np.ndarray  # (n_rows, n_columns, n_features)

    @property
    def output(self) -> np.ndarray:
        """(n_rows, n_columns) what the contributions add up to."""
        return self.base + self.values.sum(axis=2)


class Member(Protocol):
    """A loaded member, ready to predict."""

    kind: str
    n_features: int
    n_outputs: int
    trained_names: list[str] | None  # the feature names it was trained on, if it knows them

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Probabilities (classifier) or values (regressor), shape (n_rows, n_outputs)."""
        ...


class Explainable(Protocol):
    """A member that can explain its outputs (a kind without ``explain`` cannot)."""

    def explain(self, rows: np.ndarray) -> Contributions:
        """Exact per-feature contributions of ``rows``; ``Unexplainable`` if none exist."""
        ...


def expected_outputs(task: str, n_classes: int) -> int:
    """Columns a member of ``task`` must answer: every class's probability, or one value."""
    return n_classes if task == "classification" else 1
