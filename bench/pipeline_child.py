"""One side of section 9 (``bench/pipeline.py``): one source tree's tickerserve in its own
processes, publishing the benchmark's models with that tree's code, then timing what the
parent asks for, block by block.

    PYTHONPATH={tree}/lambda_src python -m bench.pipeline_child publish {tree}/lambda_src SPEC
    PYTHONPATH={tree}/lambda_src python -m bench.pipeline_child serve {tree}/lambda_src SPEC

The tree is this checkout's ``lambda_src`` or an exported older one, so the modules are found
where each tree keeps them (``tickerserve.http.api`` now, ``tickerserve.api`` before the
layers became folders), and each tree writes the registry and bundles in its own schema (an
older tree refuses a newer registry). ``publish`` converts the cached seed classifiers'
boosters (the same trees for both sides) into a local folder store; ``serve`` answers from
it, settings from the environment (``TICKERSERVE_*``, the names both trees read).

``serve`` speaks one JSON object per line: it answers ``{"ready": ...}`` once warm (with the
answers and capture records the parent compares between the trees), then reads commands from
stdin (``{"op": "block", "single": N, "batch": M}`` or ``{"op": "quit"}``) and answers each
block with per-call durations in nanoseconds (wall clock and this thread's CPU time). Its file
descriptor 1 goes to /dev/null (Powertools logs and metrics); the protocol uses a copy of the
original.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.capture import drained_pipe
from bench.lambda_context import BenchContext

VARIANTS = ("single_off", "single_on", "batch_off", "batch_on")
# Where each tree keeps the API, the capture module, the service and the store: layers as
# folders (issue 16), then the flat package before it.
LAYOUTS = (
    (
        "tickerserve.http.api",
        "tickerserve.serving.capture",
        "tickerserve.serving.service",
        "tickerserve.storage.store",
    ),
    ("tickerserve.api", "tickerserve.capture", "tickerserve.service", "tickerserve.store"),
)


class _Records:
    """A capture sink that keeps the records it is given (the equivalence check)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.records.extend(json.loads(line) for line in data.splitlines() if line.strip())


def _modules() -> dict[str, Any]:
    """The API, capture, service and store modules wherever this tree keeps them."""
    import tickerserve

    for names in LAYOUTS:
        try:
            api, capture, service, store = (importlib.import_module(name) for name in names)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if not any(n == missing or n.startswith(f"{missing}.") for n in names):
                raise  # not the layout: a module of the tree lacks something it imports
            continue
        return {"api": api, "capture": capture, "service": service, "store": store}
    raise RuntimeError(f"no known module layout in {Path(tickerserve.__file__).parent}")


def publish(spec: dict[str, Any]) -> None:
    """Each model of ``spec`` as a bundle of this tree, from the cached seed artifacts."""
    import pickle

    import joblib

    from tickerserve.layout import DEFAULT_REGISTRY_KEY
    from tickerserve.publishing.demo import booster_bundle
    from tickerserve.publishing.release import publish_bundle

    store = _modules()["store"].LocalStore(spec["store"])
    for model in spec["models"]:
        folder = Path(model["folder"])
        clf = joblib.load(folder / "model.joblib")
        with open(folder / "label_encoder.pkl", "rb") as handle:
            encoder = pickle.load(handle)
        bundle = booster_bundle(
            model["name"],
            "1.0.0",
            [clf.booster_],
            feature_names=json.loads((folder / "feature_names.json").read_text()),
            classes=[str(c) for c in encoder.classes_],
            asset_class=model["asset_class"],
        )
        publish_bundle(store, bundle, registry_key=DEFAULT_REGISTRY_KEY, routes=model["routes"])


def _timed(fn: Callable[[], object], count: int) -> tuple[list[int], list[int]]:
    wall, cpu = [0] * count, [0] * count
    for i in range(count):
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        fn()
        cpu[i] = time.thread_time_ns() - c0
        wall[i] = time.perf_counter_ns() - w0
    return wall, cpu


def _checked(response: dict[str, Any]) -> dict[str, Any]:
    if response.get("statusCode") != 200:
        raise RuntimeError(f"answered {response}")
    body: dict[str, Any] = json.loads(response["body"])
    if "results" in body and body["failed"]:
        raise RuntimeError(f"{body['failed']} batch items failed: {body['results'][:2]}")
    return body


def serve(spec: dict[str, Any], protocol: Any) -> None:
    """Warm up, report the check answers, then time blocks until told to quit."""
    from tickerserve.settings import Settings

    modules = _modules()
    api_class, capture_class = modules["api"].Api, modules["capture"].Capture
    singles: list[dict[str, Any]] = spec["singles"]
    batch: dict[str, Any] = spec["batch"]
    context = BenchContext("bench-pipeline")
    service = modules["service"].ModelService(Settings.from_env())
    records = _Records()
    recorded = api_class(service, capture=capture_class(records))
    with drained_pipe() as pipe:
        logged = capture_class(modules["capture"].LogSink(pipe.fileno()))
        apis = {"off": api_class(service), "on": api_class(service, capture=logged)}
        # Warm: every model loaded, every event answered once by both APIs.
        for api in apis.values():
            for event in [*singles, batch]:
                _checked(api.handle(event, context))
        answers = [_checked(recorded.handle(event, context)) for event in spec["check"]]
        ready = {"answers": answers, "records": records.records}
        protocol.write(json.dumps({"ready": ready}) + "\n")
        cycle = {"i": 0}

        def single(api: Any) -> Callable[[], object]:
            def call() -> object:
                cycle["i"] = (cycle["i"] + 1) % len(singles)
                return api.handle(singles[cycle["i"]], context)

            return call

        fns = {
            "single_off": single(apis["off"]),
            "single_on": single(apis["on"]),
            "batch_off": lambda: apis["off"].handle(batch, context),
            "batch_on": lambda: apis["on"].handle(batch, context),
        }
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "quit":
                break
            gc.collect()
            out = {}
            for name in VARIANTS:
                count = command["batch" if name.startswith("batch") else "single"]
                out[name] = _timed(fns[name], count)
            protocol.write(json.dumps(out) + "\n")


def main() -> None:
    mode, tree, spec_path = sys.argv[1], Path(sys.argv[2]).resolve(), sys.argv[3]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    import tickerserve

    if not Path(tickerserve.__file__).resolve().is_relative_to(tree):
        raise RuntimeError(f"imported {tickerserve.__file__}, not the tree in {tree}")
    spec = json.loads(Path(spec_path).read_text())
    if mode == "publish":
        publish(spec)
    else:
        serve(spec, protocol)
    protocol.close()


if __name__ == "__main__":
    main()
