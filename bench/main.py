"""tickerserve vs a seed-style baseline, in one run against a local moto S3 server.

Sections: 1 warm single prediction through the whole handler, 2 a batch of 1000 rows,
3 cold start in fresh processes (3b: the synthesized assets under the runtime's Python 3.13),
4 peak RSS with 51 models (with and without a memory budget), 5 a monitor run
(``bench/monitor.py``), 6 every model family the seeds bring (``bench/families.py``), 7 storage
faults and unloadable files, now vs before (``bench/faults.py``), 8 what capture and a shadow
challenger add to a warm prediction (``bench/capture.py``; 8b reading 250,000 outcomes back,
``bench/outcomes.py``), 9 the prediction path of this tree against an older commit
(``bench/pipeline.py``, ``--against REF``), 10 networks: seed 001's GRU and PPO policy through
onnxruntime against torch and stable-baselines3 (``bench/networks.py``), 11 what request
warnings add to a warm prediction (``bench/request_warnings.py``). Prints plain-text tables
with medians and ratios. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import api_batch, costs, families
from bench import faults as faults_bench
from bench import monitor as monitor_bench
from bench import pipeline as pipeline_bench
from bench.capture import capture_section, capture_targets, drained_pipe
from bench.common import (
    FAKE_CREDENTIALS,
    ROOT,
    FakeLambdaContext,
    interleaved,
    machine_info,
    median,
    mib,
    moto_server,
    ms,
    percentile,
    quiet_stdout,
    ratio,
    real_event,
    rest_event,
    say,
    table,
    us,
)
from bench.models import (
    LARGE_ETFS,
    PRODUCTION,
    SMALL_ETF,
    STOCKS,
    UNIVERSAL,
    ModelSpec,
    ensure_models,
    feature_names,
    model_specs,
    publish_all,
    ticker_model,
)
from bench.outcomes import outcomes_section
from bench.request_warnings import warnings_section, warnings_targets

BUCKET = "tickerserve-bench"
WARM_LARGE_TICKER = "XLK"
COLD_TICKER = "QQQ"
BATCH_ETFS = LARGE_ETFS[:10]
BATCH_STOCKS = STOCKS[:5]
BUDGET_FRACTION = 0.25
WARM_ROWS = 64
WARM_BLOCKS = 10  # section 1's alternating blocks
SECTIONS = (
    "warm", "batch", "cold", "runtime", "rss", "monitor", "families", "faults", "capture",
    "pipeline", "networks", "warnings",
)  # fmt: skip
OWN_STORE = ("families", "networks")  # sections with their own models and a local folder store


@dataclass(frozen=True)
class Config:
    """How much to measure."""

    warm_calls: int
    warm_warmup: int
    batch_repeats: int
    cold_samples: int
    rss_samples: int

    @classmethod
    def make(cls, quick: bool) -> Config:
        if quick:
            return cls(
                warm_calls=1000, warm_warmup=100, batch_repeats=3, cold_samples=3, rss_samples=1
            )
        return cls(warm_calls=3000, warm_warmup=200, batch_repeats=5, cold_samples=5, rss_samples=1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer samples (about a minute once the models are cached)",
    )
    parser.add_argument("--rebuild", action="store_true", help="retrain the cached models")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})",
    )
    parser.add_argument(
        "--against",
        default=pipeline_bench.DEFAULT_REF,
        metavar="REF",
        help="the git commit, tag or branch section 9 (pipeline) compares this tree with "
        f"(default: {pipeline_bench.DEFAULT_REF})",
    )
    args = parser.parse_args(argv)
    args.sections = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config.make(args.quick)
    started = time.monotonic()
    script = ["-m", "bench"] if sys.argv[0].endswith("__main__.py") else [sys.argv[0]]
    command = shlex.join([os.path.relpath(sys.executable), *script, *sys.argv[1:]])
    say("tickerserve benchmark: tickerserve vs seed-style baseline (moto S3 on 127.0.0.1)")
    say(f"command: {command}   (cwd {os.getcwd()})")
    for key, value in machine_info():
        say(f"{key}: {value}")
    say(
        "method: time.perf_counter_ns per call, warm-up calls first, GC left enabled (as in "
        "Lambda), the two sides measured in alternating blocks; medians of noisy shared-"
        "machine samples. Handler stdout (Powertools logs/EMF) goes to /dev/null for both."
    )
    say(f"config: {config}")
    work = Path(tempfile.mkdtemp(prefix="tickerserve-bench-"))
    results: dict[str, Any] = {}
    try:
        lightgbm_sections = [n for n in SECTIONS if n in args.sections and n not in OWN_STORE]
        if lightgbm_sections:
            specs = model_specs()
            root = ensure_models(specs, rebuild=args.rebuild)
            with moto_server() as endpoint:
                os.environ.update(FAKE_CREDENTIALS)
                os.environ["AWS_ENDPOINT_URL"] = endpoint
                sizes = publish_all(root, specs, BUCKET, endpoint)
                say(_describe_models(specs, sizes))
                bench = Bench(
                    config, work, endpoint, specs, sizes, against=args.against, models_root=root
                )
                for name in lightgbm_sections:
                    section_started = time.monotonic()
                    results[name] = getattr(bench, name)()
                    say(f"   ({name}: {time.monotonic() - section_started:.0f} s)")
        if "families" in args.sections:  # its own models, a local folder store: no moto
            section_started = time.monotonic()
            results["families"] = families.run(config, work, rebuild=args.rebuild)
            say(f"   (families: {time.monotonic() - section_started:.0f} s)")
        if "networks" in args.sections:  # torch and stable-baselines3, imported only here
            from bench import networks

            section_started = time.monotonic()
            results["networks"] = networks.run(config, work, rebuild=args.rebuild)
            say(f"   (networks: {time.monotonic() - section_started:.0f} s)")
        say(summary(results))
        if "warm" in results:
            say(cost_tables(results))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    say(f"\ntotal benchmark time: {time.monotonic() - started:.0f} s; load average at end: {load}")
    return 0


def _describe_models(specs: list[ModelSpec], sizes: dict[str, Any]) -> str:
    small = next(s for s in specs if s.name == f"etfs/{SMALL_ETF}")
    large = next(s for s in specs if s.name == UNIVERSAL)
    native = sizes["native"]
    seed = sizes["seed"]
    large_native = [native[s.name] for s in specs if s.name != small.name]
    large_seed = [seed[s.name] for s in specs if s.name != small.name]

    def shape(s: ModelSpec) -> str:
        return (
            f"{s.n_features} features, {s.n_classes} classes, {s.rounds} rounds x num_leaves "
            f"{s.num_leaves} = {s.rounds * s.n_classes} trees, {s.rows} training rows"
        )

    return "\n".join(
        [
            "",
            "models (LGBMClassifier, trained once; tickerserve bundle = the same clf.booster_):",
            f"  small: {small.name} ({shape(small)}); model.txt {mib(native[small.name])} MiB,"
            f" seed artifacts {mib(seed[small.name])} MiB",
            f"  large: 50 ETFs + {UNIVERSAL} ({shape(large)}); model.txt median "
            f"{mib(median(large_native))} MiB (total {mib(sum(large_native))} MiB), seed "
            f"artifacts median {mib(median(large_seed))} MiB",
        ]
    )


def _row_features(names: list[str], seed: int) -> dict[str, float]:
    import numpy as np

    values = np.random.default_rng(seed).normal(size=len(names))
    return {n: round(float(v), 4) for n, v in zip(names, values, strict=True)}


def _same_answer(ours: dict[str, Any], theirs: dict[str, Any]) -> float:
    """Max |difference| of class probabilities; raises if the predicted labels differ."""
    if ours["prediction"] != theirs["prediction"]:
        raise RuntimeError(f"answers differ: {ours} vs {theirs}")
    return max(abs(p - theirs["probabilities"][c]) for c, p in ours["probabilities"].items())


class Cycle:
    """Calls ``fn(args[i], *extra)`` with i cycling over ``args``: distinct rows per call, so
    tree paths and CPU caches are not the same on every call."""

    def __init__(self, fn: Callable[..., object], args: list[Any], *extra: object) -> None:
        self.fn, self.args, self.extra, self.i = fn, args, extra, 0

    def __call__(self) -> object:
        self.i = (self.i + 1) % len(self.args)
        return self.fn(self.args[self.i], *self.extra)


class Bench:
    """The four sections; holds the in-process handlers of both sides."""

    def __init__(
        self,
        config: Config,
        work: Path,
        endpoint: str,
        specs: list[ModelSpec],
        sizes: dict[str, Any],
        *,
        against: str = pipeline_bench.DEFAULT_REF,
        models_root: Path | None = None,
    ) -> None:
        self.config = config
        self.against = against
        self.models_root = models_root  # the cached seed artifacts (section 9 publishes them)
        self.work = work
        self.endpoint = endpoint
        self.specs = specs
        self.sizes = sizes
        self.context = FakeLambdaContext()
        self.etfs = ",".join([SMALL_ETF, *LARGE_ETFS])
        os.environ.update(self._env(work / "inproc-ts", work / "inproc-seed", memory_mb=4096))
        # Warm requests add no metrics, so Powertools warns; once per process normally, but the
        # baseline's scikit-learn calls reset the warning registry (catch_warnings) every time.
        warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
        with quiet_stdout():
            self.ts: Any = importlib.import_module("tickerserve.handler")
            self.seed: Any = importlib.import_module("bench.seed_handler")

    def _env(self, ts_cache: Path, seed_tmp: Path, *, memory_mb: int) -> dict[str, str]:
        return {
            "TICKERSERVE_BUCKET": BUCKET,
            "TICKERSERVE_CACHE_DIR": str(ts_cache),
            "TICKERSERVE_MEMORY_MB": str(memory_mb),
            "TICKERSERVE_DISK_MB": "2048",
            "TICKERSERVE_REGISTRY_TTL": "60",
            "SEED_BUCKET": BUCKET,
            "SEED_TMP": str(seed_tmp),
            "SEED_ETFS": self.etfs,
            "AWS_ENDPOINT_URL": self.endpoint,
            **FAKE_CREDENTIALS,
        }

    def _names(self, model: str) -> list[str]:
        spec = next(s for s in self.specs if s.name == model)
        return feature_names(spec.n_features)

    def _written_bytes(self, event: dict[str, Any]) -> tuple[int, int]:
        """(capture record, answer body) in bytes: what the function writes for ``event`` with
        capture on (its log line) and sends back (the costs' inputs)."""
        from tickerserve.http.api import Api
        from tickerserve.serving.capture import Capture

        lines: list[bytes] = []

        class Collect:
            def write(self, data: bytes) -> None:
                lines.append(data)

        response = Api(self.ts.SERVICE, capture=Capture(Collect())).handle(event, None)
        if response["statusCode"] != 200 or len(lines) != 1:
            raise RuntimeError(f"expected one capture record for {event['body'][:60]}")
        return len(lines[0]), len(response["body"].encode())

    def _call_ts(self, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.ts.lambda_handler(event, self.context)
        if response["statusCode"] != 200:
            raise RuntimeError(f"tickerserve answered {response}")
        return response

    def _call_seed(self, event: dict[str, Any], batch: bool = False) -> dict[str, Any]:
        handler = self.seed.batch_handler if batch else self.seed.lambda_handler
        response: dict[str, Any] = handler(event, self.context)
        if response["statusCode"] != 200:
            raise RuntimeError(f"baseline answered {response}")
        return response

    # -- 1 ---------------------------------------------------------------------------------------
    def warm(self) -> dict[str, Any]:
        """Warm single prediction through the whole handler, for both model sizes, plus where
        tickerserve's time goes."""
        from tickerserve.http.api import Api
        from tickerserve.serving.capture import Capture, LogSink

        envelope = real_event("rest_predict.json")
        cases = [("small", SMALL_ETF), ("large", WARM_LARGE_TICKER)]
        out: dict[str, Any] = {}
        rows: list[list[object]] = []
        parts: dict[str, dict[str, float]] = {}
        notes: list[str] = []
        with drained_pipe() as pipe:
            # The prediction function's Api with capture on: every request's record is written
            # to a pipe another process drains, as the Lambda runtime reads stdout.
            captured = Api(
                self.ts.SERVICE, capture=Capture(LogSink(pipe.fileno())), entry="prediction"
            )
            for size, ticker in cases:
                calls = self._warm_case(size, ticker, envelope, captured, out, rows, parts, notes)
        say()
        say(
            table(
                f"1. Warm single prediction: REST v1 event -> handler -> response dict "
                f"({calls} timed calls per cell after {self.config.warm_warmup} "
                f"warm-up, {WARM_ROWS} distinct rows cycled; ms)",
                ["model", "side", "p10", "p50", "p99", "speed-up p50"],
                rows,
            )
        )
        say(
            "   envelope: tests/events/rest_predict.json (its own SMH body is row 0 of the small "
            "case); same events for both sides.\n   Api.handle, capture on: the prediction "
            "function's Api without the Powertools Logger/Metrics decorators, each\n   "
            "request's capture record written to a pipe another process drains. Block ratio: "
            f"the median (quartiles) of the {WARM_BLOCKS}\n   alternating blocks' baseline "
            "p50 / Api.handle p50."
        )
        for size, _ in cases:
            low, mid, high = out[size]["block_ratio"]
            say(f"   {size}: Api.handle, capture on, block ratio {mid:.2f}x ({low:.2f}-{high:.2f})")
        for note in notes:
            say(f"   answers agree, {note}")
        labels = [
            ("ts", "tickerserve lambda_handler (everything)"),
            ("api", "  API.handle (no Powertools Logger/Metrics decorators)"),
            ("api_capture", "  API.handle, capture on (records to a drained pipe)"),
            ("resolver", "  Powertools REST resolver, canned answer (framework floor)"),
            ("predict", "  tickerserve.serving.predict.predict() (parse, route, align, answer)"),
            ("proba", "  LoadedModel.predict_proba (LightGBM single-row fast path)"),
            ("booster", "  for comparison: lightgbm Booster.predict, same row"),
            ("seed", "baseline lambda_handler (everything)"),
            ("seed_proba", "  LGBMClassifier.predict_proba"),
        ]
        say()
        say(
            table(
                "1b. Where the warm time goes (p50 us of each piece timed on its own, same run; "
                "pieces overlap)",
                ["piece", *[f"{size} p50 us" for size, _ in cases]],
                [[label, *[us(parts[size][key]) for size, _ in cases]] for key, label in labels],
            )
        )
        return out

    def _warm_case(
        self,
        size: str,
        ticker: str,
        envelope: dict[str, Any],
        captured: Any,
        out: dict[str, Any],
        rows: list[list[object]],
        parts: dict[str, dict[str, float]],
        notes: list[str],
    ) -> int:
        """Section 1 for one model size: times both sides and tickerserve's pieces; returns
        the timed calls per cell."""
        import numpy as np
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver

        from tickerserve.serving.predict import predict

        bodies = self._warm_bodies(ticker)
        if size == "small":  # the real event's own feature values come first
            bodies[0] = json.loads(envelope["body"])
        events = [{**envelope, "body": json.dumps(b)} for b in bodies]
        with quiet_stdout():
            delta = max(
                _same_answer(
                    json.loads(self._call_ts(e)["body"]), json.loads(self._call_seed(e)["body"])
                )
                for e in events
            )
        notes.append(f"{size}: all {len(events)} rows, max |dp| = {delta:.1e}")
        model = self.ts.SERVICE.serving_for_ticker(ticker).model
        ts_rows = [model.schema.row(b["features"]).reshape(1, -1) for b in bodies]
        clf, _, seed_names = self.seed._models[self.seed.model_prefix(ticker)]
        seed_rows = [np.array([[float(b["features"][n]) for n in seed_names]]) for b in bodies]
        # lightgbm's own Booster of the same trees (the seed classifier's), for comparison
        booster = clf.booster_
        if not np.allclose(booster.predict(seed_rows[0]), model.predict_proba(ts_rows[0])):
            raise RuntimeError("the single-row fast path disagrees with Booster.predict")
        canned = APIGatewayRestResolver(serializer=partial(json.dumps, separators=(",", ":")))
        answer = json.loads(self._call_ts(events[0])["body"])
        canned.post("/predict")(lambda answer=answer: answer)
        fns: dict[str, Callable[[], object]] = {
            "ts": Cycle(self.ts.lambda_handler, events, self.context),
            "seed": Cycle(self.seed.lambda_handler, events, self.context),
            "api": Cycle(self.ts.API.handle, events, self.context),
            "api_capture": Cycle(captured.handle, events, self.context),
            "resolver": Cycle(canned.resolve, events, self.context),
            "predict": Cycle(partial(predict, self.ts.SERVICE), bodies),
            "proba": Cycle(model.predict_proba, ts_rows),
            "booster": Cycle(partial(booster.predict, num_threads=1), seed_rows),
            "seed_proba": Cycle(clf.predict_proba, seed_rows),
        }
        gc.collect()
        with quiet_stdout():
            samples = interleaved(
                fns,
                total=self.config.warm_calls,
                warmup=self.config.warm_warmup,
                blocks=WARM_BLOCKS,
            )
        p50 = {k: percentile(v, 50) for k, v in samples.items()}
        parts[size] = p50
        out[size] = {k: (percentile(v, 50), percentile(v, 99)) for k, v in samples.items()}
        out[size]["bytes"] = self._written_bytes(events[0])
        out[size]["block_ratio"] = _block_ratios(samples["seed"], samples["api_capture"])
        sides = (
            ("tickerserve", "ts"),
            ("Api.handle, capture on", "api_capture"),
            ("baseline", "seed"),
        )
        for side, key in sides:
            s = samples[key]
            rows.append(
                [
                    f"{size} ({ticker})" if key == "ts" else "",
                    side,
                    ms(percentile(s, 10)),
                    ms(p50[key]),
                    ms(percentile(s, 99)),
                    ratio(p50["seed"], p50[key]),
                ]
            )
        return len(samples["ts"])

    def _warm_bodies(self, ticker: str) -> list[dict[str, Any]]:
        """``WARM_ROWS`` distinct predict bodies for ``ticker``."""
        names = self._names(ticker_model(ticker))
        return [
            {"ticker": ticker, "features": _row_features(names, 1000 + i)} for i in range(WARM_ROWS)
        ]

    def _batch_items(self) -> list[dict[str, Any]]:
        """1000 predict bodies over ``BATCH_ETFS`` and ``BATCH_STOCKS`` (11 large models)."""
        tickers = [*BATCH_ETFS, *BATCH_STOCKS]
        return [
            {
                "ticker": tickers[i % len(tickers)],
                "features": _row_features(self._names(ticker_model(tickers[i % len(tickers)])), i),
            }
            for i in range(1000)
        ]

    # -- 2 ---------------------------------------------------------------------------------------
    def batch(self) -> dict[str, Any]:
        """1000 rows: one /predict/batch request vs 1000 single requests vs a vectorized seed."""
        tickers = [*BATCH_ETFS, *BATCH_STOCKS]
        items = self._batch_items()
        batch_event = rest_event("/predict/batch", {"items": items})
        singles = [rest_event("/predict", item) for item in items]
        n_models = len({ticker_model(t) for t in tickers})

        def ts_batch() -> None:
            body = json.loads(self._call_ts(batch_event)["body"])
            if body["succeeded"] != len(items):
                raise RuntimeError(f"batch: {body['failed']} items failed")

        def ts_singles() -> None:
            for event in singles:
                self.ts.lambda_handler(event, self.context)

        def seed_singles() -> None:
            for event in singles:
                self.seed.lambda_handler(event, self.context)

        def seed_vectorized() -> None:
            self._call_seed(batch_event, batch=True)

        variants: list[tuple[str, str, Callable[[], None]]] = [
            ("tickerserve POST /predict/batch", "1", ts_batch),
            ("tickerserve POST /predict x 1000", "1000", ts_singles),
            ("baseline handler x 1000 (seed had no batch)", "1000", seed_singles),
            ("baseline vectorized batch (hypothetical)", "1", seed_vectorized),
        ]
        with quiet_stdout():
            for _, _, fn in variants:  # loads the models; checks every answer once
                fn()
            ours = json.loads(self._call_ts(batch_event)["body"])["results"]
            theirs = json.loads(self._call_seed(batch_event, batch=True)["body"])["results"]
            delta = max(_same_answer(a, b) for a, b in zip(ours, theirs, strict=True))
            gc.collect()
            totals: dict[str, list[int]] = {name: [] for name, _, _ in variants}
            for _ in range(self.config.batch_repeats):
                for name, _, fn in variants:
                    start = time.perf_counter_ns()
                    fn()
                    totals[name].append(time.perf_counter_ns() - start)
        medians = {name: median(v) for name, v in totals.items()}
        reference = medians[variants[2][0]]
        rows = [
            [
                name,
                requests,
                ms(medians[name]),
                us(medians[name] / 1000),
                ratio(reference, medians[name]),
            ]
            for name, requests, _ in variants
        ]
        say()
        say(
            table(
                f"2. Batch of 1000 rows, warm ({len(tickers)} tickers -> {n_models} large models, "
                f"36 named features per row; median of {self.config.batch_repeats})",
                ["variant", "requests", "total ms", "per row us", "vs baseline x 1000"],
                rows,
            )
        )
        say(
            "   baseline = the seed handler called 1000 times (the seeds had no batch endpoint); "
            "the vectorized\n   variant is a best-case seed batch handler written for comparison "
            "(one predict_proba per model)."
        )
        say(f"   answers agree on all 1000 rows, max |dp| = {delta:.1e}")
        api = api_batch.run(
            self.work,
            self.endpoint,
            BUCKET,
            self._env(self.work / "api-batch-ts", self.work / "api-batch-seed", memory_mb=4096),
            quick=self.config.batch_repeats < 5,
        )
        return {"medians": medians, "reference": reference, "api": api}

    # -- 3 ---------------------------------------------------------------------------------------
    def _child(
        self, side: str, mode: str, events: list[dict[str, Any]], env: dict[str, str]
    ) -> dict[str, Any]:
        spec = self.work / "spec.json"
        spec.write_text(json.dumps({"events": events}))
        result = self.work / "result.json"
        result.unlink(missing_ok=True)
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TICKERSERVE_", "SEED_"))
        }
        full_env.pop("PYTHONDONTWRITEBYTECODE", None)
        full_env.update(env)
        t_spawn = time.monotonic_ns()
        proc = subprocess.run(
            [sys.executable, "-m", "bench.child", side, mode, str(spec), str(result)],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not result.exists():
            raise RuntimeError(f"{side} {mode} child failed:\n{proc.stderr[-3000:]}")
        data: dict[str, Any] = json.loads(result.read_text())
        data["t_spawn"] = t_spawn
        return data

    def _fresh_env(self, tag: str, **extra: str) -> dict[str, str]:
        cache = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=self.work))
        env = self._env(cache / "ts", cache / "seed", memory_mb=int(extra.pop("memory_mb", "4096")))
        env.update(extra)
        return env

    def _primed_pycache(self, event: dict[str, Any]) -> Path:
        """A PYTHONPYCACHEPREFIX holding the bytecode of everything both children import (as
        the Lambda layer ships .pyc), filled by one untimed run of each side."""
        pycache = self.work / "pycache"
        if not pycache.exists():
            env = {"PYTHONPYCACHEPREFIX": str(pycache)}
            for side in ("tickerserve", "baseline"):
                self._child(side, "cold", [event], self._fresh_env("prime", **env))
        return pycache

    def cold(self) -> dict[str, Any]:
        """Fresh process per sample: interpreter start, import, first answered prediction."""
        import tickerserve

        event = rest_event(
            "/predict",
            {
                "ticker": COLD_TICKER,
                "features": _row_features(self._names(ticker_model(COLD_TICKER)), 2),
            },
        )
        pycache = self._primed_pycache(event)
        no_pyc = self.work / "pycache-no-tickerserve"
        with_pyc = {"PYTHONPYCACHEPREFIX": str(pycache)}
        package_dir = Path(tickerserve.__file__).resolve().parent
        shutil.copytree(pycache, no_pyc)
        shutil.rmtree(no_pyc / str(package_dir).lstrip("/"), ignore_errors=True)
        without = {"PYTHONPYCACHEPREFIX": str(no_pyc), "PYTHONDONTWRITEBYTECODE": "1"}
        variants = [
            ("tickerserve (sklearn blocked)", "tickerserve", with_pyc),
            ("baseline (imports sklearn)", "baseline", with_pyc),
            ("tickerserve, own code without .pyc (before)", "tickerserve", without),
        ]
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
        answers = []
        for _ in range(self.config.cold_samples):
            for name, side, env in variants:
                data = self._child(side, "cold", [event], self._fresh_env("cold", **env))
                if data["status"] != 200:
                    raise RuntimeError(f"{name}: first request answered {data}")
                if data["sklearn_imported"] != (side == "baseline"):
                    raise RuntimeError(f"{name}: sklearn_imported={data['sklearn_imported']}")
                answers.append(data["body"])
                samples[name].append(data)
        delta = max(_same_answer(answers[0], a) for a in answers)

        def med(name: str, key: str) -> float:
            return median([_phase(d, key) for d in samples[name]])

        base = variants[1][0]
        rows = []
        for name, _, _ in variants:
            rows.append(
                [
                    name,
                    ms(med(name, "startup")),
                    ms(med(name, "import")),
                    ms(med(name, "first")),
                    ms(med(name, "total")),
                    f"{med(name, 'total') / med(base, 'total'):.2f}",
                ]
            )
        say()
        say(
            table(
                f"3. Cold start in a fresh process (median of {self.config.cold_samples}; ms; "
                f"fresh /tmp cache dir per sample; POST /predict {COLD_TICKER}, large model)",
                [
                    "side",
                    "interpreter",
                    "import handler",
                    "first request",
                    "spawn -> answer",
                    "of baseline",
                ],
                rows,
            )
        )
        say(
            "   tickerserve child: sys.modules['sklearn'] = None before any import (the Lambda "
            "layer has no scikit-learn);\n   baseline child imports it (joblib.load needs it, "
            "inside its first request). Bytecode cached via\n   PYTHONPYCACHEPREFIX for both, "
            "as the layer and the function asset ship it; the last row removes\n   "
            "tickerserve's own .pyc, as the function asset was before it was compiled for the "
            "runtime (/var/task is\n   read-only, so Lambda compiled tickerserve on every cold "
            "start)."
        )
        say(
            "   first request = registry + metadata + model.txt GETs, sha256, Booster load "
            "(tickerserve) / 3 sequential\n   download_file + joblib.load + pickle.load "
            f"(baseline), then the prediction. Answers agree, max |dp| = {delta:.1e}"
        )
        return {name: {k: med(name, k) for k in ("import", "first", "total")} for name in samples}

    # -- 3b --------------------------------------------------------------------------------------
    def runtime(self) -> dict[str, Any] | None:
        """The synthesized assets under the Lambda runtime's Python (bench/runtime.py)."""
        from bench.runtime import local_store_copy, runtime_section
        from tickerserve.storage.store import S3Store

        model = ticker_model(COLD_TICKER)
        store = local_store_copy(S3Store(BUCKET), self.work / "runtime-store", model)
        event = rest_event(
            "/predict",
            {"ticker": COLD_TICKER, "features": _row_features(self._names(model), 2)},
        )
        return runtime_section(self.config.cold_samples, self.work, store, event)

    # -- 4 ---------------------------------------------------------------------------------------
    def rss(self) -> dict[str, Any]:
        """Peak RSS after requesting 50 ETF models + the universal one, one process each."""
        etf_models = [f"etfs/{t}" for t in LARGE_ETFS]
        tickers = [*LARGE_ETFS, STOCKS[0], STOCKS[1]]  # two stocks share the universal model
        events = [
            rest_event(
                "/predict",
                {"ticker": t, "features": _row_features(self._names(ticker_model(t)), 3)},
            )
            for t in tickers
        ]
        total = sum(self.sizes["native"][m] for m in [*etf_models, UNIVERSAL])
        budget_mb = max(1, int(total * BUDGET_FRACTION / 2**20))
        variants = [
            ("tickerserve, no budget", "tickerserve", {"memory_mb": "8192"}),
            (f"tickerserve, budget {budget_mb} MiB", "tickerserve", {"memory_mb": str(budget_mb)}),
            ("baseline (unbounded dict)", "baseline", {}),
        ]
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
        pycache = {"PYTHONPYCACHEPREFIX": str(self._primed_pycache(events[0]))}
        for _ in range(self.config.rss_samples):
            for name, side, extra in variants:
                data = self._child(side, "rss", events, self._fresh_env("rss", **extra, **pycache))
                if data["failures"]:
                    raise RuntimeError(f"{name}: {data['failures']} requests failed")
                samples[name].append(data)
        rows = []
        out: dict[str, Any] = {}
        for name, _side, _ in variants:
            runs = samples[name]
            imported = median([d["after_import"]["VmRSS"] for d in runs])
            peak = median([d["after_models"]["VmHWM"] for d in runs])
            first = median([d["after_first"]["VmRSS"] for d in runs])
            final = median([d["after_models"]["VmRSS"] for d in runs])
            loads = median([d["loads_ns"] for d in runs])
            used = runs[-1].get("used_bytes")
            budget = runs[-1].get("budget_bytes")
            out[name] = {"peak": peak, "first": first, "used": used, "budget": budget}
            rows.append(
                [
                    name,
                    str(runs[-1]["models_in_memory"]),
                    "-" if used is None else mib(used),
                    "-" if budget is None else mib(budget),
                    mib(imported),
                    mib(first),
                    mib(peak),
                    mib(final),
                    mib(peak - first),
                    f"{loads / 1e9:.2f}",
                ]
            )
        say()
        say(
            table(
                f"4. Memory: {len(tickers)} requests = 50 ETF models + {UNIVERSAL} "
                f"(AAPL, MSFT share it), one fresh process each (MiB)",
                [
                    "side",
                    "models kept",
                    "cache used",
                    "budget",
                    "RSS import",
                    "RSS 1st",
                    "peak RSS",
                    "RSS end",
                    "peak - 1st",
                    "load s",
                ],
                rows,
            )
        )
        say(
            f"   51 models = {mib(total)} MiB of model.txt (tickerserve accounts a model by its "
            f"artifact bytes); budget = {BUDGET_FRACTION:.0%} of that."
        )
        say(
            "   RSS import / 1st = VmRSS after importing the handler / after the first request "
            "(boto3, and for the baseline\n   lightgbm + scikit-learn, are imported by then); "
            "peak RSS = VmHWM; peak - 1st = growth from\n   the other 50 models; load s = wall "
            "time of the 52 requests (cold loads from moto)."
        )
        for name, _, _ in variants[:2]:
            used, budget = out[name]["used"], out[name]["budget"]
            say(f"   {name}: SERVICE.memory.used_bytes {used} <= budget {budget}: {used <= budget}")
        out["_total"] = total
        out["_variants"] = [v[0] for v in variants]
        return out

    def monitor(self) -> dict[str, Any]:
        """5. A monitor run over 250,000 captured rows (bench/monitor.py)."""
        return monitor_bench.run(samples=min(self.config.cold_samples, 3))

    def faults(self) -> dict[str, Any]:
        """7. Storage faults and unloadable files, now vs before (bench/faults.py)."""
        body = {"ticker": SMALL_ETF, "features": _row_features(self._names(f"etfs/{SMALL_ETF}"), 7)}
        models = {"small": f"etfs/{SMALL_ETF}", "large": ticker_model(WARM_LARGE_TICKER)}
        return faults_bench.run(self.endpoint, BUCKET, body, models)

    # -- 8 ---------------------------------------------------------------------------------------
    def capture(self) -> dict[str, Any]:
        """Capture off / on / on with a shadow challenger, small model (bench/capture.py)."""
        names = self._names(ticker_model(SMALL_ETF))
        events = [
            rest_event("/predict", {"ticker": SMALL_ETF, "features": _row_features(names, 500 + i)})
            for i in range(WARM_ROWS)
        ]
        result = capture_section(
            bucket=BUCKET,
            endpoint=self.endpoint,
            model=ticker_model(SMALL_ETF),
            events=events,
            context=self.context,
            calls=self.config.warm_calls * 2,
            warmup=self.config.warm_warmup,
            cache_dir=str(self.work / "capture-cache"),
        )
        # 8b: reading 250,000 outcomes back, per batch vs one object per outcome (scaled).
        quick = self.config.warm_calls < 3000
        result["outcomes"] = outcomes_section(
            endpoint=self.endpoint,
            one_each_local=10_000 if quick else 25_000,
            one_each_s3=2_000 if quick else 5_000,
        )
        return result

    # -- 9 ---------------------------------------------------------------------------------------
    def pipeline(self) -> dict[str, Any] | None:
        """This tree's prediction path against ``--against`` (bench/pipeline.py)."""
        assert self.models_root is not None
        tickers = [*BATCH_ETFS, *BATCH_STOCKS]
        models = []
        for name in sorted({ticker_model(t) for t in tickers}):
            stock = name == UNIVERSAL
            routes = dict.fromkeys(STOCKS, "stock") if stock else {name.split("/", 1)[1]: "etf"}
            folder = self.models_root / name / PRODUCTION
            models.append(
                {
                    "name": name,
                    "folder": str(folder),
                    "asset_class": "stock" if stock else "etf",
                    "routes": routes,
                }
            )
        return pipeline_bench.run(
            quick=self.config.warm_calls < 3000,
            against=self.against,
            work=self.work,
            models=models,
            single_bodies=self._warm_bodies(WARM_LARGE_TICKER),
            batch_items=self._batch_items(),
        )

    # -- 11 --------------------------------------------------------------------------------------
    def warnings(self) -> dict[str, Any]:
        """Feature ranges against none, on the same trees (bench/request_warnings.py)."""
        return warnings_section(
            bucket=BUCKET,
            endpoint=self.endpoint,
            cases=[
                ("small", ticker_model(SMALL_ETF), SMALL_ETF),
                ("large", ticker_model(WARM_LARGE_TICKER), WARM_LARGE_TICKER),
            ],
            context=self.context,
            calls=self.config.warm_calls * 2,
            warmup=self.config.warm_warmup,
            cache_dir=str(self.work / "warnings-cache"),
            rows=WARM_ROWS,
        )


def _block_ratios(baseline: list[int], ours: list[int]) -> tuple[float, float, float]:
    """Quartiles and median of the per-block ratios baseline p50 / our p50 over section 1's
    ``WARM_BLOCKS`` alternating blocks (each side's samples are its blocks one after another)."""
    size = len(ours) // WARM_BLOCKS
    ratios = sorted(
        median(baseline[i * size : (i + 1) * size]) / median(ours[i * size : (i + 1) * size])
        for i in range(WARM_BLOCKS)
    )
    return percentile(ratios, 25), median(ratios), percentile(ratios, 75)


def _phase(data: dict[str, Any], key: str) -> float:
    if key == "startup":
        return float(data["t_main"] - data["t_spawn"])
    if key == "import":
        return float(data["import_ns"])
    if key == "first":
        return float(data["first_request_ns"])
    return float(data["t_answered"] - data["t_spawn"])


def cost_tables(results: dict[str, Any]) -> str:
    """What a million warm predictions cost per front door (bench/costs.py), from this run's
    warm p50s (section 1), what capture added (section 8) and what the function wrote."""
    warm = results["warm"]
    (small_record, answer), (large_record, _) = warm["small"]["bytes"], warm["large"]["bytes"]
    note = ""
    if "capture" in results:
        wall = results["capture"]["wall"]
        capture_us = (wall["on"] - wall["off"]) / 1e3
    else:
        capture_us, note = 0.0, "\n   (section 8 not run: capture's own time counted as 0)"
    inputs = costs.inputs_from(
        small_ms=warm["small"]["ts"][0] / 1e6,
        large_ms=warm["large"]["ts"][0] / 1e6,
        capture_us=max(0.0, capture_us),
        small_record_bytes=small_record,
        large_record_bytes=large_record,
        answer_bytes=answer,
    )
    return "\n" + costs.tables(inputs) + note


def summary(results: dict[str, Any]) -> str:
    """The targets of issue 2 against what was measured."""
    rows: list[list[str]] = []
    warm = results.get("warm", {})
    for size in warm:
        ts50 = warm[size]["ts"][0]
        seed50 = warm[size]["seed"][0]
        rows.append([f"warm p50 <= 0.25 ms ({size} model)", f"{ms(ts50)} ms", _yes(ts50 <= 0.25e6)])
        rows.append(
            [
                f"warm p50 >= 3x baseline ({size} model)",
                ratio(seed50, ts50),
                _yes(seed50 >= 3 * ts50),
            ]
        )
    for size in warm:
        low, mid, high = warm[size]["block_ratio"]
        rows.append(
            [
                f"warm Api.handle, capture on, >= 6x baseline ({size} model)",
                f"{mid:.2f}x ({low:.2f}-{high:.2f})",
                _yes(mid >= 6),
            ]
        )
    if "cold" in results:
        rows.append(_cold_target(results["cold"]))
    if results.get("runtime"):
        rows.append(_runtime_target(results["runtime"]))
    if "batch" in results:
        rows += api_batch.target_rows(results["batch"]["api"])
    if "rss" in results:
        rows.append(_rss_target(results["rss"]))
    if "monitor" in results:
        rows += monitor_bench.target_rows(results["monitor"])
    if "families" in results:
        found = results["families"]
        rows += families.summary_rows(
            found["warm"], found["cold"], found.get("batches"), found.get("explanations")
        )
    if "faults" in results:
        rows += faults_bench.target_rows(results["faults"])
    if "capture" in results:
        rows += capture_targets(results["capture"])
    if "pipeline" in results:
        rows += pipeline_bench.target_rows(results["pipeline"])
    if "networks" in results:
        from bench import networks

        rows += networks.target_rows(results["networks"])
    if "warnings" in results:
        rows += warnings_targets(results["warnings"])
    return "\n" + table(
        "Targets (issues 2, 8, 9, 10, 11, 12, 16, 18, 20 and 21)",
        ["target", "measured", "met"],
        rows,
    )


def _cold_target(cold: dict[str, Any]) -> list[str]:
    ts_total = cold["tickerserve (sklearn blocked)"]["total"]
    seed_total = cold["baseline (imports sklearn)"]["total"]
    return [
        "cold start to first answer <= 0.30x baseline",
        f"{ts_total / seed_total:.2f} of baseline",
        _yes(ts_total <= 0.30 * seed_total),
    ]


def _runtime_target(runtime: dict[str, Any]) -> list[str]:
    from bench.runtime import AS_DEPLOYED

    imported, cpu = runtime[AS_DEPLOYED]["import"], runtime[AS_DEPLOYED]["import_cpu"]
    return [
        "handler import under Python 3.13, as deployed, <= 200 ms",
        f"{ms(imported)} ms (CPU {ms(cpu)} ms)",
        _yes(imported <= 200e6),
    ]


def _rss_target(rss: dict[str, Any]) -> list[str]:
    budget_name = rss["_variants"][1]
    used, budget = rss[budget_name]["used"], rss[budget_name]["budget"]
    return [
        "memory budget holds (used <= budget)",
        f"{mib(used)} <= {mib(budget)} MiB",
        _yes(used <= budget),
    ]


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"
