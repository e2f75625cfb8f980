"""Section 10: networks (issue 18): seed 001's GRU and PPO policy served by onnxruntime through
the handler, against torch eager and stable-baselines3's own ``predict``.

Models (trained once on generated data, saved exactly as seed 001 saves its runs, converted by
the publisher and published into a local folder store; cached under
``build/bench-cache/networks-*``):

- GRU: Bot_kilo's ``GRUModel`` (``nn.GRU`` 20 -> 64, two layers, fc1 64 -> 32, ReLU, fc2),
  windows of 60 rows of 20 features, a median imputer and a StandardScaler;
- PPO: ``MlpPolicy`` with a 64-64 actor and critic over 20 raw features, Discrete(3), trained
  under VecNormalize.

10a. One warm window / observation: ``Api.handle`` of a REST v1 event (JSON body, a window as
     60 lists of 20 numbers) and of a direct invoke (the body already a dict), against torch
     eager ``model(x)`` on a ready (1, 60, 20) tensor under ``no_grad`` (one thread, as a Lambda
     under 1,769 MB has one vCPU, and torch's default threads) and stable-baselines3's
     ``model.predict(obs, deterministic=True)`` on an already normalized observation (what
     ``predict`` takes; the handler normalizes itself). Alternating blocks, 64 distinct inputs.
10b. Where the handler's time goes, each piece timed on its own.
10c. A batch of 1,000 windows: one batch through ``Api.handle`` (a direct invoke in process:
     as JSON it is about 23 MB, over Lambda's 6 MB payload) against torch on one
     (1000, 60, 20) tensor and against 1,000 eager calls.
10d. Cold start in a fresh process per sample (``bench/network_child.py``): the handler (torch,
     stable-baselines3 and scikit-learn blocked) to its first answered window, against a
     handler that imports torch, loads ``model.pth`` and answers the same window.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    ROOT,
    interleaved,
    median,
    ms,
    percentile,
    quiet_stdout,
    ratio,
    rest_event,
    say,
    table,
    us,
)

WINDOW, N_FEATURES, HIDDEN, LAYERS = 60, 20, 64, 2
OBSERVATION, NET_ARCH = 20, (64, 64)
INPUTS = 64  # distinct windows and observations, cycled
BATCH = 1000
CACHE_ROOT = ROOT / "build" / "bench-cache"
GRU_TICKER, PPO_TICKER = "GRU60", "PPO20"


def _key() -> str:
    import stable_baselines3
    import torch

    spec = f"{WINDOW}-{N_FEATURES}-{HIDDEN}-{LAYERS}-{OBSERVATION}-{NET_ARCH}-1"
    text = f"{spec} torch {torch.__version__} sb3 {stable_baselines3.__version__}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ensure_runs(*, rebuild: bool) -> Path:
    """The seed-shaped GRU and PPO runs, trained once (a few seconds) and cached."""
    from tests.network_support import train_gru, train_ppo, write_gru_run, write_ppo_run

    root = CACHE_ROOT / f"networks-{_key()}"
    if rebuild:
        shutil.rmtree(root, ignore_errors=True)
    if (root / "done").is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    say(f"training the benchmark's GRU and PPO policy into {root.relative_to(ROOT)} ...")
    gru, preprocessor = train_gru(N_FEATURES, window=WINDOW, hidden=HIDDEN, layers=LAYERS)
    write_gru_run(root / "gru" / "20240816_142301", gru, preprocessor, window=WINDOW)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, vecnormalize = train_ppo(OBSERVATION, net_arch=NET_ARCH, steps=512)
    write_ppo_run(root / "ppo" / "20240816_144023", model, vecnormalize)
    (root / "done").write_text("ok\n")
    return root


class NetworkBench:
    """The GRU and the policy, converted, published, and loaded by both sides."""

    def __init__(self, config: Any, work: Path, rebuild: bool) -> None:
        import torch
        from stable_baselines3 import PPO

        from tests.network_support import GRUModel
        from tickerserve.layout import DEFAULT_REGISTRY_KEY
        from tickerserve.publishing.conversion.gru_runs import GruRun, convert_gru
        from tickerserve.publishing.conversion.ppo_runs import convert_ppo
        from tickerserve.publishing.release import publish_bundle
        from tickerserve.storage.store import LocalStore

        self.config = config
        self.work = work
        self.root = ensure_runs(rebuild=rebuild)
        self.gru_run = self.root / "gru" / "20240816_142301"
        self.ppo_run = self.root / "ppo" / "20240816_144023"
        started = time.perf_counter()
        gru = convert_gru(GruRun(self.gru_run / "model.pth", self.gru_run), model="bench/gru")
        ppo = convert_ppo(self.ppo_run, model="bench/ppo")
        self.convert_s = time.perf_counter() - started
        self.store_path = work / "network-store"
        store = LocalStore(self.store_path)
        for ticker, converted in ((GRU_TICKER, gru), (PPO_TICKER, ppo)):
            publish_bundle(
                store, converted.bundle, registry_key=DEFAULT_REGISTRY_KEY, routes={ticker: "stock"}
            )
        self.converted = {"gru": gru, "ppo": ppo}
        # The originals, as their teams load them
        saved = torch.load(self.gru_run / "model.pth", map_location="cpu", weights_only=True)
        config_ = saved["model_config"]
        self.torch_gru = GRUModel(
            config_["input_size"],
            config_["hidden_size"],
            config_["num_layers"],
            config_["dropout"],
            config_["output_size"],
        ).eval()
        self.torch_gru.load_state_dict(saved["model_state_dict"])
        self.preprocessor = __import__("joblib").load(self.gru_run / "preprocessor.pkl")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.sb3 = PPO.load(self.ppo_run / "model.zip", device="cpu")
        import pickle

        with (self.ppo_run / "model_vecnormalize.pkl").open("rb") as handle:
            self.vecnormalize = pickle.load(handle)
        rng = np.random.default_rng(10)
        self.windows = (
            (rng.normal(scale=6, size=(INPUTS, WINDOW, N_FEATURES)) + 2)
            .astype(np.float32)
            .astype(np.float64)
        )
        self.observations = rng.normal(scale=6, size=(INPUTS, OBSERVATION)).astype(np.float32)

    def api(self) -> Any:
        from tickerserve.http.api import Api
        from tickerserve.serving.service import ModelService
        from tickerserve.settings import Settings

        cache = tempfile.mkdtemp(dir=self.work)
        return Api(ModelService(Settings(store_path=str(self.store_path), cache_dir=cache)))

    # -- 10a, 10b ----------------------------------------------------------------------------
    def warm(self) -> dict[str, Any]:
        import torch

        api = self.api()
        gru_bodies = [{"ticker": GRU_TICKER, "features": w.tolist()} for w in self.windows]
        ppo_bodies = [{"ticker": PPO_TICKER, "features": o.tolist()} for o in self.observations]
        gru_events = [rest_event("/predict", b) for b in gru_bodies]
        ppo_events = [rest_event("/predict", b) for b in ppo_bodies]
        imputer, scaler = self.preprocessor["imputer"], self.preprocessor["scaler"]
        scaled = scaler.transform(imputer.transform(self.windows.reshape(-1, N_FEATURES)))
        tensors = [
            torch.as_tensor(w[None], dtype=torch.float32)
            for w in scaled.reshape(INPUTS, WINDOW, N_FEATURES)
        ]
        normalized = self.vecnormalize.normalize_obs(self.observations)
        model, sb3 = self.torch_gru, self.sb3
        threads = torch.get_num_threads()
        answers = self._check_answers(api, gru_bodies, ppo_bodies, tensors, normalized)

        def torch_call(i: int, n: int) -> None:
            torch.set_num_threads(n)
            with torch.no_grad():
                model(tensors[i % INPUTS])

        counter = {"i": 0}

        def cycle(fn: Any) -> Any:
            def call() -> object:
                counter["i"] += 1
                return fn(counter["i"])

            return call

        total, warmup = self.config.warm_calls, self.config.warm_warmup
        with quiet_stdout():
            window = interleaved(
                {
                    "rest": cycle(lambda i: api.handle(gru_events[i % INPUTS], None)),
                    "direct": cycle(lambda i: api.handle(gru_bodies[i % INPUTS], None)),
                    "torch1": cycle(lambda i: torch_call(i, 1)),
                    "torch": cycle(lambda i: torch_call(i, threads)),
                },
                total=total,
                warmup=warmup,
            )
            torch.set_num_threads(1)
            observation = interleaved(
                {
                    "rest": cycle(lambda i: api.handle(ppo_events[i % INPUTS], None)),
                    "direct": cycle(lambda i: api.handle(ppo_bodies[i % INPUTS], None)),
                    "sb3": cycle(lambda i: sb3.predict(normalized[i % INPUTS], deterministic=True)),
                },
                total=total,
                warmup=warmup,
            )
            torch.set_num_threads(threads)
            pieces = self._pieces(api, gru_bodies, ppo_bodies)
        p50 = {f"window_{k}": median(v) for k, v in window.items()}
        p50 |= {f"observation_{k}": median(v) for k, v in observation.items()}
        rows = [
            [
                "GRU window: Api.handle, REST v1 event",
                *_cells(window["rest"]),
                ratio(p50["window_torch1"], p50["window_rest"]),
            ],
            [
                "GRU window: Api.handle, direct invoke",
                *_cells(window["direct"]),
                ratio(p50["window_torch1"], p50["window_direct"]),
            ],
            ["torch eager model(x), no_grad, 1 thread", *_cells(window["torch1"]), "1.00x"],
            [
                f"torch eager model(x), no_grad, {threads} threads",
                *_cells(window["torch"]),
                ratio(p50["window_torch1"], p50["window_torch"]),
            ],
            [
                "PPO observation: Api.handle, REST v1 event",
                *_cells(observation["rest"]),
                ratio(p50["observation_sb3"], p50["observation_rest"]),
            ],
            [
                "PPO observation: Api.handle, direct invoke",
                *_cells(observation["direct"]),
                ratio(p50["observation_sb3"], p50["observation_direct"]),
            ],
            ["SB3 model.predict(obs, deterministic=True)", *_cells(observation["sb3"]), "1.00x"],
        ]
        say()
        say(
            table(
                f"10a. Networks, one warm input ({total} timed calls per cell after {warmup} "
                f"warm-up, {INPUTS} distinct inputs cycled, alternating blocks; us)",
                ["path", "p10", "p50", "p99", "speed-up p50"],
                rows,
            )
        )
        say(
            f"   GRU: window {WINDOW} x {N_FEATURES} features, hidden {HIDDEN}, {LAYERS} "
            f"layers (seed 001's GRUModel); PPO: {OBSERVATION} features, "
            f"{NET_ARCH[0]}-{NET_ARCH[1]} MLP actor and critic, Discrete(3).\n"
            "   torch and SB3 get their inputs ready (scaled tensor, normalized observation); "
            "the handler parses the request, aligns, preprocesses, runs onnxruntime (one thread)\n"
            "   and shapes the answer. Speed-up against torch on one thread (a Lambda under "
            "1,769 MB has one vCPU) and SB3's predict.\n"
            f"   answers agree: GRU max |diff| {answers['gru']:.1e} on {INPUTS} windows; PPO "
            f"actions agree on {answers['actions']}/{INPUTS}, max |dp| {answers['ppo']:.1e}; "
            f"conversion of both {self.convert_s:.1f} s"
        )
        say()
        say(
            table(
                "10b. Where a warm network request's time goes (p50 us, each piece on its "
                "own; pieces overlap)",
                ["piece", "GRU window", "PPO observation"],
                pieces,
            )
        )
        return p50

    def _check_answers(
        self,
        api: Any,
        gru_bodies: list[Any],
        ppo_bodies: list[Any],
        tensors: list[Any],
        normalized: np.ndarray,
    ) -> dict[str, Any]:
        import torch

        with quiet_stdout():
            gru_answers = [api.handle(b, None)["prediction"] for b in gru_bodies]
            ppo_answers = [api.handle(b, None) for b in ppo_bodies]
        with torch.no_grad():
            want = [float(self.torch_gru(t)[0, 0]) for t in tensors]
        actions, _ = self.sb3.predict(normalized, deterministic=True)
        tensor, _ = self.sb3.policy.obs_to_tensor(normalized)
        with torch.no_grad():
            distribution: Any = self.sb3.policy.get_distribution(tensor).distribution
            probs = distribution.probs.numpy()
        mine = np.array([list(a["probabilities"].values()) for a in ppo_answers])
        return {
            "gru": float(np.max(np.abs(np.array(gru_answers) - np.array(want)))),
            "ppo": float(np.max(np.abs(mine - probs))),
            "actions": int(
                sum(a["action"] == int(b) for a, b in zip(ppo_answers, actions, strict=True))
            ),
        }

    def _pieces(self, api: Any, gru_bodies: list[Any], ppo_bodies: list[Any]) -> list[list[str]]:
        """Each piece of the handler's path on its own (p50 us)."""
        service = api.service

        def loaded(ticker: str) -> Any:
            return service.load(service.resolve_ticker(ticker)[1])[0]

        models = {"gru": loaded(GRU_TICKER), "ppo": loaded(PPO_TICKER)}
        texts = {
            "gru": [json.dumps(b) for b in gru_bodies],
            "ppo": [json.dumps(b) for b in ppo_bodies],
        }
        bodies = {"gru": gru_bodies, "ppo": ppo_bodies}
        rows: dict[str, list[str]] = {}
        n = max(200, self.config.warm_calls // 4)
        for kind in ("gru", "ppo"):
            for piece, fn in _piece_calls(api, models[kind], texts[kind], bodies[kind]).items():
                samples = []
                for i in range(n):
                    start = time.perf_counter_ns()
                    fn(i)
                    samples.append(time.perf_counter_ns() - start)
                rows.setdefault(piece, []).append(us(median(samples)))
        return [[piece, *cells] for piece, cells in rows.items()]

    # -- 10c ---------------------------------------------------------------------------------
    def batch(self) -> dict[str, Any]:
        import torch

        api = self.api()
        rng = np.random.default_rng(11)
        windows = (rng.normal(scale=6, size=(BATCH, WINDOW, N_FEATURES)) + 2).astype(np.float32)
        windows = windows.astype(np.float64)
        # A direct invoke in this process: as JSON, 1,000 windows of 60 x 20 numbers are about
        # 23 MB, over Lambda's 6 MB payload (a deployed client sends about 250 per request).
        event = {"items": [{"ticker": GRU_TICKER, "features": w.tolist()} for w in windows]}
        json_bytes = len(json.dumps(event))
        imputer, scaler = self.preprocessor["imputer"], self.preprocessor["scaler"]
        scaled = scaler.transform(imputer.transform(windows.reshape(-1, N_FEATURES)))
        tensor = torch.as_tensor(scaled.reshape(BATCH, WINDOW, N_FEATURES), dtype=torch.float32)
        singles = [tensor[i : i + 1] for i in range(BATCH)]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        times: dict[str, list[int]] = {"batch": [], "torch_batch": [], "torch_singles": []}
        with quiet_stdout():
            response = api.handle(event, None)  # warm-up; checked below
            for _ in range(self.config.batch_repeats):
                start = time.perf_counter_ns()
                api.handle(event, None)
                times["batch"].append(time.perf_counter_ns() - start)
                with torch.no_grad():
                    start = time.perf_counter_ns()
                    want = self.torch_gru(tensor)
                    times["torch_batch"].append(time.perf_counter_ns() - start)
                    start = time.perf_counter_ns()
                    for single in singles:
                        self.torch_gru(single)
                    times["torch_singles"].append(time.perf_counter_ns() - start)
        torch.set_num_threads(threads)
        got = np.array([r["prediction"] for r in response["results"]])
        diff = float(np.max(np.abs(got - want.numpy()[:, 0])))
        p50 = {k: median(v) for k, v in times.items()}
        say()
        say(
            table(
                f"10c. A batch of {BATCH} GRU windows (median of {self.config.batch_repeats}; one "
                "thread everywhere)",
                ["variant", "total ms", "per window us", "vs torch x 1000"],
                [
                    [
                        "tickerserve batch, Api.handle (direct invoke)",
                        ms(p50["batch"]),
                        us(p50["batch"] / BATCH),
                        ratio(p50["torch_singles"], p50["batch"]),
                    ],
                    [
                        "torch eager, one (1000, 60, 20) tensor",
                        ms(p50["torch_batch"]),
                        us(p50["torch_batch"] / BATCH),
                        ratio(p50["torch_singles"], p50["torch_batch"]),
                    ],
                    [
                        "torch eager x 1000 single windows",
                        ms(p50["torch_singles"]),
                        us(p50["torch_singles"] / BATCH),
                        "1.00x",
                    ],
                ],
            )
        )
        say(
            f"   the batch's answers agree with torch's, max |diff| {diff:.1e}. As JSON the "
            f"batch is {json_bytes / 2**20:.1f} MiB, over Lambda's 6 MB payload: a deployed "
            "client sends\n   windows this size about 250 to a request (timed here in process, "
            "body already a dict)."
        )
        return p50

    # -- 10d ---------------------------------------------------------------------------------
    def cold(self) -> dict[str, Any]:
        window = [[float(v) for v in row] for row in self.windows[0]]
        for side in ("tickerserve", "torch"):  # untimed: write the bytecode caches
            self._child(side, window)
        samples: dict[str, list[dict[str, Any]]] = {"tickerserve": [], "torch": []}
        for _ in range(self.config.cold_samples):
            for side in samples:
                samples[side].append(self._child(side, window))
        rows, out = [], {}
        for side, label in (
            ("tickerserve", "tickerserve handler (torch, SB3, sklearn blocked)"),
            ("torch", "a handler that imports torch"),
        ):
            done = samples[side]
            out[side] = median([d["total_ns"] for d in done])
            rows.append(
                [
                    label,
                    ms(median([d["import_ns"] for d in done])),
                    ms(median([d["first_ns"] for d in done])),
                    ms(out[side]),
                    f"{out[side] / out['torch']:.2f}" if "torch" in out else "",
                ]
            )
        rows[0][-1] = f"{out['tickerserve'] / out['torch']:.2f}"
        rows[1][-1] = "1.00"
        answers = [d["answer"] for d in samples["tickerserve"] + samples["torch"]]
        spread = max(answers) - min(answers)
        say()
        say(
            table(
                f"10d. GRU cold start in a fresh process (median of {self.config.cold_samples}; "
                "ms; fresh cache dir per sample)",
                ["side", "import", "first answer", "spawn -> answer", "of torch"],
                rows,
            )
        )
        say(
            "   tickerserve: import tickerserve.handler -> direct invoke with a window (registry, "
            "metadata, model.onnx and preprocessing.json from a local folder store, sha256,\n"
            "   probe child, onnxruntime session, predict); torch: import torch and numpy -> "
            "torch.load(model.pth) -> GRUModel + load_state_dict -> model(window)\n"
            "   (generous: the scaling in numpy from numbers it is handed, no scikit-learn, no "
            f"framework). Both read local disk; the answers agree within {spread:.1e}"
        )
        return out

    def _child(self, side: str, window: list[list[float]]) -> dict[str, Any]:
        result = Path(tempfile.mkdtemp(dir=self.work)) / "result.json"
        imputer, scaler = self.preprocessor["imputer"], self.preprocessor["scaler"]
        spec = {
            "ticker": GRU_TICKER,
            "window": window,
            "store": str(self.store_path),
            "cache": str(result.parent / "cache"),
            "checkpoint": str(self.gru_run / "model.pth"),
            # the seed's scaling as plain numbers: the torch side imports no scikit-learn
            "fill": imputer.statistics_.tolist(),
            "mean": scaler.mean_.tolist(),
            "scale": scaler.scale_.tolist(),
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERSERVE_")}
        started = time.monotonic_ns()
        subprocess.run(
            [sys.executable, "-m", "bench.network_child", side, json.dumps(spec), str(result)],
            check=True,
            cwd=ROOT,
            env=env,
        )
        data: dict[str, Any] = json.loads(result.read_text())
        data["total_ns"] = data["t_answered"] - started
        return data


def _piece_calls(
    api: Any, model: Any, texts: list[str], bodies: list[Any]
) -> dict[str, Callable[[int], object]]:
    """Each piece of a warm request, as a call on the ``i``-th input."""
    import orjson

    member = model.members[0]
    aligned = [model.schema.row(b["features"]) for b in bodies]
    flat = [a.reshape(1, -1) for a in aligned]
    shaped = [a.reshape(1, *member.shape) for a in aligned]
    # The steps as compiled at load: the GRU's (an imputer, a clip where scaling overflowed);
    # the policy's VecNormalize runs as nodes in front of its graph, so it has none.
    prepare = member._prepare
    ready = [prepare(x) for x in shaped]
    session, fetch, name = member.session, member._fetch, member._input
    bound = member._bind()  # this thread's IOBinding, as a one-input run uses it

    def parse(i: int) -> object:
        return orjson.loads(texts[i % INPUTS])

    def align(i: int) -> object:
        return model.schema.row(bodies[i % INPUTS]["features"])

    def preprocess(i: int) -> object:
        return prepare(shaped[i % INPUTS], bound.input)

    def run(i: int) -> object:
        return session.run(fetch, {name: ready[i % INPUTS]})

    def run_bound(i: int) -> object:
        bound.input[...] = ready[i % INPUTS]
        return bound.run()

    def predict(i: int) -> object:
        return model.predict(flat[i % INPUTS])

    def handle(i: int) -> object:
        return api.handle(bodies[i % INPUTS], None)

    return {
        "body JSON parse (orjson)": parse,
        "align the features (window rows / observation)": align,
        "preprocessing in numpy into the bound input (PPO: a copy)": preprocess,
        "onnxruntime session.run, one thread (PPO: with its steps)": run,
        "onnxruntime run, the thread's IOBinding (copy in + run)": run_bound,
        "LoadedModel.predict (preprocessing + run)": predict,
        "Api.handle, direct invoke (everything)": handle,
    }


def _cells(samples: list[int]) -> list[str]:
    return [us(percentile(samples, 10)), us(median(samples)), us(percentile(samples, 99))]


def run(config: Any, work: Path, *, rebuild: bool = False) -> dict[str, Any]:
    bench = NetworkBench(config, work, rebuild)
    return {"warm": bench.warm(), "batch": bench.batch(), "cold": bench.cold()}


def target_rows(results: dict[str, Any]) -> list[list[str]]:
    """Issue 18's targets against what was measured."""
    warm, batch, cold = results["warm"], results["batch"], results["cold"]
    window_x = warm["window_torch1"] / warm["window_rest"]
    observation_x = warm["observation_sb3"] / warm["observation_rest"]
    share = cold["tickerserve"] / cold["torch"]
    return [
        [
            "warm GRU window via Api.handle (REST) >= 5x torch eager (1 thread)",
            f"{window_x:.2f}x",
            _yes(window_x >= 5),
        ],
        [
            "warm PPO observation via Api.handle (REST) >= 5x SB3 predict",
            f"{observation_x:.2f}x",
            _yes(observation_x >= 5),
        ],
        [
            "GRU cold start to first answer <= 0.4x a torch handler",
            f"{share:.2f} of torch",
            _yes(share <= 0.4),
        ],
        ["1,000-window batch, per window", f"{us(batch['batch'] / BATCH)} us", "-"],
    ]


def _yes(met: bool) -> str:
    return "yes" if met else "NO"
