"""The request shapes, limits and name rules, read once from ``contract.json`` beside this file.

The same file is read by the OpenAPI document (``openapi.py``) and by the CDK app
(``infra/runtime_contract.py``, which never imports this package), so a rule can never be
written three ways. Every pattern is matched in full (``re.fullmatch``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("contract.json")
RAW: dict[str, Any] = json.loads(PATH.read_text())


@dataclass(frozen=True)
class NameRule:
    """A checked string: a full-match pattern and what to tell someone who broke it."""

    label: str
    pattern: re.Pattern[str]
    hint: str
    forbidden_substrings: tuple[str, ...] = ()

    def check(self, raw: object) -> str:
        """``raw`` itself when it follows the rule; ``ValueError`` naming the rule otherwise."""
        if (
            not isinstance(raw, str)
            or not self.pattern.fullmatch(raw)
            or any(bad in raw for bad in self.forbidden_substrings)
        ):
            shown = raw[:40] if isinstance(raw, str) else raw
            raise ValueError(f"invalid {self.label} {shown!r}: {self.hint}")
        return raw

    @property
    def json_pattern(self) -> str:
        """The pattern as JSON Schema spells a full match (ECMA-262 ``^...$``)."""
        return f"^{self.pattern.pattern}$"


@dataclass(frozen=True)
class ModelNameRule:
    """Model names: ``/``-separated segments, a few names reserved (``metadata/...``)."""

    segment: re.Pattern[str]
    max_segments: int
    max_length: int
    reserved_first_segments: frozenset[str]
    reserved_segments: frozenset[str]
    hint: str

    def check(self, name: object) -> str:
        if not isinstance(name, str) or not 0 < len(name) <= self.max_length:
            raise ValueError("model name must be a non-empty string")
        segments = name.split("/")
        if len(segments) > self.max_segments or not all(
            self.segment.fullmatch(s) for s in segments
        ):
            raise ValueError(f"invalid model name {name[:80]!r}: {self.hint}")
        if segments[0] in self.reserved_first_segments or self.reserved_segments & set(segments):
            reserved = sorted(self.reserved_first_segments | self.reserved_segments)
            raise ValueError(
                f"invalid model name {name[:80]!r}: {' and '.join(map(repr, reserved))} "
                "are reserved"
            )
        return name


@dataclass(frozen=True)
class Field:
    """One field of a request body."""

    name: str
    description: str
    name_rule: NameRule | None = None  # a string checked by this rule
    schema: dict[str, Any] | None = None  # any other shape, checked by the code that uses it
    invalid_code: str = "invalid_field"  # the 400's code when the rule is broken


@dataclass(frozen=True)
class RequestShape:
    fields: dict[str, Field]
    required: tuple[str, ...]
    mutually_exclusive: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Limits:
    body_bytes: int
    batch_items: int
    outcome_items: int
    models_page_default: int
    models_page_max: int
    models_page_bytes: int


def _name_rule(raw: dict[str, Any]) -> NameRule:
    return NameRule(
        raw["label"],
        re.compile(raw["pattern"]),
        raw["hint"],
        tuple(raw.get("forbidden_substrings", ())),
    )


NAMES: dict[str, NameRule] = {name: _name_rule(rule) for name, rule in RAW["names"].items()}
MODEL_NAME = ModelNameRule(
    re.compile(RAW["model_name"]["segment"]),
    RAW["model_name"]["max_segments"],
    RAW["model_name"]["max_length"],
    frozenset(RAW["model_name"]["reserved_first_segments"]),
    frozenset(RAW["model_name"]["reserved_segments"]),
    RAW["model_name"]["hint"],
)
LIMITS = Limits(**RAW["limits"])
# The signal every ticker has until it is given another, and the one every route of a
# registry written before signals is on.
DEFAULT_SIGNAL: str = NAMES["signal"].check(RAW["signals"]["default"])


def _request(raw: dict[str, Any]) -> RequestShape:
    fields = {
        name: Field(
            name,
            spec["description"],
            NAMES[spec["name_rule"]] if "name_rule" in spec else None,
            spec.get("schema"),
            spec.get("invalid_code", "invalid_field"),
        )
        for name, spec in raw["fields"].items()
    }
    return RequestShape(
        fields,
        tuple(raw["required"]),
        tuple(tuple(group) for group in raw.get("mutually_exclusive", ())),
    )


PREDICT = _request(RAW["requests"]["predict"])
OUTCOME = _request(RAW["requests"]["outcomes"])


@dataclass(frozen=True)
class GatewayError:
    """An answer the deployed REST API gives before the function runs (never the handler)."""

    response_type: str  # API Gateway's ResponseType name
    status: int | None  # None: the response type's own 4xx
    code: str
    when: str


GATEWAY_ERRORS = tuple(GatewayError(**e) for e in RAW["gateway"]["errors"])
GATEWAY_PAYLOAD_BYTES: int = RAW["gateway"]["payload_bytes"]


@dataclass(frozen=True)
class WarningCodes:
    """The warnings an answer may carry (``answers.warnings`` in contract.json): each code's
    meaning, and the two codes by name."""

    about: str
    descriptions: dict[str, str]  # code -> what it means
    out_of_range: str
    unexpected_missing: str


def _warning_code(codes: dict[str, str], code: str) -> str:
    if code not in codes:
        raise KeyError(f"contract.json defines no warning code {code!r}")
    return code


_WARNINGS_RAW: dict[str, Any] = RAW["answers"]["warnings"]
WARNINGS = WarningCodes(
    _WARNINGS_RAW["about"],
    dict(_WARNINGS_RAW["codes"]),
    _warning_code(_WARNINGS_RAW["codes"], "out_of_range"),
    _warning_code(_WARNINGS_RAW["codes"], "unexpected_missing"),
)
