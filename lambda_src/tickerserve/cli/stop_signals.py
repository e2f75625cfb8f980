"""Ctrl-C (SIGINT) and SIGTERM both stop a long-running command the same way: as a
``KeyboardInterrupt`` where the process is, so its ``finally`` blocks run (capture is flushed,
children are stopped).

Python raises ``KeyboardInterrupt`` on SIGINT only when the process did not start with SIGINT
ignored; a shell script's background job (``tickerserve serve &``) and some supervisors start
it ignored, and ``kill -INT`` would then do nothing. These handlers are installed whatever the
inherited disposition, and the previous ones are put back afterwards.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM raise ``KeyboardInterrupt`` in it."""
    previous: dict[int, Any] = {s: signal.signal(s, _interrupt) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def signals_ignored() -> Iterator[None]:
    """While the block runs (a last flush, stopping children), a second Ctrl-C or SIGTERM
    cannot cut it short and leave half-written data or an orphan behind."""
    previous: dict[int, Any] = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
