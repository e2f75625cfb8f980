"""One fresh process of the families' batch benchmark (started by ``bench/families.py``).

    python -m bench.batch_child SPEC.json RESULT.json

One family at one size per process, and each case twice: once with tickerserve's model
loaded first, once with the seed's (``spec["ts_first"]``). Where a model's trees land in
the heap depends on what the process freed before it: the first model loaded into a heap
with holes in it (another case's freed objects, or the imports' and the bundle's own
garbage) takes them, its trees scattered among live objects, and walks them 2-9% slower
than the one loaded next into fresh memory, whichever library it is (LightGBM at 500 trees
after another case: tickerserve's 0.91-0.98x the seed's loaded first, 1.04-1.07x loaded
second). So no case follows another in a process, and each side is loaded first in one of
its two processes; the parent pools both processes' samples.

The parent sets the process's CPUs as Lambda would: ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769``
(one vCPU's worth: tickerserve splits no batch) with ``OMP_NUM_THREADS=1`` (nor may the
originals' OpenMP), or neither (every usable CPU). tickerserve's ``LoadedModel.predict`` on
a 1,000-row batch and the seed's own predict code on the unpickled artifact, run with the
same number of threads (the originals' ``n_jobs`` set to all CPUs in the second mode, as
XGBoost and LightGBM default to), in alternating order; every call's wall-clock time and
the process's CPU time (on one vCPU the work of both sides is one thread's, and CPU time is
what a busy shared machine disturbs least).
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any


def _all_threads(artifact: Any) -> None:
    """Let every estimator in the artifact use all CPUs (``n_jobs=-1``) where it can."""
    if isinstance(artifact, dict):
        for value in artifact.values():
            _all_threads(value)
        return
    params = getattr(artifact, "get_params", None)
    if callable(params) and "n_jobs" in params():
        artifact.set_params(n_jobs=-1)


def main() -> None:
    import warnings

    import joblib
    import numpy as np

    from bench.families import seed_predict
    from tickerserve.members import row_split
    from tickerserve.serving.model import LoadedModel
    from tickerserve.storage.bundle import read_bundle
    from tickerserve.storage.store import LocalStore

    warnings.filterwarnings("ignore")
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    case = spec["case"]
    batch = np.asarray(spec["batch"], dtype=np.float64)

    def load_ts() -> LoadedModel:
        bundle = read_bundle(LocalStore(spec["store"]), case["model"], case["version"])
        return LoadedModel(bundle.metadata, bundle.files)

    if spec["ts_first"]:
        model = load_ts()
        artifact = joblib.load(case["artifact"])
    else:
        artifact = joblib.load(case["artifact"])
        model = load_ts()
    if spec["all_threads"]:
        _all_threads(artifact)
    family = case["family"]
    mine = np.asarray(model.predict(batch).outputs, dtype=np.float64).reshape(-1)
    theirs = np.asarray(seed_predict(family, artifact, batch), dtype=np.float64).reshape(-1)
    wall: dict[str, list[int]] = {"ts": [], "seed": []}
    cpu: dict[str, list[int]] = {"ts": [], "seed": []}
    calls: dict[str, Callable[[], object]] = {
        "ts": functools.partial(model.predict, batch),
        "seed": functools.partial(seed_predict, family, artifact, batch),
    }
    for fn in calls.values():  # warm-up: caches, thread pools, OpenMP teams
        fn()
        fn()
    for round_ in range(spec["rounds"]):
        order = list(calls.items())
        for name, fn in order if round_ % 2 else order[::-1]:  # either side first in turn
            start, cpu_start = time.perf_counter_ns(), time.process_time_ns()
            fn()
            cpu[name].append(time.process_time_ns() - cpu_start)
            wall[name].append(time.perf_counter_ns() - start)
    out = {
        "vcpus": row_split.vcpus(),
        "wall": wall,
        "cpu": cpu,
        "diff": float(np.max(np.abs(mine - theirs))),
        "engines": [getattr(m, "engine_name", m.kind) for m in model.members],
    }
    with open(sys.argv[2], "w") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main()
