"""The request contract read from ``contract.json``: the name rules a request is checked by
(full match, a hint in every refusal), model names, and the limits and shapes read once."""

from __future__ import annotations

import json
import re

import pytest

from tickerserve.contract import (
    GATEWAY_ERRORS,
    LIMITS,
    MODEL_NAME,
    NAMES,
    OUTCOME,
    PATH,
    PREDICT,
)

RAW = json.loads(PATH.read_text())


@pytest.mark.parametrize(
    ("rule", "good"),
    [
        ("ticker", "SMH"),
        ("ticker", "BRK.B"),
        ("ticker", "^GSPC"),
        ("ticker", "ES=F"),
        ("alias", "production"),
        ("alias", "shadow-2_b"),
        ("version", "1.0.2"),
        ("version", "0.10.999999"),
        ("timeframe", "m15"),
        ("asset_class", "etf"),
        ("request_id", "order-1842:a.b_c"),
        ("object_key", "metadata/asset_registry.json"),
    ],
)
def test_a_name_that_follows_its_rule_is_returned_as_it_is(rule: str, good: str):
    assert NAMES[rule].check(good) == good


@pytest.mark.parametrize(
    ("rule", "bad", "message"),
    [
        ("ticker", "SMH ", "invalid ticker 'SMH ': 1-15 ASCII letters, digits, '.', '-', '^', '='"),
        ("ticker", "A" * 16, "invalid ticker 'AAAAAAAAAAAAAAAA': 1-15 ASCII letters"),
        ("alias", "Production", "invalid alias 'Production': lower-case letters, digits, _ and -"),
        ("version", "01.0.0", "invalid version '01.0.0': expected MAJOR.MINOR.PATCH, e.g. 1.0.2"),
        ("version", "1.0", "invalid version '1.0': expected MAJOR.MINOR.PATCH"),
        ("timeframe", "h", "invalid timeframe 'h': m, h, d or w and 1-3 digits"),
        ("asset_class", "ETF", "invalid asset class 'ETF': lower-case, e.g. etf or stock"),
        ("request_id", "", "invalid request id '': 1-128 ASCII letters"),
        ("request_id", "a b", "invalid request id 'a b'"),
        ("object_key", "a/../b", "invalid object key 'a/../b': a relative key"),
        ("object_key", "a//b", "invalid object key 'a//b'"),
        ("object_key", "/abs", "invalid object key '/abs'"),
    ],
)
def test_a_name_that_breaks_its_rule_is_refused_with_the_rule_and_its_hint(
    rule: str, bad: str, message: str
):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        NAMES[rule].check(bad)


def test_a_refusal_shows_at_most_40_characters_of_a_long_string_and_any_other_value_whole():
    with pytest.raises(ValueError, match=f"^invalid ticker {'X' * 40!r}: 1-15 ASCII"):
        NAMES["ticker"].check("X" * 500)
    with pytest.raises(ValueError, match=r"^invalid alias 7: "):
        NAMES["alias"].check(7)
    with pytest.raises(ValueError, match=r"^invalid version None: "):
        NAMES["version"].check(None)


def test_json_patterns_spell_the_same_full_match_for_openapi():
    for name, rule in NAMES.items():
        assert rule.json_pattern == f"^{RAW['names'][name]['pattern']}$"
        assert re.match(rule.json_pattern, RAW["names"][name]["example"]), name


@pytest.mark.parametrize("name", ["etfs/SMH", "stocks/universal", "a/b/c/d", "seed-3/model_A.1"])
def test_model_names_of_up_to_four_segments_are_accepted(name: str):
    assert MODEL_NAME.check(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "model name must be a non-empty string"),
        (None, "model name must be a non-empty string"),
        ("x" * 201, "model name must be a non-empty string"),
        ("a/b/c/d/e", "invalid model name 'a/b/c/d/e': 1-4 '/'-separated segments"),
        ("etfs//SMH", "invalid model name 'etfs//SMH': 1-4 '/'-separated segments"),
        ("etfs/../SMH", "invalid model name 'etfs/../SMH': 1-4 '/'-separated segments"),
        ("metadata/x", "invalid model name 'metadata/x': 'metadata' and 'versions' are reserved"),
        ("etfs/versions", "invalid model name 'etfs/versions': 'metadata' and 'versions' are"),
    ],
)
def test_model_names_that_could_collide_with_the_layout_are_refused(name: object, message: str):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        MODEL_NAME.check(name)


def test_limits_and_request_shapes_are_what_the_file_says():
    assert LIMITS.batch_items == RAW["limits"]["batch_items"] == 1000
    assert LIMITS.body_bytes == RAW["limits"]["body_bytes"]
    assert PREDICT.required == ("ticker", "features")
    assert PREDICT.mutually_exclusive == (("alias", "version"),)
    assert PREDICT.fields["ticker"].name_rule is NAMES["ticker"]
    assert PREDICT.fields["ticker"].invalid_code == "invalid_ticker"
    assert PREDICT.fields["alias"].invalid_code == "invalid_field"  # the default
    assert PREDICT.fields["features"].name_rule is None
    assert PREDICT.fields["features"].schema is not None
    assert OUTCOME.required == ("request_id",)
    assert OUTCOME.fields["request_id"].invalid_code == "invalid_request_id"


def test_gateway_errors_name_a_code_for_every_response_type():
    by_type = {e.response_type: e for e in GATEWAY_ERRORS}
    assert by_type["THROTTLED"].status == 429 and by_type["THROTTLED"].code == "throttled"
    assert by_type["DEFAULT_4XX"].status is None
    assert len(by_type) == len(RAW["gateway"]["errors"])
