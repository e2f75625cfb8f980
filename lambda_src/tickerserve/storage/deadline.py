"""Overall deadlines for blocking calls (every S3 request goes through one).

botocore's connect and read timeouts bound each socket operation, not a call: a server that
answers one byte every half second never trips a 10 s read timeout, and retries multiply the
rest. So the call runs on a worker thread and the caller waits for it at most until the
deadline, then gives up with ``StorageUnavailable`` (HTTP 503 with ``Retry-After``). The worker
is a daemon thread: an abandoned call finishes (or fails on its own socket timeout) in the
background and can never keep a process from exiting.

A call that learns it has more bytes to move may extend its own deadline by what those bytes
need at the slowest acceptable rate; the caller decides how many bytes it believes (the size
recorded for an artifact, never a server's ``Content-Length`` alone). No extension and no
deadline ever reaches past the function's own end: inside ``function_time``, every deadline
ends ``margin`` seconds before the invocation's time is up, so the function can still answer
a 503 of its own instead of being killed by Lambda's timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tickerserve.errors import StorageUnavailable

T = TypeVar("T")

# What an invocation keeps for itself after its last store call: answering the 503, flushing
# metrics and logs.
FUNCTION_MARGIN = 1.0

# The monotonic time by which every store call must have ended, while an invocation runs.
# Process-wide, not per thread: Lambda runs one invocation at a time in a sandbox, and the
# artifact downloads and the registry re-check run on threads of their own.
_function_ends: float | None = None


class function_time:  # noqa: N801 - a context manager, named and used as the function it was
    """Within the block, no deadline reaches past ``remaining - margin`` seconds from now
    (``remaining``: the invocation's time left; None: no limit, e.g. a local server).

    A class rather than a ``contextlib.contextmanager`` generator: every invocation enters
    one, and the generator's frames cost about a microsecond of each warm request."""

    __slots__ = ("_before", "_ends")

    def __init__(self, remaining: float | None, *, margin: float = FUNCTION_MARGIN) -> None:
        self._ends = None if remaining is None else remaining - margin
        self._before: float | None = None

    def __enter__(self) -> None:
        global _function_ends
        self._before = _function_ends
        if self._ends is not None:
            _function_ends = time.monotonic() + self._ends

    def __exit__(self, *exc: object) -> None:
        global _function_ends
        _function_ends = self._before


class Deadline:
    """When a call must be done. Shared by the waiting caller and the working thread."""

    def __init__(self, seconds: float, *, min_rate: float | None = None) -> None:
        self.min_rate = min_rate  # bytes per second a transfer may not fall below
        self.started = time.monotonic()
        self.ends_by = _function_ends  # the function's own end (less its margin), if any
        self.expires = self._capped(self.started + seconds)
        self.expired = False  # set by the caller when it gave up; the worker may stop early

    @property
    def seconds(self) -> float:
        return self.expires - self.started

    @property
    def cut_by_function(self) -> bool:
        """Whether the function's remaining time, not the call's own allowance, ends it."""
        return self.ends_by is not None and self.expires >= self.ends_by

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def allow_transfer(self, size: int) -> None:
        """Extend the deadline by the time ``size`` bytes take at ``min_rate`` (never past
        the function's end). The caller passes the size it can vouch for."""
        if self.min_rate and size > 0:
            self.expires = self._capped(self.expires + size / self.min_rate)

    def _capped(self, moment: float) -> float:
        return moment if self.ends_by is None else min(moment, self.ends_by)


def call_with_deadline(
    work: Callable[[Deadline], T],
    seconds: float,
    *,
    what: str,
    min_rate: float | None = None,
    retry_after: float | None = None,
) -> T:
    """``work(deadline)``'s result, or ``StorageUnavailable`` once the deadline has passed
    (at once when the function has no time left for it).

    Exceptions raised by ``work`` reach the caller unchanged.
    """
    deadline = Deadline(seconds, min_rate=min_rate)
    if deadline.remaining() <= 0:
        raise StorageUnavailable(
            f"no time left for {what}: the function's remaining time is spent",
            retry_after=retry_after if retry_after is not None else 1.0,
        )
    done = threading.Event()
    outcome: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            outcome.append((True, work(deadline)))
        except BaseException as exc:  # handed to the caller, who re-raises it
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=run, name=f"deadline: {what}"[:60], daemon=True).start()
    # The worker may move the deadline (allow_transfer), so wait in steps until it holds.
    while not done.wait(max(deadline.remaining(), 0.0)):
        if deadline.remaining() <= 0:
            deadline.expired = True
            why = " (the function's remaining time)" if deadline.cut_by_function else ""
            raise StorageUnavailable(
                f"storage did not answer {what} within {deadline.seconds:.1f} s{why}",
                retry_after=retry_after if retry_after is not None else seconds,
            )
    ok, value = outcome[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]
