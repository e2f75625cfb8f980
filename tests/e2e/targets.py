"""Where the loop runs: a deployed stage (``make e2e``) or this machine (``make test``).

The test code is the same; a target says where the API is, who calls it, how the CLI reaches
the store, and how to observe what only exists deployed. A step a target cannot do raises
``Unavailable`` with the reason, and the test is skipped saying so (never counted as passed):

- publish, promote, rollback: the CLI against the model bucket (local: a moto server).
- predict, batch, outcomes: SigV4-signed calls to ApiUrl / OutcomesUrl as two principals, a
  predict role and an outcomes role (local: ``serve --auth iam``, which knows one key pair).
- captured rows: Firehose's objects in the capture bucket (local: the store's capture/).
- Athena: a query in the stage's workgroup (local: unavailable).
- the monitor: the scheduled monitor function, invoked (local: ``tickerserve monitor run``).
- alarms: the stack's alarms in CloudWatch (local: unavailable).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from botocore.credentials import Credentials

from tests.e2e.client import Caller

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("tickerserve")
TICKERSERVE = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "tickerserve"]
CAPTURE_PREFIX = "capture/dt="
LOCAL_KEY = Credentials("AKIDE2ELOCALEXAMPLE", "e2e-local-secret")


class Unavailable(Exception):
    """This target has no such part (the message says why and what stands in for it)."""


@dataclass
class Target:
    """What the loop needs from a stage."""

    name: str
    predict: Caller
    outcomes: Caller
    # Why predict and outcomes are one principal here (None: two, with separate permissions).
    same_principal: str | None
    cli_target: list[str]
    cli_env: dict[str, str]
    s3: Any  # a boto3 S3 client for the capture objects
    capture_bucket: str
    capture_timeout: float
    registry_ttl: float

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``tickerserve`` against this target's model store."""
        result = subprocess.run(
            [*TICKERSERVE, *self.cli_target, *args],
            env=self.cli_env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"tickerserve {' '.join(args)}:\n{result.stderr}"
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def captured_request_ids(self, day: date, wanted: set[str]) -> set[str]:
        """The request ids captured on ``day``, once ``wanted`` are all there (or the wait is
        over: then whatever arrived)."""
        deadline = time.monotonic() + self.capture_timeout
        while True:
            found = self._captured(day)
            if wanted <= found or time.monotonic() > deadline:
                return found
            time.sleep(2.0)

    def _captured(self, day: date) -> set[str]:
        found: set[str] = set()
        prefix = f"{CAPTURE_PREFIX}{day.isoformat()}/"
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.capture_bucket, Prefix=prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                data = self.s3.get_object(Bucket=self.capture_bucket, Key=item["Key"])["Body"]
                raw = data.read()
                text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
                for line in text.splitlines():
                    record = json.loads(line) if line.strip() else {}
                    if isinstance(record, dict) and record.get("kind") == "capture":
                        found.add(str(record.get("request_id")))
        return found

    def athena_request_ids(self, day: date, wanted: set[str]) -> set[str]:
        raise Unavailable(
            "Athena reads the capture bucket through the stage's Glue table, which only a "
            "deployed stage has; here the captured rows were read from the store's capture/"
        )

    def run_monitor(self, day: date, model: str) -> dict[str, Any]:
        """The monitor over ``day`` for ``model``: its report."""
        raise NotImplementedError

    def alarm_names(self) -> list[str]:
        raise Unavailable(
            "CloudWatch alarms exist only in a deployed stack (tests/infra checks the "
            "synthesized ones)"
        )


class LocalTarget(Target):
    """``tickerserve serve --auth iam`` over a moto server on 127.0.0.1."""

    def run_monitor(self, day: date, model: str) -> dict[str, Any]:
        # The local equivalent of the scheduled function: the same run, from the CLI.
        until = day + timedelta(days=1)
        return dict(
            self.cli_json(
                "monitor", "run", "--since", day.isoformat(), "--until", until.isoformat(),
                "--model", model,
            )
        )  # fmt: skip


@contextmanager
def local_target(workdir: Path) -> Iterator[LocalTarget]:
    """A local stage: a moto server, a bucket, and ``serve --auth iam`` over it, signing with
    one key pair (the local server knows one)."""
    import boto3

    from tests.support import free_port
    from tickerserve.cli.moto_process import moto_server, wait_until_listening

    bucket = "tickerserve-e2e"
    # Never a profile or a real key: moto and the local server only.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TICKERSERVE_"))}
    env.update(
        AWS_ACCESS_KEY_ID=LOCAL_KEY.access_key,
        AWS_SECRET_ACCESS_KEY=LOCAL_KEY.secret_key,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONUNBUFFERED="1",
    )
    with ExitStack() as stack:
        endpoint = stack.enter_context(moto_server("127.0.0.1", free_port()))
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=LOCAL_KEY.access_key,
            aws_secret_access_key=LOCAL_KEY.secret_key,
        )
        s3.create_bucket(Bucket=bucket)
        target = ["--bucket", bucket, "--endpoint-url", endpoint]
        port = free_port()
        log = (workdir / "serve.log").open("wb")
        stack.callback(log.close)
        server = subprocess.Popen(
            [*TICKERSERVE, *target, "serve", "--auth", "iam", "--port", str(port),
             "--cache-dir", str(workdir / "cache")],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        stack.callback(_stop, server)
        wait_until_listening(server, "127.0.0.1", port)
        url = f"http://127.0.0.1:{port}/"
        caller = Caller("local", url, "execute-api", "us-east-1", LOCAL_KEY)
        yield LocalTarget(
            name="local",
            predict=caller,
            outcomes=caller,
            same_principal="the local server checks one key pair (serve --auth iam); per-route "
            "permissions exist only in IAM",
            cli_target=target,
            cli_env=env,
            s3=s3,
            capture_bucket=bucket,
            capture_timeout=30.0,  # serve writes capture every 5 s
            registry_ttl=5.0,  # serve's default --registry-ttl
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    from tickerserve.cli.moto_process import stop

    stop(process)
