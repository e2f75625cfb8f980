"""One fresh process of the families' cold-start benchmark (started by ``bench/families.py``).

    python -m bench.family_child {tickerserve|baseline} SPEC_JSON RESULT.json

tickerserve: scikit-learn and XGBoost are blocked before anything is imported (the Lambda layer
has neither); the handler answers a direct invoke from a local folder store. baseline:
``joblib.load`` of the seed's pickle and the seed's own predict code. Timestamps are
CLOCK_MONOTONIC nanoseconds, comparable with the parent's.
"""

from __future__ import annotations

import sys
import time

from bench.lambda_context import BenchContext

T_MAIN = time.monotonic_ns()
if len(sys.argv) > 1 and sys.argv[1] == "tickerserve":
    sys.modules["sklearn"] = None  # type: ignore[assignment]
    sys.modules["xgboost"] = None  # type: ignore[assignment]


def main() -> None:
    import json
    import os

    side, raw_spec, result_path = sys.argv[1:4]
    spec = json.loads(raw_spec)
    result: dict[str, object] = {"side": side, "t_main": T_MAIN}
    if side == "tickerserve":
        os.environ.update(
            TICKERSERVE_STORE_PATH=spec["target"], TICKERSERVE_CACHE_DIR=spec["cache"]
        )
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # Powertools logs
        t0 = time.monotonic_ns()
        from tickerserve.handler import lambda_handler

        t1 = time.monotonic_ns()
        body = {"ticker": spec["ticker"],
                "features": dict(zip(spec["names"], spec["row"], strict=True))}  # fmt: skip
        answer = lambda_handler(body, BenchContext("bench-family-cold"))
        t2 = time.monotonic_ns()
        if "error" in answer:
            raise SystemExit(f"tickerserve answered {answer}")
        if "probabilities" in answer:
            values = list(answer["probabilities"].values())
        else:
            values = [answer["prediction"]]
    else:
        t0 = time.monotonic_ns()
        import joblib
        import numpy as np

        from bench.families import seed_predict

        t1 = time.monotonic_ns()
        artifact = joblib.load(spec["target"])
        output = seed_predict(spec["family"], artifact, np.array([spec["row"]]))
        t2 = time.monotonic_ns()
        values = [float(v) for v in np.asarray(output, dtype=np.float64).reshape(-1)]
    result.update(import_ns=t1 - t0, first_ns=t2 - t1, t_answered=t2, answer=values)
    result["sklearn_imported"] = sys.modules.get("sklearn") is not None
    with open(result_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
