"""One fresh process of the cold-start and memory benchmarks (started by ``bench/run.py``).

    python -m bench.child {tickerserve|baseline} {cold|rss} SPEC.json RESULT.json

For ``tickerserve`` scikit-learn is blocked before anything is imported, as in the Lambda
layer (which does not ship it; ``import lightgbm`` would otherwise import it). Timestamps are
CLOCK_MONOTONIC nanoseconds, comparable with the parent's. Only the standard library is
imported outside the timed sections; handler output goes to /dev/null.
"""

from __future__ import annotations

import sys
import time

from bench.lambda_context import BenchContext

T_MAIN = time.monotonic_ns()
if len(sys.argv) > 1 and sys.argv[1] == "tickerserve":
    sys.modules["sklearn"] = None  # type: ignore[assignment]


def _vm() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as handle:
        for raw in handle:
            key, _, value = raw.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def main() -> None:
    import gc
    import importlib
    import json
    import os
    from typing import Any

    side, mode, spec_path, result_path = sys.argv[1:5]
    with open(spec_path) as handle:
        events: list[dict[str, Any]] = json.load(handle)["events"]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # Powertools logs and EMF metrics

    t_import, cpu_import = time.monotonic_ns(), time.process_time_ns()
    name = "tickerserve.handler" if side == "tickerserve" else "bench.seed_handler"
    module: Any = importlib.import_module(name)
    t_imported, cpu_imported = time.monotonic_ns(), time.process_time_ns()
    context = BenchContext("bench-cold")
    result: dict[str, Any] = {"side": side, "mode": mode, "t_main": T_MAIN}
    result["import_ns"] = t_imported - t_import
    result["import_cpu_ns"] = cpu_imported - cpu_import  # what a busy machine disturbs less
    result["startup_to_import_ns"] = t_import - T_MAIN

    if mode == "cold":
        t_request = time.monotonic_ns()
        response = module.lambda_handler(events[0], context)
        t_answered = time.monotonic_ns()
        result.update(
            first_request_ns=t_answered - t_request,
            t_answered=t_answered,
            status=response.get("statusCode"),
            body=json.loads(response["body"]),
        )
    else:
        gc.collect()
        result["after_import"] = _vm()
        failures = 0
        t_loads = time.monotonic_ns()
        for i, event in enumerate(events):
            response = module.lambda_handler(event, context)
            failures += response.get("statusCode") != 200
            if i == 0:
                gc.collect()
                result["after_first"] = _vm()
        result["loads_ns"] = time.monotonic_ns() - t_loads
        gc.collect()
        result.update(after_models=_vm(), failures=failures, requests=len(events))
        if side == "tickerserve":
            memory = module.SERVICE.memory
            result.update(
                used_bytes=memory.used_bytes,
                budget_bytes=memory.budget_bytes,
                models_in_memory=len(memory),
                model_loads=module.SERVICE.counters.model_loads,
            )
        else:
            result["models_in_memory"] = len(module._models)
    result["sklearn_imported"] = sys.modules.get("sklearn") is not None
    with open(result_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
