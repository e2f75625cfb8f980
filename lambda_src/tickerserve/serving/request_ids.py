"""Request ids: every answer carries one, so captured rows and realized outcomes can be joined.

A client's id (the ``X-Request-Id`` header, or a ``request_id`` body field) is used when it
follows ``contract.json``'s ``request_id`` rule (``[A-Za-z0-9._:-]{1,128}``); otherwise one is
generated. A batch item takes its own
``request_id`` field, else ``{batch id}-{index}``. Ids are unique per served row: a batch whose
items name the same id twice is refused (``duplicate_ids``), since one outcome would then score
several rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tickerserve.contract import NAMES

HEADER = "x-request-id"
FIELD = "request_id"
_VALID = NAMES["request_id"].pattern


def valid(value: Any) -> str | None:
    """``value`` when it is a usable request id, else None."""
    if isinstance(value, str) and _VALID.fullmatch(value):
        return value
    return None


def generate() -> str:
    """A fresh random id (32 hex digits); os.urandom needs no reseeding after a snapshot."""
    return os.urandom(16).hex()


def from_headers(headers: Mapping[str, Any] | None) -> str | None:
    """The client's ``X-Request-Id`` in any letter case (HTTP APIs lower-case header names)."""
    if not headers:
        return None
    value = headers.get("X-Request-Id")
    if value is None:
        value = headers.get(HEADER)
    if value is None:  # any other letter case; the length check spares lower() on the rest
        size = len(HEADER)
        for key, given in headers.items():
            if len(key) == size and key.lower() == HEADER:
                value = given
                break
    return valid(value)


def for_item(batch_id: str, index: int, item: Any) -> str:
    """A batch item's id: its own valid ``request_id`` field, else ``{batch id}-{index}``."""
    own = valid(item.get(FIELD)) if isinstance(item, dict) else None
    return own or f"{batch_id}-{index}"


def duplicate_ids(items: Any) -> list[str]:
    """The item ids a batch names more than once (its items' own valid ``request_id``)."""
    if not isinstance(items, list):
        return []
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for item in items:
        own = valid(item.get(FIELD)) if isinstance(item, dict) else None
        if own is None:
            continue
        if own in seen:
            repeated[own] = None
        seen.add(own)
    return list(repeated)
