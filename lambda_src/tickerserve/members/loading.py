"""Turn a member's artifact bytes into a loaded member of the kind its spec names.

Each kind's module is imported on first use, so a LightGBM-only function never imports Treelite.
"""

from __future__ import annotations

from tickerserve.errors import InvalidModel
from tickerserve.members.kinds import LIGHTGBM, TREELITE, Member, MemberSpec


def load_member(spec: MemberSpec, data: bytes, *, task: str, n_classes: int) -> Member:
    """Load one member's artifact bytes as the kind its spec names."""
    if spec.kind == LIGHTGBM:
        from tickerserve.members.lightgbm import LightGBMMember

        return LightGBMMember.from_bytes(data, spec, task=task, n_classes=n_classes)
    if spec.kind == TREELITE:
        from tickerserve.members.treelite import TreeliteMember

        return TreeliteMember.from_bytes(data, spec, task=task, n_classes=n_classes)
    raise InvalidModel(f"{spec.artifact}: unknown member kind {spec.kind!r}")
