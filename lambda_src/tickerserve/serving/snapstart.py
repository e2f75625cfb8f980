"""SnapStart runtime hooks: what happens before Lambda snapshots an initialized sandbox and
after it restores one (``snapshot_restore_py``, part of the Python 3.12+ managed runtimes).

A snapshot freezes memory and /tmp after init; restores may come hours later, in many
sandboxes at once. So before the snapshot the named models are loaded, the S3 client's
first call is paid for and what the handler names is built (its APIs' Powertools
resolvers); after a restore the registry is read again, the S3 client is new (fresh
credentials and connections) and random generators are reseeded, or every sandbox restored
from one snapshot would draw the same numbers.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any

from tickerserve.serving.service import ModelService

Register = Callable[..., Any]

try:
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:  # not a SnapStart runtime (local server, tests): nothing to register with
    _hooks: tuple[Register, Register] | None = None
else:
    _hooks = (register_before_snapshot, register_after_restore)


def before_snapshot(service: ModelService, *prepare: Callable[[], object]) -> None:
    """Run by Lambda once init is done, just before it takes the snapshot: the service's
    models and S3 client, then whatever else the handler wants the snapshot to hold."""
    service.prepare_snapshot()
    for step in prepare:
        step()


def after_restore(service: ModelService) -> None:
    """Run by Lambda in each sandbox restored from the snapshot, before its first request."""
    reseed()
    service.after_restore()


def reseed() -> None:
    """New seeds from the OS for the generators a snapshot would otherwise clone."""
    random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:  # only if something imported it: never import it here
        numpy_random.seed()


def register(service: ModelService, *prepare: Callable[[], object]) -> bool:
    """Register both hooks with the runtime (``prepare``: more to build before the snapshot);
    False where the runtime has no SnapStart."""
    if _hooks is None:
        return False
    on_snapshot, on_restore = _hooks
    on_snapshot(before_snapshot, service, *prepare)
    on_restore(after_restore, service)
    return True
