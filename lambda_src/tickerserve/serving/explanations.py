"""An answer's explanation: the per-feature contributions behind it, largest first.

``"explain": true`` (the top ``DEFAULT_TOP``) or ``"explain": k`` on a predict body (or a
batch item) adds ``"explanation": {"space", "base", "output", "contributions"}`` to its
answer: for a classifier the predicted class, for a regressor the value. ``base`` plus the
contributions of *all* features is ``output``, the model's output in ``space``:
``probability`` (a forest's class probability), ``value`` (a regressor's prediction) or
``margin`` (before the link: log-odds, a class's raw score); ``contributions`` holds the top
k by absolute size. The contributions are exact path-dependent TreeSHAP values
(``LoadedModel.explain`` and the members'), never an approximation; a model without an exact
explanation answers 400 ``explain_unsupported`` saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tickerserve.errors import BadRequest
from tickerserve.members.kinds import MARGIN, Contributions, Unexplainable
from tickerserve.serving.model import LoadedModel

DEFAULT_TOP = 10
UNSUPPORTED = "explain_unsupported"


@dataclass(frozen=True)
class Explanation:
    """One row's explanation, for the class it predicted (or its value)."""

    space: str
    base: float
    contributions: np.ndarray  # (n_used_features,) in the model's feature order

    @property
    def output(self) -> float:
        """What the base and all contributions add up to."""
        return self.base + float(self.contributions.sum())

    def to_answer(self, names: list[str], top: int) -> dict[str, Any]:
        """The answer's ``explanation``: the ``top`` largest contributions by size, ties in
        feature order."""
        order = np.argsort(-np.abs(self.contributions), kind="stable")[:top]
        values = self.contributions.tolist()
        return {
            "space": self.space,
            "base": self.base,
            "output": self.output,
            "contributions": {names[i]: values[i] for i in order.tolist()},
        }


def explain_rows(model: LoadedModel, rows: np.ndarray, outputs: np.ndarray) -> list[Explanation]:
    """Explanations of ``rows`` (aligned to the model's used features), each for the answer
    in ``outputs`` (probabilities or values, as ``LoadedModel.predict`` gave them).
    Raises 400 ``explain_unsupported`` when the model has no exact explanation."""
    try:
        parts = model.explain(rows)
    except Unexplainable as exc:
        raise BadRequest(
            f"{model.key} cannot be explained exactly: {exc}", code=UNSUPPORTED
        ) from None
    if model.task != "classification":
        return [_column(parts, r, 0, 1.0) for r in range(len(rows))]
    explained = []
    for r, answer in enumerate(np.atleast_2d(outputs)):
        best = int(answer.argmax())
        if parts.space == MARGIN and parts.values.shape[1] == 1:
            # One margin (a binary model): the positive class's log-odds; the other class's
            # are its negative.
            explained.append(_column(parts, r, 0, 1.0 if best == 1 else -1.0))
        else:
            explained.append(_column(parts, r, best, 1.0))
    return explained


def _column(parts: Contributions, row: int, column: int, sign: float) -> Explanation:
    return Explanation(
        parts.space, sign * float(parts.base[column]), sign * parts.values[row, column]
    )


def top_count(requested: Any) -> int | None:
    """How many contributions a body's ``explain`` asks for (None: no explanation)."""
    if requested is None or requested is False:
        return None
    if requested is True:
        return DEFAULT_TOP
    if isinstance(requested, int) and not isinstance(requested, bool) and requested >= 1:
        return int(requested)
    shown = repr(requested)
    raise BadRequest(
        "explain must be true, false or the number of contributions to return (1 or more), "
        f"not {shown if len(shown) <= 40 else shown[:37] + '...'}",
        code="invalid_field",
    )
