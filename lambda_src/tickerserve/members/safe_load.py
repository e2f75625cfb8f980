"""Crash-isolated loading: a native library sees an artifact in this process only after a
forked child loaded (and exercised) the same bytes and survived.

A model file whose sha256 matches its metadata can still be one its library cannot parse
(truncated, garbled leaf values, ``num_leaves=abc``): LightGBM then aborts the whole process
from C++ (SIGABRT), where no ``try`` can catch it, and some shapes only crash on the first
prediction (SIGSEGV). So ``safe_load`` first runs ``loader(data)`` and ``check(result)`` in a
forked child (``os.fork``: the child shares the parent's imported libraries and the bytes
copy-on-write, so no interpreter start-up and no copy), and loads in-process only when the
child exited cleanly. A child that died, raised or hung becomes ``InvalidModel`` naming the
artifact and the library's last words; the caller's process keeps serving everything else.

The verdict is cached per (loader, check, sha256 of the bytes), so each artifact pays for one
probe per process. Any member kind uses the same function with its own loader and check.

Forking a process that runs threads is safe here because the child touches nothing another
thread may hold: it gets fresh stdout/stderr objects, runs the loader single-threaded and
leaves with ``os._exit`` (no atexit handlers, no flushing of inherited buffers). Single-
threaded matters: GNU OpenMP's thread pool does not survive a fork, so a child that opens a
parallel region with more than one thread hangs whenever the parent had a team running. Every
loaded GNU OpenMP runtime is set to one thread in the child; a library that keeps a thread
count of its own (LightGBM remembers the last ``num_threads`` it was given) must be held to
one thread by ``child_setup``. A probe that times out is remembered for ten minutes only.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import hashlib
import io
import logging
import math
import os
import select
import signal
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import NoReturn, TypeVar

from tickerserve.errors import InvalidModel

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A probe that takes longer is treated as a failed load; below the 29 s function timeout.
PROBE_TIMEOUT = 20.0
VERDICTS = 4096  # cached verdicts (a few hundred bytes each)
TIMEOUT_VERDICT_SECONDS = 600.0
_OUTPUT_TAIL = 8192  # bytes of the child's stdout/stderr kept for the error message
_CHILD_RAISED = 3
_LOADER_RAISED = 4
_TIMED_OUT = "loading did not finish within"

# Python 3.12+ warns about fork() in a threaded process; the child above avoids what that
# warning is about (locks held by other threads), so this one call site is exempt.
warnings.filterwarnings(
    "ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning
)

# (loader, check, sha256) -> (why it failed or None, until when the verdict holds)
_verdicts: OrderedDict[tuple[object, object, str], tuple[str | None, float]] = OrderedDict()
_verdicts_lock = threading.Lock()


def safe_load(
    loader: Callable[[bytes], T],
    data: bytes,
    *,
    what: str,
    check: Callable[[T], object] | None = None,
    child_setup: Callable[[], object] | None = None,
    timeout: float | None = None,
) -> T:
    """``loader(data)`` in this process, once a forked child survived ``loader(data)`` and
    ``check(result)``; otherwise ``InvalidModel`` naming ``what`` (nothing loaded here).

    A loader that raises in the child is run here too, so its exception reaches the caller
    as it would without the probe; a check that raises is an ``InvalidModel``.

    ``child_setup`` runs first in the child: a library that keeps its own thread count (as
    LightGBM does) must be held to one thread there, see the module docstring. Pass
    module-level functions: the verdict is cached by the loader and check objects and the
    sha256 of ``data``.
    """
    probe(loader, data, what=what, check=check, child_setup=child_setup, timeout=timeout)
    return loader(data)


def probe(
    loader: Callable[[bytes], T],
    data: bytes,
    *,
    what: str,
    check: Callable[[T], object] | None = None,
    child_setup: Callable[[], object] | None = None,
    timeout: float | None = None,
) -> None:
    """Raise ``InvalidModel`` unless ``loader(data)`` (then ``check``) survives in a child."""
    timeout = PROBE_TIMEOUT if timeout is None else timeout
    key = (loader, check, hashlib.sha256(data).hexdigest())
    now = time.monotonic()
    with _verdicts_lock:
        verdict = _verdicts.get(key)
        if verdict is not None:
            _verdicts.move_to_end(key)
    if verdict is not None and verdict[1] > now:
        failure = verdict[0]
    else:

        def work() -> None:
            if child_setup is not None:
                child_setup()
            try:
                result = loader(data)
            except Exception:
                # Not a crash: the loader refuses these bytes the ordinary way, and will
                # again in this process, with its own exception for the caller to handle.
                os._exit(_LOADER_RAISED)
            if check is not None:
                check(result)

        failure = run_isolated(work, timeout=timeout)
        # A timeout may be a slow moment rather than a bad file: it is believed for a while
        # (every attempt costs the whole timeout), then probed again.
        timed_out = failure is not None and failure.startswith(_TIMED_OUT)
        expires = now + TIMEOUT_VERDICT_SECONDS if timed_out else math.inf
        with _verdicts_lock:
            _verdicts[key] = (failure, expires)
            while len(_verdicts) > VERDICTS:
                _verdicts.popitem(last=False)
    if failure is not None:
        raise InvalidModel(f"{what} cannot be loaded: {failure}")


def run_isolated(work: Callable[[], object], *, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Run ``work()`` in a forked child. None if it returned (or left with ``os._exit(4)``);
    else why not (a signal, an exception, a timeout), with the last line the child printed."""
    if not hasattr(os, "fork"):  # pragma: no cover - Windows: no fork, no isolation
        logger.warning("no os.fork on this platform: loading without a crash probe")
        try:
            work()
        except Exception as exc:
            return _describe_exception(exc)
        return None
    read_end, write_end = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _child(work, read_end, write_end)
    os.close(write_end)
    try:
        output, finished = _collect(read_end, started + timeout)
    finally:
        os.close(read_end)
    if not finished:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    logger.debug("probe child %d took %.1f ms", pid, (time.monotonic() - started) * 1000)
    if not finished:
        return f"{_TIMED_OUT} {timeout:g} s"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"the loader crashed ({_signal_name(number)}){_last_words(output)}"
    code = os.WEXITSTATUS(status)
    if code in (0, _LOADER_RAISED):
        return None
    if code == _CHILD_RAISED:
        return _last_line(output) or "the loader raised an error"
    return f"the loader exited with status {code}{_last_words(output)}"


def _child(work: Callable[[], object], read_end: int, write_end: int) -> NoReturn:
    """Run ``work`` with stdout and stderr going to the pipe; exit without cleanup."""
    code = 1
    try:
        os.close(read_end)
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        # Fresh objects with fresh locks: another thread may have held the old ones at fork.
        sys.stdout = sys.stderr = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), write_through=True
        )
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        faulthandler.disable()  # a crash is the expected outcome here, not news for the logs
        _one_openmp_thread()
        try:
            work()
            code = 0
        except BaseException as exc:
            os.write(1, f"\n{_describe_exception(exc)}\n".encode())
            code = _CHILD_RAISED
    finally:
        os._exit(code)


def _one_openmp_thread() -> None:
    """Limit every loaded GNU OpenMP runtime (wheels may bundle their own copy) to one thread."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line and "/" in line}
    except OSError:
        return
    for path in paths:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(path).omp_set_num_threads(1)


def _collect(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Read the child's output until it closes the pipe (True) or the deadline (False)."""
    tail = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return tail, False
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return tail, True
        tail = (tail + chunk)[-_OUTPUT_TAIL:]


def _describe_exception(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(output: bytes) -> str:
    lines = [ln.strip() for ln in output.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _last_words(output: bytes) -> str:
    """The most telling line the library printed: its last fatal or error message."""
    lines = [ln.strip() for ln in output.decode("utf-8", "replace").splitlines() if ln.strip()]
    telling = [ln for ln in lines if "fatal" in ln.lower() or "error" in ln.lower()]
    chosen = (telling or lines)[-1:] if lines else []
    return f": {chosen[0][:300]}" if chosen else ""


def clear_verdicts() -> None:
    """Forget every cached verdict (tests; a process never needs to)."""
    with _verdicts_lock:
        _verdicts.clear()
