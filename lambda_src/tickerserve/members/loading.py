"""Turn a member's artifact bytes into a loaded member of the kind its spec names.

Each kind's module is imported on first use, so a LightGBM-only function never imports Treelite.
"""

from __future__ import annotations

from collections.abc import Mapping

from tickerserve.errors import InvalidModel
from tickerserve.members.kinds import LIGHTGBM, ONNX, TREELITE, Member, MemberSpec


def load_member(
    spec: MemberSpec, files: Mapping[str, bytes], *, task: str, n_classes: int
) -> Member:
    """Load one member from the version's artifacts (``files``, each one verified): its own
    artifact, and any other its kind uses (an XGBoost member's own model file, an ONNX member's
    preprocessing)."""
    data = files[spec.artifact]
    if spec.kind == LIGHTGBM:
        from tickerserve.members.lightgbm import LightGBMMember

        return LightGBMMember.from_bytes(data, spec, task=task, n_classes=n_classes)
    if spec.kind == TREELITE:
        from tickerserve.members.treelite import TreeliteMember

        return TreeliteMember.from_bytes(data, spec, task=task, n_classes=n_classes,
                                         extra=files)  # fmt: skip
    if spec.kind == ONNX:
        from tickerserve.members.onnx import OnnxMember

        return OnnxMember.from_bytes(data, spec, files)
    raise InvalidModel(f"{spec.artifact}: unknown member kind {spec.kind!r}")
