"""Member kinds: the models a version combines, one module per kind.

Each kind has the same three seams (as Treelite separates them): the publisher converts an
estimator into bytes on its own machine (``tickerserve.publishing.conversion``), the bundle
stores the bytes with their sha256, and the function turns bytes into a loaded member here.
A loader is a plain ``bytes -> object`` function (``load_booster``, ``load_treelite``), so a
crash-proof wrapper can run it in a child process first.

Every member answers ``predict(rows) -> (n_rows, n_outputs)`` float64: class probabilities
in the bundle's class order for a classifier, one column of values for a regressor. Kinds are
imported on first use, so a LightGBM-only function never imports Treelite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from tickerserve.errors import InvalidModel

if TYPE_CHECKING:
    from tickerserve.bundle import MemberSpec

LIGHTGBM = "lightgbm"
TREELITE = "treelite"
KINDS: tuple[str, ...] = (LIGHTGBM, TREELITE)
TASKS: tuple[str, ...] = ("classification", "regression")


class Member(Protocol):
    """A loaded member, ready to predict."""

    kind: str
    n_features: int
    n_outputs: int
    trained_names: list[str] | None  # the feature names it was trained on, if it knows them

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Probabilities (classifier) or values (regressor), shape (n_rows, n_outputs)."""
        ...


def load_member(spec: MemberSpec, data: bytes, *, task: str, n_classes: int) -> Member:
    """Load one member's artifact bytes as the kind its spec names."""
    if spec.kind == LIGHTGBM:
        from tickerserve.members.lightgbm import LightGBMMember

        return LightGBMMember.from_bytes(data, spec, task=task, n_classes=n_classes)
    if spec.kind == TREELITE:
        from tickerserve.members.treelite import TreeliteMember

        return TreeliteMember.from_bytes(data, spec, task=task, n_classes=n_classes)
    raise InvalidModel(f"{spec.artifact}: unknown member kind {spec.kind!r}")


def expected_outputs(task: str, n_classes: int) -> int:
    """Columns a member of ``task`` must answer: every class's probability, or one value."""
    return n_classes if task == "classification" else 1
