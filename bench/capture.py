"""Section 8: what capture and shadow add to a warm single prediction.

Three APIs over the same moto bucket, measured in alternating blocks on the same events:
capture off; capture on (records printed as log lines, here into a pipe another process
drains, as the Lambda runtime does with the function's stdout); capture on with a shadow
challenger (another version of the same model under alias ``challenger``, loaded before
timing). Beside them, the pieces timed on their own: the challenger's one-row predict, and
building + serializing + writing one capture record (with orjson, and with the standard
``json`` module for comparison).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TextIO

from bench.common import interleaved, percentile, quiet_stdout, say, table, us

CHALLENGER = "challenger"


@contextmanager
def drained_pipe() -> Iterator[TextIO]:
    """A text stream into a pipe that another process reads and discards, as the Lambda
    runtime reads the function's stdout."""
    read_fd, write_fd = os.pipe()
    reader = subprocess.Popen(["cat"], stdin=read_fd, stdout=subprocess.DEVNULL)
    os.close(read_fd)
    stream = open(write_fd, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    try:
        yield stream
    finally:
        stream.close()
        reader.wait(timeout=10)


def capture_section(
    *,
    bucket: str,
    endpoint: str,
    model: str,
    events: list[dict[str, Any]],
    context: Any,
    calls: int,
    warmup: int,
    cache_dir: str,
) -> dict[str, Any]:
    """Warm p50 with capture off, on, and on with a shadow challenger; returns the p50s (ns)."""
    import boto3

    from tickerserve.http.api import Api
    from tickerserve.layout import DEFAULT_REGISTRY_KEY
    from tickerserve.publishing.release import publish
    from tickerserve.serving.capture import Capture, LogSink, dumps, features_used, new_record
    from tickerserve.serving.predict import predict
    from tickerserve.serving.service import ModelService
    from tickerserve.settings import Settings
    from tickerserve.storage.bundle import read_bundle
    from tickerserve.storage.registry import ShadowSettings, read_registry, update_registry
    from tickerserve.storage.store import S3Store

    store = S3Store(bucket, client=boto3.client("s3", endpoint_url=endpoint))
    production = read_registry(store, DEFAULT_REGISTRY_KEY).registry.resolve(model)
    # The challenger: the same trees published again as the next version (its predict time
    # is then the champion's, which the table measures).
    bundle = read_bundle(store, model, production.version)
    publish(store, bundle, registry_key=DEFAULT_REGISTRY_KEY, model=model, aliases=[CHALLENGER])

    def service() -> ModelService:
        # A TTL longer than the run: each API keeps the registry it started with.
        settings = Settings(bucket=bucket, cache_dir=cache_dir, registry_ttl=1e9)
        return ModelService(settings, store=store)

    with drained_pipe() as pipe:
        sink = LogSink(pipe.fileno())
        plain = service()
        apis = {"off": Api(plain), "on": Api(plain, capture=Capture(sink))}
        plain.registry()  # read before the shadow is turned on, and kept (TTL)
        update_registry(
            store, DEFAULT_REGISTRY_KEY, lambda r: r.set_shadow(model, ShadowSettings(CHALLENGER))
        )
        shadowed = Api(service(), capture=Capture(sink))
        apis["shadow"] = shadowed
        with quiet_stdout():
            for api in apis.values():
                for event in events[:4]:
                    answer = api.handle(event, context)
                    if answer["statusCode"] != 200:
                        raise RuntimeError(f"capture bench: {answer}")
            if not shadowed.challengers.wait_idle(60):
                raise RuntimeError("the challenger did not load")
        challenger, _ = shadowed.service.load(
            shadowed.service.registry().resolve(model, alias=CHALLENGER)
        )
        bodies = [json.loads(e["body"]) for e in events]
        rows = [challenger.schema.row(b["features"]).reshape(1, -1) for b in bodies]
        answer = json.loads(apis["on"].handle(events[0], context)["body"])
        resolved = plain.registry().resolve(model)

        def record_and_write(serialize: Callable[[dict[str, Any]], bytes]) -> Callable[[], None]:
            def run() -> None:
                record = new_record(
                    request_id=answer["request_id"],
                    source="api",
                    ticker=answer["ticker"],
                    timeframe=None,
                    resolved=resolved,
                    role="champion",
                    answer=answer,
                    features=features_used(challenger.schema.used_names, rows[0][0]),
                    challengers=[],
                    latency_us=150,
                )
                sink.write(serialize(record))

            return run

        def std_json(record: dict[str, Any]) -> bytes:
            record = {**record, "time": record["time"].isoformat().replace("+00:00", "Z")}
            return (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()

        cycle = _Cycle(len(events))
        fns: dict[str, Callable[[], object]] = {
            name: partial(_handle, api, events, cycle, context) for name, api in apis.items()
        }
        # The same three without the HTTP layer (Powertools resolver, JSON answer): the part
        # of the request that capture and shadow actually change.
        services = {"off": apis["off"], "on": apis["on"], "shadow": shadowed}
        for name, api in services.items():
            fns[f"predict_{name}"] = partial(_predict, predict, api, bodies, cycle, name != "off")
        # The challenger's own work for a request, measured where the shadow does it: right
        # after the champion's prediction (its trees evicted from the caches), aligning the
        # request's features to its inputs and predicting. Timed as (champion + challenger)
        # minus champion alone.
        champion, _ = plain.load(resolved)

        def champion_only() -> object:
            features = bodies[cycle()]["features"]
            return champion.predict(champion.schema.row(features).reshape(1, -1))

        def champion_and_challenger() -> object:
            features = bodies[cycle()]["features"]
            champion.predict(champion.schema.row(features).reshape(1, -1))
            return challenger.predict(challenger.schema.row(features).reshape(1, -1))

        fns["champion"] = champion_only
        fns["both"] = champion_and_challenger
        fns["record"] = record_and_write(dumps)
        fns["record_json"] = record_and_write(std_json)
        gc.collect()
        with quiet_stdout():
            # Many short blocks: load from other processes hits every variant alike. CPU time
            # of this thread beside wall time: preemption by other processes (this machine is
            # shared) inflates the wall clock only.
            samples = interleaved(fns, total=calls, warmup=warmup, blocks=50)
            cpu = interleaved(fns, total=calls, warmup=0, blocks=50, clock=time.thread_time_ns)
    p50 = {k: percentile(v, 50) for k, v in samples.items()}
    p50_cpu = {k: percentile(v, 50) for k, v in cpu.items()}
    for stats in (p50, p50_cpu):
        stats["challenger"] = stats["both"] - stats["champion"]
    labels = [
        ("off", "Api.handle, capture off"),
        ("on", "Api.handle, capture on (one log line per prediction)"),
        ("shadow", "Api.handle, capture on + shadow challenger"),
        ("predict_off", "predict() only, capture off"),
        ("predict_on", "predict() only, capture on"),
        ("predict_shadow", "predict() only, capture on + shadow"),
    ]
    rows_out = [
        [
            label,
            us(percentile(samples[key], 10)),
            us(p50[key]),
            us(percentile(samples[key], 99)),
            f"{(p50[key] - p50[_base(key)]) / 1e3:+.1f}",
            us(p50_cpu[key]),
            f"{(p50_cpu[key] - p50_cpu[_base(key)]) / 1e3:+.1f}",
        ]
        for key, label in labels
    ]
    say()
    say(
        table(
            f"8. Capture and shadow: warm single prediction ({model}; {len(samples['off'])} "
            f"timed calls per row, interleaved in 50 blocks; us)",
            ["variant", "p10", "p50", "p99", "p50 vs off", "CPU p50", "CPU vs off"],
            rows_out,
        )
    )
    say(
        f"   pieces (p50 us, wall / CPU): the challenger's own work (align its row, predict) "
        f"{us(p50['challenger'])} / {us(p50_cpu['challenger'])}; one capture record built, "
        f"serialized with orjson and written {us(p50['record'])} / {us(p50_cpu['record'])} "
        f"(with the json module {us(p50['record_json'])} / {us(p50_cpu['record_json'])})"
    )
    say(
        "   'vs off' is against the same layer with capture off; 'on' writes each record to a "
        "pipe that another process\n   drains (as the Lambda runtime reads stdout), so it "
        "includes waking that reader. CPU = this thread's CPU time\n   (unaffected by "
        "preemption on this shared machine; not by cache contention)."
    )
    return {"wall": p50, "cpu": p50_cpu}


def _handle(api: Any, events: list[dict[str, Any]], cycle: _Cycle, context: Any) -> object:
    return api.handle(events[cycle()], context)


def _predict(
    predict: Callable[..., Any], api: Any, bodies: list[Any], cycle: _Cycle, recording: bool
) -> object:
    if not recording:
        return predict(api.service, bodies[cycle()])
    return predict(api.service, bodies[cycle()], capture=api.capture, challengers=api.challengers)


def _base(key: str) -> str:
    return "predict_off" if key.startswith("predict_") else "off"


class _Cycle:
    """0, 1, ..., n-1, 0, ...: distinct rows per call."""

    def __init__(self, n: int) -> None:
        self.n, self.i = n, 0

    def __call__(self) -> int:
        self.i = (self.i + 1) % self.n
        return self.i


def capture_targets(result: dict[str, Any]) -> list[list[str]]:
    """Issue 11's targets against what section 5 measured (wall clock and CPU time, through
    the whole handler and for predict() alone)."""
    rows = []
    for clock in ("wall", "cpu"):
        p50 = result[clock]
        allowed = p50["challenger"] + 10e3
        for prefix, layer in (("", "Api.handle"), ("predict_", "predict()")):
            added = p50[f"{prefix}on"] - p50[f"{prefix}off"]
            shadow = p50[f"{prefix}shadow"] - p50[f"{prefix}on"]
            rows += [
                [
                    f"capture adds <= 10 us p50 ({layer}, {clock})",
                    f"{added / 1e3:+.1f} us",
                    _yes(added <= 10e3),
                ],
                [
                    f"shadow adds <= challenger's work + 10 us ({layer}, {clock})",
                    f"{shadow / 1e3:+.1f} <= {allowed / 1e3:.1f} us",
                    _yes(shadow <= allowed),
                ],
            ]
    return rows


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"
