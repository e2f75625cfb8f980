"""Batches follow the function's vCPUs: the Lambda memory setting caps the CPUs the process
sees, small batches stay on one thread, and a split batch comes back whole and in order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tickerserve.members import row_split


@pytest.fixture(autouse=True)
def _fresh_count():
    row_split.vcpus.cache_clear()
    yield
    row_split.vcpus.cache_clear()


@pytest.mark.parametrize(("memory", "expected"), [("1024", 1), ("1769", 1), ("3538", 2),
                                                  ("10240", 6)])  # fmt: skip
def test_the_memory_setting_caps_the_threads(memory, expected, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory)
    monkeypatch.setattr(row_split.os, "sched_getaffinity", lambda _: set(range(16)))
    assert row_split.vcpus() == expected


def test_outside_lambda_the_affinity_mask_decides(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", raising=False)
    monkeypatch.setattr(row_split.os, "sched_getaffinity", lambda _: {0, 3, 5})
    assert row_split.vcpus() == 3


def test_a_split_batch_comes_back_whole_and_in_order(monkeypatch):
    monkeypatch.setattr(row_split, "vcpus", lambda: 3)
    seen: set[int] = set()

    def predict(part: np.ndarray) -> np.ndarray:
        seen.add(threading.get_ident())
        return part * 2

    rows = np.arange(1000, dtype=np.float64).reshape(-1, 1)
    assert row_split.threads_for(len(rows)) == 3
    np.testing.assert_array_equal(row_split.split_rows(predict, rows), rows * 2)
    assert len(seen) >= 2  # the calling thread and the workers
    seen.clear()
    few = rows[: row_split.MIN_ROWS_PER_THREAD]
    np.testing.assert_array_equal(row_split.split_rows(predict, few), few * 2)
    assert seen == {threading.get_ident()}  # small batches stay on the calling thread
