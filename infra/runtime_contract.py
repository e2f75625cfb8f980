"""The runtime's request shapes, limits and name rules, read from its ``contract.json``.

Infra never imports ``tickerserve``; it reads the same data file the runtime reads, so a value
the stack hands to the function (a preload model name, the registry key) is checked by the
rule the function will apply at start-up, and the API's gateway answers use the codes the
runtime documents.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PATH = Path(__file__).resolve().parents[1] / "lambda_src" / "tickerserve" / "contract.json"
RAW: dict[str, Any] = json.loads(PATH.read_text())


def check_model_name(name: str) -> str:
    """The runtime's model-name rule (``layout.validate_model_name``); ``ValueError`` if broken."""
    rule = RAW["model_name"]
    segments = name.split("/")
    if (
        not 0 < len(name) <= rule["max_length"]
        or len(segments) > rule["max_segments"]
        or not all(re.fullmatch(rule["segment"], s) for s in segments)
        or segments[0] in rule["reserved_first_segments"]
        or set(rule["reserved_segments"]) & set(segments)
    ):
        reserved = sorted({*rule["reserved_first_segments"], *rule["reserved_segments"]})
        raise ValueError(f"{name!r} is not a model name: {rule['hint']}; {reserved} are reserved")
    return name


def check_name(kind: str, value: str) -> str:
    """One of the runtime's name rules (``ticker``, ``object_key``, ...) in full."""
    rule = RAW["names"][kind]
    if not re.fullmatch(rule["pattern"], value) or any(
        bad in value for bad in rule.get("forbidden_substrings", ())
    ):
        raise ValueError(f"{value!r} is not a valid {rule['label']}: {rule['hint']}")
    return value


@dataclass(frozen=True)
class GatewayError:
    """An answer API Gateway gives before the function runs, in the API's error shape."""

    response_type: str
    status: int | None
    code: str
    when: str


GATEWAY_ERRORS = tuple(GatewayError(**e) for e in RAW["gateway"]["errors"])
