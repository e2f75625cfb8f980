"""How cdk-nag spells a resource in a finding, so an acknowledgment can name exactly it."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct


def nag_spelling(scope: Construct, value: str) -> str:
    """A resource as cdk-nag names it in a finding: ``{"Ref": X}`` becomes ``<X>``."""

    def render(node: Any) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and "Ref" in node:
            return f"<{node['Ref']}>"
        if isinstance(node, dict) and "Fn::Join" in node:
            separator, parts = node["Fn::Join"]
            return str(separator).join(render(part) for part in parts)
        raise ValueError(f"cannot spell {node!r} the way cdk-nag does")

    return render(Stack.of(scope).resolve(value))
