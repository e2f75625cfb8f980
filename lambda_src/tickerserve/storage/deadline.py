"""Overall deadlines for blocking calls (every S3 request goes through one).

botocore's connect and read timeouts bound each socket operation, not a call: a server that
answers one byte every half second never trips a 10 s read timeout, and retries multiply the
rest. So the call runs on a worker thread and the caller waits for it at most until the
deadline, then gives up with ``StorageUnavailable`` (HTTP 503 with ``Retry-After``). The worker
is a daemon thread: an abandoned call finishes (or fails on its own socket timeout) in the
background and can never keep a process from exiting.

A call that learns it has more bytes to move (an object's ``Content-Length``) may extend its
own deadline by what those bytes need at the slowest acceptable rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tickerserve.errors import StorageUnavailable

T = TypeVar("T")


class Deadline:
    """When a call must be done. Shared by the waiting caller and the working thread."""

    def __init__(self, seconds: float, *, min_rate: float | None = None) -> None:
        self.seconds = seconds
        self.min_rate = min_rate  # bytes per second a transfer may not fall below
        self.expires = time.monotonic() + seconds
        self.expired = False  # set by the caller when it gave up; the worker may stop early

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def allow_transfer(self, size: int) -> None:
        """Extend the deadline by the time ``size`` bytes take at ``min_rate``."""
        if self.min_rate and size > 0:
            extra = size / self.min_rate
            self.seconds += extra
            self.expires += extra


def call_with_deadline(
    work: Callable[[Deadline], T],
    seconds: float,
    *,
    what: str,
    min_rate: float | None = None,
    retry_after: float | None = None,
) -> T:
    """``work(deadline)``'s result, or ``StorageUnavailable`` once the deadline has passed.

    Exceptions raised by ``work`` reach the caller unchanged.
    """
    deadline = Deadline(seconds, min_rate=min_rate)
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
            raise StorageUnavailable(
                f"storage did not answer {what} within {deadline.seconds:.1f} s",
                retry_after=retry_after if retry_after is not None else seconds,
            )
    ok, value = outcome[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]
