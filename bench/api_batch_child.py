"""One fresh process of section 2b: a 1,000-item batch through ``Api.handle`` beside LightGBM's
own ``Booster.predict`` on the same rows (started by ``bench/api_batch.py``).

    python -m bench.api_batch_child SPEC.json RESULT.json

SPEC holds the ``POST /predict/batch`` event, the same rows as an aligned matrix, the model's
text file and the number of rounds. The parent's environment names the store (the moto
bucket) and, for the one-vCPU run, ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769`` with
``OMP_NUM_THREADS=1`` (tickerserve's vCPU count is 1: LightGBM predicts the batch on one
thread, and so does the baseline). ``Api.handle`` answers the event (its JSON parsed, every
item validated, routed and aligned, one LightGBM call, the answer serialized) once to load
the model; the answers are compared with the baseline's; then ``ROUNDS`` rounds, either side
first in turn: wall and process CPU time per call, medians.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any


def main() -> None:
    import warnings

    import lightgbm
    import numpy as np

    from bench.common import median
    from tickerserve.http.api import Api
    from tickerserve.members.row_split import vcpus
    from tickerserve.serving.service import ModelService
    from tickerserve.settings import Settings

    warnings.filterwarnings("ignore")
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    event, rounds = spec["event"], spec["rounds"]
    matrix = np.asarray(spec["matrix"], dtype=np.float64)
    with open(spec["model_file"]) as handle:
        booster = lightgbm.Booster(model_str=handle.read())
    one = vcpus() == 1
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # Powertools logs
    api = Api(ModelService(Settings.from_env()))
    first = api.handle(event, None)
    body = json.loads(first["body"])
    if first["statusCode"] != 200 or body["failed"]:
        raise SystemExit(f"the batch failed: {first['body'][:300]}")
    # LightGBM's own call: one thread on one vCPU, else its default (every CPU, OpenMP).
    extra: dict[str, Any] = {"num_threads": 1} if one else {}
    theirs = booster.predict(matrix, **extra)
    classes = spec["classes"]
    ours = np.array([[r["probabilities"][c] for c in classes] for r in body["results"]])
    calls: dict[str, Callable[[], object]] = {
        "ts": lambda: api.handle(event, None),
        "lightgbm": lambda: booster.predict(matrix, **extra),
    }
    for fn in calls.values():  # warm-up: caches, OpenMP teams, the row-split threads
        fn()
    wall: dict[str, list[int]] = {name: [] for name in calls}
    cpu: dict[str, list[int]] = {name: [] for name in calls}
    for round_ in range(rounds):
        order = list(calls.items())
        for name, fn in order if round_ % 2 else order[::-1]:  # either side first in turn
            w0, c0 = time.perf_counter_ns(), time.process_time_ns()
            fn()
            cpu[name].append(time.process_time_ns() - c0)
            wall[name].append(time.perf_counter_ns() - w0)
    result = {
        "vcpus": vcpus(),
        "items": len(body["results"]),
        "diff": float(np.max(np.abs(ours - theirs))),
        **{f"{name}_wall": median(wall[name]) for name in calls},
        **{f"{name}_cpu": median(cpu[name]) for name in calls},
    }
    with open(sys.argv[2], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
