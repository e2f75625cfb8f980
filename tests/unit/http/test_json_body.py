"""Request bodies parse as the json module parses them, whichever parser ran (an integer
beyond 64 bits reads as the nearest float)."""

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickerserve.errors import BadRequest
from tickerserve.http.api import parse_json

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
