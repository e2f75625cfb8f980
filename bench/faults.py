"""Section 7: storage faults and unloadable model files, against the same-run baselines.

Every store call goes through a TCP fault proxy (``tests/fault_proxy.py``) in front of the
benchmark's moto server, which can black-hole (accept, never answer) or trickle (one byte every
half second) what S3 sends back. Measured in this process, through ``Api.handle`` with a REST
event, with the prediction function's own store configuration (``store.SERVING``):

- a warm request after the registry TTL, the store healthy (the baseline) and black-holed;
- a cold request with the store black-holed or trickling: time to the 503;
- the same two with the configuration tickerserve had before it bounded storage calls (no
  overall deadline, botocore's 10 s read timeout and 3 attempts, the re-check waited for on
  the request path), each once and given up after ``GIVE_UP`` seconds;
- a ``model.txt`` LightGBM aborts on (``num_leaves=abc``): the time to 503 ``invalid_model``
  (the process keeps serving), against loading it in process as before (in a child, which
  the abort kills);
- the crash-isolating probe's cost on the cold path: a model's first load in a process (a
  forked child loads and predicts first) against a load whose verdict is already known.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import FAKE_CREDENTIALS, ROOT, median, ms, percentile, quiet_stdout, say, table

GIVE_UP = 60.0  # seconds a pre-fix measurement may take before it is reported as "> 60 s"
WARM_REQUESTS = 200
HEALTHY_RECHECKS = 30
PROBE_SAMPLES = 5


class ManualClock:
    """The service's monotonic clock, moved by hand past the registry TTL."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _finish(work: Callable[[], Any], give_up: float) -> tuple[float, Any]:
    """Seconds ``work`` took and its result (or exception); (inf, None) if still running."""
    outcome: list[Any] = []

    def run() -> None:
        started = time.perf_counter()
        try:
            result: Any = work()
        except Exception as exc:
            result = exc
        outcome.append((time.perf_counter() - started, result))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(give_up)
    return outcome[0] if outcome else (float("inf"), None)


class Faults:
    """Builds services over a proxied bucket and measures them."""

    def __init__(self, endpoint: str, bucket: str, body: dict[str, Any], work: Path) -> None:
        self.endpoint, self.bucket, self.body, self.work = endpoint, bucket, body, work
        self.event = _event(body)

    def api(self, proxy_url: str, *, legacy: bool, clock: ManualClock, tag: str) -> tuple[Any, Any]:
        from tickerserve.http.api import Api
        from tickerserve.serving.service import REGISTRY_WAIT, ModelService
        from tickerserve.settings import Settings
        from tickerserve.storage.store import SERVING, S3Store, Timeouts

        # Before: no overall deadline (botocore's own 10 s read timeout, 3 attempts) and the
        # registry re-check waited for on the request path.
        timeouts = Timeouts(call=3600.0, min_rate=1.0) if legacy else SERVING
        store = S3Store(self.bucket, endpoint_url=proxy_url, region="us-east-1", timeouts=timeouts)
        settings = Settings(bucket=self.bucket, cache_dir=str(self.work / tag), registry_ttl=60)
        wait = 3600.0 if legacy else REGISTRY_WAIT
        service = ModelService(settings, store, clock=clock, registry_wait=wait)
        return Api(service), service

    def status(self, api: Any) -> tuple[int, str | None]:
        response = api.handle(self.event, None)
        body = json.loads(response["body"])
        return response["statusCode"], (body.get("error") or {}).get("code")


def _event(body: dict[str, Any]) -> dict[str, Any]:
    from bench.common import rest_event

    return rest_event("/predict", body)


def run(endpoint: str, bucket: str, body: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
    """The measurements of section 7; ``models`` maps "small"/"large" to (model, version)."""
    from tests.fault_proxy import FaultProxy

    os.environ.update(FAKE_CREDENTIALS)
    work = Path(tempfile.mkdtemp(prefix="tickerserve-faults-"))
    faults = Faults(endpoint, bucket, body, work)
    out: dict[str, Any] = {}
    with quiet_stdout():
        # Pre-fix runs take tens of seconds each: start them first, side by side.
        legacy: dict[str, tuple[float, Any]] = {}
        threads = [
            threading.Thread(target=_legacy, args=(faults, FaultProxy, name, legacy), daemon=True)
            for name in ("warm black_hole", "cold black_hole", "cold trickle")
        ]
        for thread in threads:
            thread.start()
        out["warm"] = _warm(faults, FaultProxy)
        out["cold"] = {
            fault: _cold(faults, FaultProxy, fault) for fault in ("black_hole", "trickle")
        }
        out["abort"] = _abort(faults, work)
        out["probe"] = _probe(endpoint, bucket, models)
        for thread in threads:
            thread.join(GIVE_UP + 30)
    out["legacy"] = legacy
    say(_report(out))
    return out


def _warm(faults: Faults, proxy_class: Any) -> dict[str, Any]:
    with proxy_class(faults.endpoint) as proxy:
        clock = ManualClock()
        api, service = faults.api(proxy.url, legacy=False, clock=clock, tag="warm")
        assert faults.status(api)[0] == 200  # cold: registry, metadata, model
        # Baseline: the store healthy, every request after the TTL (one conditional GET each)
        healthy = []
        for _ in range(HEALTHY_RECHECKS):
            clock.now += 61
            healthy.append(_timed(lambda: faults.status(api)))
        within_ttl = [_timed(lambda: faults.status(api)) for _ in range(WARM_REQUESTS)]
        # The store black-holed: the first request after the TTL starts the re-check and waits
        # 30 ms for it; the ones after it answer from memory while it hangs
        proxy.black_hole()
        clock.now += 61
        first = _timed(lambda: faults.status(api))
        later = [_timed(lambda: faults.status(api)) for _ in range(WARM_REQUESTS)]
        statuses = {faults.status(api)[0] for _ in range(3)}
        proxy.passthrough()
        return {
            "healthy_recheck": healthy,
            "within_ttl": within_ttl,
            "first": first,
            "later": later,
            "statuses": statuses,
            "failures": service.counters.registry_failures,
        }


def _cold(faults: Faults, proxy_class: Any, fault: str) -> dict[str, Any]:
    with proxy_class(faults.endpoint) as proxy:
        api, _ = faults.api(proxy.url, legacy=False, clock=ManualClock(), tag=f"cold-{fault}")
        getattr(proxy, fault)()
        seconds, result = _finish(lambda: faults.status(api), GIVE_UP)
        return {"seconds": seconds, "status": result}


def _legacy(faults: Faults, proxy_class: Any, name: str, into: dict[str, Any]) -> None:
    """One pre-fix measurement (its own proxy and service), in a thread."""
    kind, fault = name.split(" ")
    with proxy_class(faults.endpoint) as proxy:
        clock = ManualClock()
        tag = f"legacy-{kind}-{fault}"
        api, _ = faults.api(proxy.url, legacy=True, clock=clock, tag=tag)
        if kind == "warm":
            faults.status(api)
            clock.now += 61
        getattr(proxy, fault)()
        into[name] = _finish(lambda: faults.status(api), GIVE_UP)
        proxy.passthrough()


def _timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter_ns()
    work()
    return float(time.perf_counter_ns() - started)


def _abort(faults: Faults, work: Path) -> dict[str, Any]:
    """A version whose model.txt LightGBM aborts on, published and aliased like any other."""
    from tickerserve.layout import DEFAULT_REGISTRY_KEY
    from tickerserve.publishing.release import publish_bundle
    from tickerserve.storage.bundle import make_bundle, read_bundle
    from tickerserve.storage.store import S3Store

    store = S3Store(faults.bucket, endpoint_url=faults.endpoint, region="us-east-1")
    model = f"etfs/{faults.body['ticker']}"
    good = read_bundle(store, model, "1.0.0")
    garbled = re.sub(rb"num_leaves=\d+", b"num_leaves=abc", good.files["model.txt"], count=1)
    broken = make_bundle(replace(good.metadata, model="etfs/ABRT"), {"model.txt": garbled})
    publish_bundle(store, broken, registry_key=DEFAULT_REGISTRY_KEY, routes={"ABRT": "etf"})
    api, _ = faults.api(faults.endpoint, legacy=False, clock=ManualClock(), tag="abort")
    aborting = Faults(faults.endpoint, faults.bucket, {**faults.body, "ticker": "ABRT"}, work)
    seconds, answer = _finish(lambda: aborting.status(api), GIVE_UP)
    alive = faults.status(api)  # and the process still answers for a good model
    # Before: the same bytes loaded in process, as the function did (in a child: it dies)
    path = work / "garbled-model.txt"
    path.write_bytes(garbled)
    child = (
        "import sys, time, lightgbm\n"
        "text = open(sys.argv[1]).read()\n"
        "print(time.perf_counter(), flush=True)\n"
        "lightgbm.Booster(model_str=text)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", child, str(path)],
        capture_output=True,
        text=True,
        timeout=GIVE_UP,
        cwd=ROOT,
    )
    ended = time.perf_counter()  # same clock (CLOCK_MONOTONIC) in both processes
    started = float(result.stdout.split()[0])
    return {
        "seconds": seconds,
        "answer": answer,
        "alive": alive,
        "before_returncode": result.returncode,
        "before_seconds": ended - started,
    }


def _probe(endpoint: str, bucket: str, models: dict[str, Any]) -> dict[str, Any]:
    """First load in a process (probe in a forked child, then in process) vs a load whose
    verdict is cached (in process only), per model size."""
    from tickerserve.members import safe_load
    from tickerserve.serving.model import LoadedModel
    from tickerserve.storage.bundle import read_bundle
    from tickerserve.storage.store import S3Store

    store = S3Store(bucket, endpoint_url=endpoint, region="us-east-1")
    out: dict[str, Any] = {}
    for size, model in models.items():
        bundle = read_bundle(store, model, "1.0.0")
        load = partial(LoadedModel, bundle.metadata, bundle.files)
        probed, cached = [], []
        for _ in range(PROBE_SAMPLES):
            safe_load.clear_verdicts()
            probed.append(_timed(load))
            cached.append(_timed(load))
        out[size] = {"model": model, "probed": probed, "cached": cached}
    return out


def _seconds(value: float) -> str:
    return f"> {GIVE_UP:.0f} s (given up)" if value == float("inf") else f"{value:.2f} s"


def _report(out: dict[str, Any]) -> str:
    warm, cold, legacy, abort, probe = (
        out["warm"], out["cold"], out["legacy"], out["abort"], out["probe"]
    )  # fmt: skip
    warm_before = legacy.get("warm black_hole", (float("inf"), None))[0]
    rows = [
        ["warm, within the TTL (no I/O)", "healthy", f"{ms(median(warm['within_ttl']))} ms", "-"],
        [
            "warm, after the TTL (one conditional GET)",
            "healthy",
            f"{ms(median(warm['healthy_recheck']))} ms",
            "-",
        ],
        [
            "warm, after the TTL: the request starting the re-check",
            "black hole",
            f"{ms(warm['first'])} ms",
            _seconds(warm_before),
        ],
        [
            "warm, after the TTL: the next requests, p50 / p99",
            "black hole",
            f"{ms(median(warm['later']))} / {ms(percentile(warm['later'], 99))} ms",
            "(each waits like the first)",
        ],
    ]
    for fault, name in (("black_hole", "black hole"), ("trickle", "trickle")):
        status = cold[fault]["status"]
        rows.append(
            [
                f"cold request: time to the 503 ({status[1] if status else '?'})",
                name,
                _seconds(cold[fault]["seconds"]),
                _seconds(legacy.get(f"cold {fault}", (float("inf"), None))[0]),
            ]
        )
    answer = abort["answer"]
    rows.append(
        [
            f"model.txt LightGBM aborts on: answer ({answer[1] if answer else '?'}), process alive",
            "garbled file",
            f"{abort['seconds'] * 1000:.0f} ms, {abort['alive'][0] == 200}",
            f"killed ({_signal(abort['before_returncode'])}) after "
            f"{abort['before_seconds'] * 1000:.0f} ms",
        ]
    )
    faults = table(
        "7. Storage faults and unloadable files (tickerserve now vs before, same run)",
        ["request", "store / file", "now", "before"],
        rows,
    )
    probe_rows = [
        [
            f"{size} ({p['model']})",
            f"{ms(median(p['probed']))}",
            f"{ms(median(p['cached']))}",
            f"{ms(median(p['probed']) - median(p['cached']))}",
        ]
        for size, p in probe.items()
    ]
    probes = table(
        f"7b. Crash-isolating probe on the cold path (median of {PROBE_SAMPLES}; ms)",
        ["model", "first load (probe + load)", "load, verdict known", "probe cost"],
        probe_rows,
    )
    notes = "\n".join(
        [
            "   before = the configuration tickerserve had before storage calls were bounded (no",
            "   overall deadline, botocore read timeout 10 s x 3 attempts, the registry check on",
            f"   the request path), measured in the same run, given up after {GIVE_UP:.0f} s;",
            "   trickle = one byte every 0.5 s. Warm black hole: answers "
            f"{sorted(warm['statuses'])}, {warm['failures']} registry failure(s) counted",
            "   so far (the re-check gives up at its 5 s deadline, then backs off).",
        ]
    )
    return "\n" + faults + "\n" + notes + "\n\n" + probes


def _signal(returncode: int) -> str:
    import signal

    return signal.Signals(-returncode).name if returncode < 0 else f"exit {returncode}"


def target_rows(out: dict[str, Any]) -> list[list[str]]:
    """Issue 8's targets against this section's figures."""
    first = out["warm"]["first"]
    cold = max(out["cold"][f]["seconds"] for f in ("black_hole", "trickle"))
    answer = out["abort"]["answer"]
    return [
        [
            "warm request, store black-holed: answered from memory in ms",
            f"{ms(first)} ms",
            "yes" if first < 0.1e9 else "NO",
        ],
        [
            "every storage call ends well inside 29 s (cold 503)",
            _seconds(cold),
            "yes" if cold < 10 else "NO",
        ],
        [
            "unloadable model.txt: 503 invalid_model, process alive",
            f"{answer[0] if answer else '?'} {answer[1] if answer else ''}",
            "yes" if answer == (503, "invalid_model") and out["abort"]["alive"][0] == 200 else "NO",
        ],
    ]
