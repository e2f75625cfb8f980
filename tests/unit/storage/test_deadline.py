"""Overall deadlines for blocking calls (the mechanism behind every S3 call's deadline)."""

from __future__ import annotations

import threading

import pytest

from tickerserve.errors import StorageUnavailable
from tickerserve.storage.deadline import Deadline, call_with_deadline, function_time


def test_a_call_that_finishes_in_time_returns_its_value():
    assert call_with_deadline(lambda _: 42, 5.0, what="answer") == 42


def test_a_call_that_raises_passes_its_exception_through():
    def fail(_: Deadline) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        call_with_deadline(fail, 5.0, what="failure")


def test_a_call_past_its_deadline_is_abandoned_with_a_retry_hint():
    # Given a call that never finishes on its own
    release = threading.Event()
    seen: list[Deadline] = []

    def hang(deadline: Deadline) -> None:
        seen.append(deadline)
        release.wait()

    # When its caller waits on it, Then the caller gets a 503 with Retry-After
    with pytest.raises(StorageUnavailable) as caught:
        call_with_deadline(hang, 0.2, what="GET key", retry_after=7)
    assert caught.value.retry_after == 7
    assert "GET key" in caught.value.message
    # And the worker is told it was abandoned, so it can stop early
    assert seen[0].expired
    release.set()


def test_a_transfer_may_extend_its_own_deadline_by_its_size():
    # Given a call with a 0.2 s base that learns it moves 1 MB at no less than 1 MB/s
    def slow_but_moving(deadline: Deadline) -> str:
        deadline.allow_transfer(1_000_000)
        threading.Event().wait(0.5)  # longer than the base, well within base + 1 s
        return "done"

    # Then it is not cut off at the base deadline
    assert call_with_deadline(slow_but_moving, 0.2, what="GET big", min_rate=1_000_000) == "done"


def test_inside_function_time_no_deadline_reaches_past_the_function_s_end():
    # Given an invocation with 1.5 s left (a 1 s margin: calls must end within 0.5 s)
    release = threading.Event()
    seen: list[Deadline] = []

    def transfer(deadline: Deadline) -> None:
        seen.append(deadline)
        deadline.allow_transfer(10**12)  # a server that claims a terabyte
        release.wait()

    # When a call with a 5 s allowance moves "a terabyte", Then it ends by the function's end
    with function_time(1.5, margin=1.0), pytest.raises(StorageUnavailable) as caught:
        call_with_deadline(transfer, 5.0, what="GET big", min_rate=20 * 1024 * 1024)
    assert "the function's remaining time" in caught.value.message
    assert seen[0].seconds <= 0.5
    release.set()


def test_with_no_time_left_a_call_is_refused_without_starting():
    started: list[bool] = []
    with function_time(0.5, margin=1.0), pytest.raises(StorageUnavailable) as caught:
        call_with_deadline(lambda _: started.append(True), 5.0, what="GET key")
    assert "no time left for GET key" in caught.value.message
    assert started == []


def test_function_time_ends_with_its_block():
    with function_time(1.5, margin=1.0):
        pass
    assert call_with_deadline(lambda d: round(d.seconds), 5.0, what="after") == 5


def test_function_time_restores_the_outer_limit_after_an_inner_block_and_an_error():
    # Given an invocation with 10 s left (calls end within 9 s)
    with function_time(10.0, margin=1.0):
        # When an inner block with 2 s left raises
        inner: list[int] = []

        def fails_inside() -> None:
            with function_time(2.0, margin=1.0):
                inner.append(call_with_deadline(lambda d: round(d.seconds), 5.0, what="inner"))
                raise RuntimeError("the block failed")

        with pytest.raises(RuntimeError, match="the block failed"):
            fails_inside()
        assert inner == [1]
        # Then the outer limit holds again, and none after the outer block
        assert call_with_deadline(lambda d: round(d.seconds), 30.0, what="outer") == 9
    assert call_with_deadline(lambda d: round(d.seconds), 30.0, what="after") == 30
