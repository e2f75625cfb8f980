"""Request ids: a client's id is used when it follows the contract's rule, from a header in
any letter case or a batch item's own field; otherwise one is generated."""

from __future__ import annotations

import re

import pytest

from tickerserve.serving import request_ids


@pytest.mark.parametrize("good", ["order-1842", "a", "A.b_c:d-e", "x" * 128])
def test_an_id_that_follows_the_rule_is_used(good: str):
    assert request_ids.valid(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 129, "has space", "naïve", "a/b", 42, None, ["a"]])
def test_an_id_that_breaks_the_rule_is_not(bad: object):
    assert request_ids.valid(bad) is None


def test_generated_ids_are_32_hex_digits_and_distinct():
    ids = {request_ids.generate() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Request-Id": "order-1"},
        {"x-request-id": "order-1"},
        {"X-REQUEST-ID": "order-1", "Accept": "*/*"},
        {"x-Request-ID": "order-1"},
    ],
)
def test_the_header_is_found_in_any_letter_case(headers: dict[str, str]):
    assert request_ids.from_headers(headers) == "order-1"


def test_no_header_or_an_unusable_one_gives_no_id():
    assert request_ids.from_headers(None) is None
    assert request_ids.from_headers({}) is None
    assert request_ids.from_headers({"X-Request-Ids": "order-1"}) is None
    assert request_ids.from_headers({"X-Request-Id": "bad id"}) is None


def test_a_batch_item_uses_its_own_id_else_the_batch_id_and_its_index():
    assert request_ids.for_item("batch", 0, {"request_id": "mine"}) == "mine"
    assert request_ids.for_item("batch", 3, {"request_id": "not mine!"}) == "batch-3"
    assert request_ids.for_item("batch", 4, {}) == "batch-4"
    assert request_ids.for_item("batch", 5, "not an object") == "batch-5"


def test_a_batch_s_repeated_ids_are_named_once_each_in_order():
    items = [{"request_id": r} for r in ("a", "b", "a", "c", "a", "b")]
    assert request_ids.duplicate_ids(items) == ["a", "b"]
    # ids that are not usable ones are replaced by unique ones: never repeated
    assert request_ids.duplicate_ids([{"request_id": "x y"}, {"request_id": "x y"}, {}, {}]) == []
    assert request_ids.duplicate_ids("not a list") == []
