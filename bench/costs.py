"""What a million warm predictions cost behind each front door (``apiType``), capture on and
off, worked from measured inputs and AWS's list prices.

    .venv/bin/python -m bench.costs --small-ms 0.212 --large-ms 0.340 --capture-us 13.6 \\
        --small-record-bytes 905 --large-record-bytes 1690 --answer-bytes 420

``bench/run.py`` prints the same tables at the end of a run that measured those inputs (the
whole handler's warm p50 per model in section 1, what capture adds in section 8, the capture
line and the answer the handler wrote), with the command line that reproduces them. The
function's memory and architecture come from the ``dev`` stage in ``cdk.json``.

Counted per warm prediction: the front door's request price, Lambda's request price and billed
duration (the handler's measured p50 plus the Lambda runtime's own work per invocation,
rounded up to Lambda's 1 ms), CloudWatch Logs ingestion of Lambda's START/END/REPORT lines
and of the access log line (REST and HTTP APIs), X-Ray's sampled traces, data transfer of the
answer, and with capture the record's log line, Firehose and S3. Not counted: cold starts,
requests the gateway refuses, alarms, dashboards and storage of the models (README).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
from dataclasses import dataclass
from typing import Literal

from bench.common import ROOT, table

FrontDoor = Literal["rest", "http", "url"]
FRONT_DOORS: tuple[FrontDoor, ...] = ("rest", "http", "url")
MILLION = 1_000_000
GB = 1e9  # AWS bills data in decimal gigabytes

# AWS list prices, us-east-1, on demand, no free tier (2025; check the pricing pages).
API_REQUEST_PRICE: dict[FrontDoor, float] = {
    "rest": 3.50 / MILLION,  # REST API, first 333 million a month
    "http": 1.00 / MILLION,  # HTTP API, first 300 million; a request is metered per 512 KB
    "url": 0.0,  # a function URL costs nothing beyond the function
}
LAMBDA_REQUEST = 0.20 / MILLION
LAMBDA_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LOGS_INGESTION_PER_GB = 0.50
XRAY_PER_TRACE = 5.00 / MILLION
XRAY_SAMPLED = 0.05  # the default rule: the first request each second, then 5 %
TRANSFER_OUT_PER_GB = 0.09
FIREHOSE_INGESTION_PER_GB = 0.029
FIREHOSE_PARTITIONING_PER_GB = 0.020
S3_PER_GB_MONTH = 0.023

# Sizes this script does not measure: Lambda's START, END and REPORT lines per invocation
# (about 0.4 KB together) and one access log line (REST's standard JSON fields, the HTTP
# API's equivalent: about 0.35 KB).
LAMBDA_LOG_BYTES = 400
ACCESS_LOG_BYTES = 350
ACCESS_LOGGED: dict[FrontDoor, bool] = {"rest": True, "http": True, "url": False}
# The Lambda runtime's own work per invocation (receive the event, send the answer), beyond
# the handler the benchmark times: about 1 ms in the REPORT lines of small Python functions.
RUNTIME_MS = 1.0
# Capture records land in S3 as gzip JSON lines (about 4x smaller), kept capture.retentionDays.
GZIP_RATIO = 4.0
RETENTION_MONTHS = 3.0  # the default retentionDays: 90


@dataclass(frozen=True)
class Workload:
    """One model's warm prediction as measured."""

    label: str
    handler_ms: float  # the whole handler's warm p50, capture off
    record_bytes: int  # its capture record, one log line


@dataclass(frozen=True)
class Inputs:
    """Everything the tables are worked from."""

    workloads: tuple[Workload, ...]
    capture_ms: float  # what capture adds to a warm request (p50)
    answer_bytes: int  # the answer's body
    memory_mb: int
    architecture: str
    runtime_ms: float = RUNTIME_MS

    def command(self) -> str:
        """The command line that prints these tables again."""
        small, large = self.workloads
        args = [
            ".venv/bin/python", "-m", "bench.costs",
            "--small-ms", f"{small.handler_ms:.3f}", "--large-ms", f"{large.handler_ms:.3f}",
            "--capture-us", f"{self.capture_ms * 1000:.1f}",
            "--small-record-bytes", str(small.record_bytes),
            "--large-record-bytes", str(large.record_bytes),
            "--answer-bytes", str(self.answer_bytes),
        ]  # fmt: skip
        return shlex.join(args)


def billed_ms(inputs: Inputs, workload: Workload, capture: bool) -> int:
    """Lambda's billed duration of one warm invocation (rounded up to 1 ms)."""
    ms = workload.handler_ms + inputs.runtime_ms + (inputs.capture_ms if capture else 0.0)
    return max(1, math.ceil(ms))


def line_items(
    inputs: Inputs, workload: Workload, front: FrontDoor, *, capture: bool
) -> dict[str, float]:
    """Dollars per million warm predictions, item by item."""
    gb_seconds = billed_ms(inputs, workload, capture) / 1000 * inputs.memory_mb / 1024
    log_bytes = LAMBDA_LOG_BYTES + (ACCESS_LOG_BYTES if ACCESS_LOGGED[front] else 0)
    items = {
        "front door requests": API_REQUEST_PRICE[front],
        "Lambda requests": LAMBDA_REQUEST,
        "Lambda duration": gb_seconds * LAMBDA_GB_SECOND[inputs.architecture],
        "CloudWatch Logs (Lambda lines, access log)": log_bytes / GB * LOGS_INGESTION_PER_GB,
        "X-Ray (5 % sampled)": XRAY_SAMPLED * XRAY_PER_TRACE,
        "data transfer out (the answer)": inputs.answer_bytes / GB * TRANSFER_OUT_PER_GB,
    }
    if capture:
        record = workload.record_bytes / GB
        items |= {
            "capture: CloudWatch Logs (the record's line)": record * LOGS_INGESTION_PER_GB,
            "capture: Firehose (ingestion, partitioning)": record
            * (FIREHOSE_INGESTION_PER_GB + FIREHOSE_PARTITIONING_PER_GB),
            "capture: S3 (gzip, kept 90 days)": record
            / GZIP_RATIO
            * S3_PER_GB_MONTH
            * RETENTION_MONTHS,
        }
    return {name: dollars * MILLION for name, dollars in items.items()}


def total(inputs: Inputs, workload: Workload, front: FrontDoor, *, capture: bool) -> float:
    return sum(line_items(inputs, workload, front, capture=capture).values())


def tables(inputs: Inputs) -> str:
    """The totals per front door and capture setting, and the items of the large model's."""
    small, large = inputs.workloads
    totals = [
        [
            front if not capture else "",
            "on" if capture else "off",
            *(_cell(inputs, w, front, capture) for w in inputs.workloads),
        ]
        for front in FRONT_DOORS
        for capture in (False, True)
    ]
    head = (
        f"What a million warm predictions cost (us-east-1 list prices; {inputs.memory_mb} MB "
        f"{inputs.architecture}; billed ms per invocation and $ per million)"
    )
    out = [
        table(head, ["apiType", "capture", small.label, large.label], totals),
        "   billed ms = the handler's warm p50 (+ capture's) + "
        f"{inputs.runtime_ms:g} ms for the Lambda runtime's own work, rounded up to 1 ms; "
        f"each further ms costs ${_per_ms(inputs):.3f} per million",
    ]
    names = list(line_items(inputs, large, "rest", capture=True))
    rows = [[name, *(_item(inputs, large, front, name) for front in FRONT_DOORS)] for name in names]
    rows.append(
        [
            "total, capture on (off)",
            *(
                f"{total(inputs, large, f, capture=True):.2f} "
                f"({total(inputs, large, f, capture=False):.2f})"
                for f in FRONT_DOORS
            ),
        ]
    )
    out.append(
        table(
            f"Item by item, {large.label}, capture on ($ per million warm predictions)",
            ["item", *FRONT_DOORS],
            rows,
        )
    )
    out.append(f"   reproduce: {inputs.command()}")
    return "\n".join(out)


def _cell(inputs: Inputs, workload: Workload, front: FrontDoor, capture: bool) -> str:
    dollars = total(inputs, workload, front, capture=capture)
    return f"{billed_ms(inputs, workload, capture)} ms  ${dollars:.2f}"


def _item(inputs: Inputs, workload: Workload, front: FrontDoor, name: str) -> str:
    value = line_items(inputs, workload, front, capture=True)[name]
    return "-" if value == 0 else f"{value:.3f}"


def _per_ms(inputs: Inputs) -> float:
    return inputs.memory_mb / 1024 / 1000 * LAMBDA_GB_SECOND[inputs.architecture] * MILLION


def dev_stage() -> tuple[int, str]:
    """Memory and architecture of the default stage, as ``cdk.json`` sets them."""
    from infra.config import load_config

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    config = load_config(context.get)
    return config.memory_mb, config.architecture


def inputs_from(
    *,
    small_ms: float,
    large_ms: float,
    capture_us: float,
    small_record_bytes: int,
    large_record_bytes: int,
    answer_bytes: int,
) -> Inputs:
    memory_mb, architecture = dev_stage()
    return Inputs(
        workloads=(
            Workload("small model (12 features)", small_ms, small_record_bytes),
            Workload("large model (36 features)", large_ms, large_record_bytes),
        ),
        capture_ms=capture_us / 1000,
        answer_bytes=answer_bytes,
        memory_mb=memory_mb,
        architecture=architecture,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-ms", type=float, required=True, help="warm p50, small model")
    parser.add_argument("--large-ms", type=float, required=True, help="warm p50, large model")
    parser.add_argument("--capture-us", type=float, required=True, help="what capture adds")
    parser.add_argument("--small-record-bytes", type=int, required=True)
    parser.add_argument("--large-record-bytes", type=int, required=True)
    parser.add_argument("--answer-bytes", type=int, required=True)
    args = parser.parse_args(argv)
    print(tables(inputs_from(**vars(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
