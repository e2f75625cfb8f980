"""Request bodies read and answers written (``tickerserve.http.bodies``): the same values and
text as the json module's, whichever parser or encoder ran."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickerserve.errors import BadRequest
from tickerserve.http.bodies import batch_body, dumps, parse_json
from tickerserve.members.kinds import MemberSpec

# -- request bodies parse as the json module parses them, whichever parser ran (an integer
# beyond 64 bits reads as the nearest float) ---------------------------------------------------
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)  # past 64 bits too
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # any code point, lone surrogates included
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, and of the same types all the way down (1 is not 1.0)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def as_served(value: Any) -> Any:
    """What the json module reads, with integers beyond 64 bits (within float range) as the
    nearest float, as orjson reads them (a body orjson refuses is the json module's alone)."""
    if isinstance(value, dict):
        return {k: as_served(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_served(v) for v in value]
    if type(value) is int and not -(2**63) <= value < 2**64:
        try:
            return float(value)
        except OverflowError:  # beyond any float: an error to orjson, an int to json
            return value
    return value


@settings(max_examples=300, deadline=None)
@given(values, st.booleans())
def test_any_json_text_parses_as_the_json_module_parses_it(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    parsed, reference = parse_json(text), json.loads(text)
    assert same(parsed, as_served(reference)) or same(parsed, reference)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',  # duplicate keys: the last wins
        '{"x": -0, "y": -0.0, "z": 1E400, "w": 1e-400}',
        '{"s": "\\ud800", "t": "\\u00e9"}',
        ' \n{"a": [1, 2.5, "x", null, true]}\t',
        '{"f": NaN, "g": -Infinity}',
        '{"big": 18446744073709551615, "bigger": -9223372036854775809, "huge": 1' + "0" * 400 + "}",
    ],
)
def test_edge_cases_parse_as_the_json_module_parses_them(text):
    parsed, reference = parse_json(text), json.loads(text)
    assert same(parsed, as_served(reference)) or same(parsed, reference)


@pytest.mark.parametrize("text", ["{", '{"a": }', "[1,]", "'single'", "{} {}", "[" * 5000])
def test_invalid_json_is_the_same_400(text):
    with pytest.raises(BadRequest) as raised:
        parse_json(text)
    assert raised.value.code == "invalid_json"
    assert raised.value.message.startswith("body is not valid JSON: ")


# -- response bodies are the json module's text, whichever encoder wrote them ----------------
def json_module_text(value: Any) -> str | type[Exception]:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        return type(exc)


def served_text(value: Any) -> str | type[Exception]:
    try:
        return dumps(value)
    except (TypeError, ValueError) as exc:
        return type(exc)


@settings(max_examples=500, deadline=None)
@given(values | st.tuples(values, st.floats(min_value=-1e-3, max_value=1e-3)))
def test_a_body_is_the_json_module_s_text_character_for_character(value):
    # Any JSON value: NaN and infinities (refused), tiny floats, non-ASCII, big integers
    assert served_text(value) == json_module_text(value)


@pytest.mark.parametrize(
    "value",
    [
        {"p": 1.7772883090895865e-05, "q": 3.2e-07, "r": 1e16, "s": 1e22, "t": 0.0001},
        # exponents orjson and json spell alike (two digits or more): orjson's own text
        {"r": 1.2345678901234568e17, "s": -1e300, "t": 1.5e-10, "u": 5e-324, "v": 1e-6},
        {"name": "Société \x7f \u2028", "alias": None},
        {"prediction": math.nan},
        {"value": math.inf},
        {1: "an integer key"},
        {"big": 2**64, "bigger": -(2**70)},
        {"float subclass": np.float64(0.5)},
        {"when": datetime(2026, 12, 1, tzinfo=UTC)},
        {"spec": MemberSpec("model.txt")},
    ],
)
def test_what_orjson_writes_otherwise_is_written_by_the_json_module(value):
    assert served_text(value) == json_module_text(value)


def test_a_batch_answer_is_the_same_json_value_and_nulls_and_nan_are_written_as_before():
    answer = {
        "request_id": "b-3e-1",
        "results": [
            {"index": 0, "prediction": "IRON_CONDOR", "probabilities": {"a": 3.2e-05, "b": 1.5e-7,
             "c": 0.99996785, "d": 1e16}, "ticker": "ÄB"},
        ],
        "succeeded": 1,
        "failed": 0,
    }  # fmt: skip
    # The same value as the json module's text (orjson spells small floats without exponent)
    assert json.loads(batch_body(answer)) == json.loads(dumps(answer)) == answer
    # A null (a pinned version's alias) is written by the json module, character for character
    pinned = {**answer, "results": [{"index": 0, "model": {"alias": None}}]}
    assert batch_body(pinned) == dumps(pinned)
    # NaN is refused as the json module refuses it, never written as null
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        batch_body({**answer, "results": [{"prediction": math.nan}]})
