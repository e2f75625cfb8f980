"""One fresh process of section 2's ``Api.handle`` batch (started by ``bench/main.py``).

    python -m bench.api_batch_child EVENT.json RESULT.json ROUNDS

The parent's environment names the store (the moto bucket) and, for the one-vCPU run,
``AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769`` (tickerserve's vCPU count: LightGBM predicts the
batch on one thread). ``Api.handle`` answers the ``POST /predict/batch`` event (its JSON
parsed, every item validated, routed and aligned, one LightGBM call per model, the answer
serialized) once to load the models, then ``ROUNDS`` times: wall and process CPU time.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    import warnings

    from bench.common import median
    from tickerserve.http.api import Api
    from tickerserve.members.row_split import vcpus
    from tickerserve.serving.service import ModelService
    from tickerserve.settings import Settings

    warnings.filterwarnings("ignore")
    with open(sys.argv[1]) as handle:
        event = json.load(handle)
    rounds = int(sys.argv[3])
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # Powertools logs
    api = Api(ModelService(Settings.from_env()))
    first = api.handle(event, None)
    body = json.loads(first["body"])
    if first["statusCode"] != 200 or body["failed"]:
        raise SystemExit(f"the batch failed: {first['body'][:300]}")
    wall: list[int] = []
    cpu: list[int] = []
    for _ in range(rounds):
        w0, c0 = time.perf_counter_ns(), time.process_time_ns()
        api.handle(event, None)
        cpu.append(time.process_time_ns() - c0)
        wall.append(time.perf_counter_ns() - w0)
    result = {
        "vcpus": vcpus(),
        "wall": median(wall),
        "cpu": median(cpu),
        "items": len(body["results"]),
    }
    with open(sys.argv[2], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
