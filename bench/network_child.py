"""One fresh process of the networks' cold-start benchmark (started by ``bench/networks.py``).

    python -m bench.network_child {tickerserve|torch} SPEC_JSON RESULT.json

tickerserve: torch, stable-baselines3 and scikit-learn are blocked before anything is imported
(the function has none of them); the handler answers a direct invoke with a window from a
local folder store. torch: a handler that imports torch, loads ``model.pth`` into seed 001's
``GRUModel`` and answers the same window (scaled in numpy from the numbers it is handed).
Timestamps are CLOCK_MONOTONIC nanoseconds, comparable with the parent's.
"""

from __future__ import annotations

import sys
import time

from bench.lambda_context import BenchContext

T_MAIN = time.monotonic_ns()
if len(sys.argv) > 1 and sys.argv[1] == "tickerserve":
    for _blocked in ("torch", "stable_baselines3", "sklearn"):
        sys.modules[_blocked] = None  # type: ignore[assignment]


def main() -> None:
    import json
    import os

    side, raw_spec, result_path = sys.argv[1:4]
    spec = json.loads(raw_spec)
    result: dict[str, object] = {"side": side, "t_main": T_MAIN}
    if side == "tickerserve":
        os.environ.update(TICKERSERVE_STORE_PATH=spec["store"], TICKERSERVE_CACHE_DIR=spec["cache"])
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # Powertools logs
        t0 = time.monotonic_ns()
        from tickerserve.handler import lambda_handler

        t1 = time.monotonic_ns()
        answer = lambda_handler(
            {"ticker": spec["ticker"], "features": spec["window"]},
            BenchContext("bench-network-cold"),
        )
        t2 = time.monotonic_ns()
        if "error" in answer:
            raise SystemExit(f"tickerserve answered {answer}")
        value = float(answer["prediction"])
    else:
        t0 = time.monotonic_ns()
        import numpy as np
        import torch
        from torch import nn

        class GRUModel(nn.Module):  # seed 001's (Bot_kilo's) GRUModel
            def __init__(
                self,
                input_size: int,
                hidden_size: int,
                num_layers: int,
                dropout: float,
                output_size: int,
            ) -> None:
                super().__init__()
                self.gru = nn.GRU(
                    input_size,
                    hidden_size,
                    num_layers,
                    batch_first=True,
                    dropout=dropout if num_layers > 1 else 0,
                )
                self.dropout_layer = nn.Dropout(dropout)
                self.fc1 = nn.Linear(hidden_size, hidden_size // 2)
                self.fc2 = nn.Linear(hidden_size // 2, output_size)
                self.relu = nn.ReLU()

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out, _ = self.gru(x)
                return self.fc2(self.relu(self.fc1(self.dropout_layer(out[:, -1, :]))))

        t1 = time.monotonic_ns()
        torch.set_num_threads(1)
        saved = torch.load(spec["checkpoint"], map_location="cpu", weights_only=True)
        config = saved["model_config"]
        model = GRUModel(
            config["input_size"],
            config["hidden_size"],
            config["num_layers"],
            config["dropout"],
            config["output_size"],
        ).eval()
        model.load_state_dict(saved["model_state_dict"])
        window = np.asarray(spec["window"], dtype=np.float64)
        window = np.where(np.isnan(window), spec["fill"], window)
        scaled = (window - np.asarray(spec["mean"])) / np.asarray(spec["scale"])
        with torch.no_grad():
            out = model(torch.as_tensor(scaled[None], dtype=torch.float32))
        value = float(out[0, 0])
        t2 = time.monotonic_ns()
    result.update(import_ns=t1 - t0, first_ns=t2 - t1, t_answered=t2, answer=value)
    with open(result_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
