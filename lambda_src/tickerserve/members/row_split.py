"""A batch's rows split across the function's vCPUs, one part per thread.

Lambda gives a function CPU in proportion to its memory setting: one vCPU's worth at 1,769
MB, up to six at 10,240 MB (``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``); the processor affinity
mask may show more CPUs than that share pays for, so the smaller of the two counts.

Rows, never trees: each row is still computed by one thread, whole, in the same order, so
the answer is the same bit for bit whatever the thread count (splitting a row's trees
between threads would add partial sums in another order). The engines release the GIL
(onnxruntime, libxgboost and LightGBM through ctypes), so the parts run at the same time.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MB_PER_VCPU = 1769  # Lambda: one full vCPU at this memory size
MIN_ROWS_PER_THREAD = 128  # below, a thread's start-up costs more than its share saves
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@functools.cache
def vcpus() -> int:
    """CPUs this process may use: the affinity mask, capped by the Lambda memory setting."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        available = os.cpu_count() or 1
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if memory.isdigit():
        available = min(available, max(1, round(int(memory) / MB_PER_VCPU)))
    return max(1, available)


def threads_for(n_rows: int, min_rows: int | None = None) -> int:
    """Threads a batch of ``n_rows`` is split over: one per ``min_rows`` rows (default
    ``MIN_ROWS_PER_THREAD``), at most the vCPUs, 1 for small batches."""
    per_thread = MIN_ROWS_PER_THREAD if min_rows is None else min_rows
    return max(1, min(vcpus(), n_rows // per_thread))


def split_rows(predict: Callable[[np.ndarray], np.ndarray], rows: np.ndarray) -> np.ndarray:
    """``predict(rows)``, the rows cut into contiguous parts computed on parallel threads
    (the calling thread takes the first part), the outputs stacked back in order."""
    parts = threads_for(len(rows))
    if parts == 1:
        return predict(rows)
    bounds = np.linspace(0, len(rows), parts + 1).astype(int)
    pieces = [rows[a:b] for a, b in itertools.pairwise(bounds)]
    futures = [_executor().submit(predict, piece) for piece in pieces[1:]]
    first = predict(pieces[0])
    return np.concatenate([first, *(f.result() for f in futures)])


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, vcpus() - 1), thread_name_prefix="rows")
        return _pool
