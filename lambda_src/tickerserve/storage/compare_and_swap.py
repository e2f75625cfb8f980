"""Compare-and-swap on one object: the single retry loop behind every registry, history and
index write.

Read with the ETag, compute the new bytes, write with ``If-Match`` (``If-None-Match: *`` when
the object does not exist yet); when another writer won (412/409), start again from a fresh
read after a jittered pause, so two writers that collided do not collide again in lock step.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from tickerserve.storage.store import KeyNotFound, PreconditionFailed, Store

logger = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 20


def compare_and_swap(
    store: Store,
    key: str,
    change: Callable[[bytes | None], tuple[bytes, T]],
    *,
    content_type: str = "application/json",
    attempts: int = ATTEMPTS,
) -> T:
    """Replace the object at ``key`` with ``change(current)``'s bytes and return its value.

    ``current`` is None when the object does not exist. ``change`` runs again on every retry
    and may raise to abort; nothing is written then.
    """
    for attempt in range(attempts):
        try:
            blob = store.get(key)
            assert blob is not None  # an unconditional GET always returns content
            current, etag = blob.data, blob.etag
        except KeyNotFound:
            current, etag = None, None
        data, result = change(current)
        try:
            store.put(key, data, if_match=etag, create_only=etag is None, content_type=content_type)
            return result
        except PreconditionFailed:
            logger.info("%s changed concurrently; retrying (attempt %d)", key, attempt + 1)
            time.sleep(random.uniform(0.0, min(0.02 * (attempt + 1), 0.3)))
    raise PreconditionFailed(f"update of {key} lost {attempts} races in a row; try again")
