"""Ctrl-C and SIGTERM stop a long-running command whatever the signal dispositions it
inherited (a script's background job starts with SIGINT ignored)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from tickerserve.cli.stop_signals import STOP_SIGNALS, signals_ignored, stopped_by_signals


@pytest.fixture
def inherited_ignored() -> Iterator[None]:
    """This process as a background job starts: SIGINT and SIGTERM ignored."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def signalled(signum: int) -> bool:
    """Send ``signum`` to this process; whether it interrupted the caller (a handler that
    raises ends the sleep at once)."""
    try:
        os.kill(os.getpid(), signum)
        time.sleep(0.5)
    except KeyboardInterrupt:
        return True
    return False


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=["sigint", "sigterm"])
def test_either_signal_interrupts_the_block_even_when_inherited_ignored(
    inherited_ignored: None, signum: int
):
    # Given a block run under stopped_by_signals in a process that started with both ignored
    with stopped_by_signals():
        # When the signal arrives; Then the block is interrupted
        assert signalled(signum)
    # ... and afterwards the inherited disposition is back
    assert signal.getsignal(signum) is signal.SIG_IGN


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=["sigint", "sigterm"])
def test_a_signal_during_the_last_flush_does_not_cut_it_short(signum: int):
    with stopped_by_signals():
        # Given the stopping work running under signals_ignored
        with signals_ignored():
            # When a second Ctrl-C or SIGTERM arrives meanwhile; Then it does not interrupt
            assert not signalled(signum)
        # ... and afterwards the signal stops things again
        assert signalled(signum)
