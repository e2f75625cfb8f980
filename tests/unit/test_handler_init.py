"""The Lambda entry point in a fresh interpreter: what it imports and how init fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import EVENTS, populate
from tickerserve.store import LocalStore

ROOT = Path(__file__).resolve().parents[2]

# The Lambda layer has no scikit-learn; the dev venv does, and lightgbm probes for it.
# Hiding it reproduces the Lambda environment, so a hard dependency on it would fail here.
CHILD = """
import json, sys
sys.modules["sklearn"] = None
FORBIDDEN = {"sklearn", "typer", "rich", "joblib", "aws_cdk", "click"}
from tickerserve.handler import lambda_handler
class Context:
    function_name = "tickerserve-predict"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tickerserve-predict"
    memory_limit_in_mb = 1024
    aws_request_id = "8f4ab7f5-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/tickerserve-predict"
    log_stream_name = "2026/11/23/[$LATEST]0123456789abcdef"

    @staticmethod
    def get_remaining_time_in_millis():
        return 29000

event = json.load(open(sys.argv[1]))
response = lambda_handler(event, Context())
forbidden = sorted(
    name for name, module in sys.modules.items()
    if module is not None
    and (name.split(".")[0] in FORBIDDEN or name.startswith("tickerserve.cli"))
)
print("RESULT " + json.dumps({"status": response["statusCode"], "forbidden": forbidden}))
"""


def run_child(
    env: dict[str, str], event: str = "rest_predict.json"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(EVENTS / event)],
        env={**os.environ, "PYTHONPATH": str(ROOT / "lambda_src"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_handler_serves_without_sklearn_or_cli_libraries(tmp_path, models):
    populate(LocalStore(tmp_path / "store"), models)
    result = run_child(
        {
            "TICKERSERVE_STORE_PATH": str(tmp_path / "store"),
            "TICKERSERVE_CACHE_DIR": str(tmp_path / "c"),
        }
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    outcome = json.loads(line.removeprefix("RESULT "))
    assert outcome == {"status": 200, "forbidden": []}


def test_invalid_setting_fails_init_with_the_variable_named(tmp_path):
    result = run_child({"TICKERSERVE_STORE_PATH": str(tmp_path), "TICKERSERVE_MEMORY_MB": "lots"})
    assert result.returncode != 0
    assert "TICKERSERVE_MEMORY_MB='lots' is not an integer" in result.stderr


def test_missing_store_configuration_fails_init(tmp_path):
    env = dict.fromkeys(("TICKERSERVE_BUCKET", "TICKERSERVE_STORE_PATH"), "")
    result = run_child(env)
    assert result.returncode != 0
    assert "set TICKERSERVE_BUCKET or TICKERSERVE_STORE_PATH" in result.stderr
