"""The monitor's secret salt: what request ids are hashed with before they are joined or
sampled, so no caller can choose ids that stay in a sample or collide with others.

Stored with the store (``metadata/monitor_salt.json``, 32 random bytes as hex), written once
by the first run that finds none (create-only: racing runs agree on the winner's) and read by
every later run, so the same data gives the same figures run after run. A store the run may
not write to, or a salt file that is not one, gives this run a salt of its own (its figures
are as good; only a sample past the capacity would differ from another run's), with a warning.
"""

from __future__ import annotations

import json
import logging
import secrets

from tickerserve.errors import TickerserveError
from tickerserve.layout import MONITOR_SALT_KEY
from tickerserve.storage.store import KeyNotFound, PreconditionFailed, Store

logger = logging.getLogger(__name__)

SALT_BYTES = 32
ABOUT = "tickerserve monitor: keys request ids before joining and sampling; keep it secret"


def _parse(data: bytes) -> bytes:
    raw = json.loads(data)
    salt = bytes.fromhex(raw["salt"])
    if len(salt) < 16:
        raise ValueError("a salt needs at least 16 bytes")
    return salt


def load_salt(store: Store) -> bytes:
    """The store's salt, created on first use; a salt for this run alone when the store
    cannot give one (logged)."""
    for _ in range(2):
        try:
            blob = store.get(MONITOR_SALT_KEY)
            assert blob is not None
            return _parse(blob.data)
        except KeyNotFound:
            salt = secrets.token_bytes(SALT_BYTES)
            body = json.dumps({"salt": salt.hex(), "about": ABOUT}).encode()
            try:
                store.put(MONITOR_SALT_KEY, body, create_only=True, content_type="application/json")
                return salt
            except PreconditionFailed:
                continue  # another run wrote one first: read it
            except TickerserveError as exc:
                logger.warning("cannot store the monitor's salt (%s): this run uses its own", exc)
                return salt
        except (TickerserveError, ValueError, KeyError, TypeError) as exc:
            message = exc.message if isinstance(exc, TickerserveError) else str(exc)
            logger.warning("the monitor's salt is unusable (%s): this run uses its own", message)
            return secrets.token_bytes(SALT_BYTES)
    return secrets.token_bytes(SALT_BYTES)
