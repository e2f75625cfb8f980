"""Shared benchmark helpers: timing statistics, plain-text tables, a moto server, quiet stdout,
a fake Lambda context and API Gateway events. Imports nothing heavy."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"
REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


# -- statistics -------------------------------------------------------------------------------
def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def median(samples: Sequence[float]) -> float:
    """The median (mean of the two middle values for an even count)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2


def time_calls(
    fn: Callable[[], object], count: int, clock: Callable[[], int] = time.perf_counter_ns
) -> list[int]:
    """Duration of each of ``count`` calls, in nanoseconds (``perf_counter_ns`` by default)."""
    out = [0] * count
    for i in range(count):
        start = clock()
        fn()
        out[i] = clock() - start
    return out


def interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    total: int,
    warmup: int,
    blocks: int = 10,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> dict[str, list[int]]:
    """Per-call durations (ns) of each function, measured in alternating blocks so that a noisy
    neighbour on a shared machine hurts every contender alike. ``warmup`` untimed calls each."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    per_block = max(1, total // blocks)
    samples: dict[str, list[int]] = {name: [] for name in fns}
    for _ in range(blocks):
        for name, fn in fns.items():
            samples[name].extend(time_calls(fn, per_block, clock))
    return samples


# -- formatting -------------------------------------------------------------------------------
def ms(ns: float) -> str:
    """Nanoseconds as milliseconds with a sensible number of digits."""
    value = ns / 1e6
    if value < 1:
        return f"{value:.3f}"
    if value < 100:
        return f"{value:.2f}"
    return f"{value:.0f}"


def us(ns: float) -> str:
    return f"{ns / 1e3:.1f}"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f}"


def ratio(baseline: float, ours: float) -> str:
    """How many times faster (or smaller) ``ours`` is than ``baseline``."""
    if not ours or math.isnan(ours) or math.isnan(baseline):
        return "-"
    return f"{baseline / ours:.2f}x"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A fixed-width plain-text table; the first column is left-aligned, the others right."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "-" * len(line(cells[0]))
    body = [line(r) for r in cells[1:]]
    return "\n".join([title, rule, line(cells[0]), rule, *body, rule])


def say(text: str = "") -> None:
    """Print and flush (the benchmark's own output; handler output goes to /dev/null)."""
    print(text, flush=True)


# -- environment ------------------------------------------------------------------------------
def machine_info() -> list[tuple[str, str]]:
    """What the numbers were measured on."""
    cpu_model = "?"
    with contextlib.suppress(OSError):
        for raw in Path("/proc/cpuinfo").read_text().splitlines():
            if raw.startswith("model name"):
                cpu_model = raw.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("platform", platform.platform()),
        ("cpu", f"{cpu_model}; os.cpu_count()={os.cpu_count()}, usable={usable}"),
        ("load average at start", load),
        ("packages", _versions()),
    ]


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    names = [
        "lightgbm",
        "numpy",
        "scikit-learn",
        "xgboost-cpu",
        "treelite",
        "joblib",
        "aws-lambda-powertools",
        "boto3",
        "moto",
    ]
    out = []
    for name in names:
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} -")
    return ", ".join(out)


def vm_status() -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of this process in bytes, from /proc/self/status; falls back
    to ``ru_maxrss`` for the peak where /proc is unavailable."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for raw in Path("/proc/self/status").read_text().splitlines():
            key, _, value = raw.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    if "VmHWM" not in out:
        import resource

        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: Powertools' logger and EMF metrics (and the
    baseline's prints) write there, whatever Python object they hold for stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context object."""

    function_name: str = "tickerserve-bench"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tickerserve-bench"
    aws_request_id: str = "bench-00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/tickerserve-bench"
    log_stream_name: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def rest_event(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A real API Gateway REST (v1) proxy event from tests/events/ with another path and body."""
    source = "rest_batch.json" if path.endswith("/batch") else "rest_predict.json"
    event: dict[str, Any] = json.loads((EVENTS / source).read_text())
    event["path"] = event["resource"] = path
    event["requestContext"]["resourcePath"] = path
    event["requestContext"]["path"] = f"/prod{path}"
    event["body"] = json.dumps(body)
    return event


def real_event(name: str) -> dict[str, Any]:
    """An event file from tests/events/, unchanged."""
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


# -- moto -------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server in its own process on 127.0.0.1 (the one ``make serve`` starts)."""
    from tickerserve.cli.moto_process import moto_server as moto_server_process

    with moto_server_process("127.0.0.1", _free_port()) as endpoint:
        yield endpoint
