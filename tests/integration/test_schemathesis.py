"""schemathesis, with every check, against ``tickerserve serve`` over the demo models: it may
report only what the README explains (its "Fuzzing the API against its own document").

Bounded and deterministic: 30 examples per operation, deterministic generation (and so no
example database), one worker; the examples, coverage and fuzzing phases (the API has no
links for the stateful one).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.serving import ROOT, Running, child_env

README = (ROOT / "README.md").read_text()
_SCRIPT = Path(sys.executable).with_name("schemathesis")
SCHEMATHESIS = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "schemathesis"]
EXAMPLES_PER_OPERATION = 30

# Feature values are checked against the model the ticker routes to, which no schema can say.
MODEL_DEPENDENT = {
    "missing_features",
    "unknown_features",
    "wrong_feature_count",
    "invalid_feature_values",
    "missing_values_not_allowed",
}


def run_schemathesis(server: Running, tmp_path: Path) -> list[dict[str, Any]]:
    """Every scenario of a bounded run, as the ndjson report records it."""
    report = tmp_path / "report"
    argv = [
        *SCHEMATHESIS,
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--generation-deterministic",  # which also keeps no example database
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "ndjson",
        "--report-dir",
        str(report),
    ]
    result = subprocess.run(
        argv, cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 1: it found something
    (events,) = report.glob("*.ndjson")
    return [json.loads(line) for line in events.read_text().splitlines()]


def findings(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(failure, the response it is about) for every failed check of every scenario."""
    out = []
    for event in events:
        finished = event.get("ScenarioFinished")
        if finished is None or finished["status"] != "failure":
            continue
        recorder = finished["recorder"]
        for case_id, checks in recorder["checks"].items():
            for check in checks:
                if check["status"] != "failure":
                    continue
                interaction = recorder["interactions"].get(case_id, {})
                out.append((check["failure_info"]["failure"], interaction.get("response") or {}))
    return out


def error_code(response: dict[str, Any]) -> str | None:
    content = response.get("content") or {}
    raw = base64.b64decode(content["$base64"]) if "$base64" in content else b""
    try:
        return json.loads(raw)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def explained(failure: dict[str, Any], response: dict[str, Any]) -> bool:
    """Whether the README's fuzzing paragraph explains this finding."""
    code, operation = failure["code"], failure["operation"]
    if code == "ST202":  # schema-valid request rejected
        return operation == "POST /predict" and error_code(response) in MODEL_DEPENDENT
    if code == "ST201":  # schema-violating request accepted
        batch = operation in ("POST /predict/batch", "POST /outcomes")  # per-item errors
        per_item = response.get("status_code") == 200  # the items' own errors
        too_many = response.get("status_code") == 413 and error_code(response) in (
            "batch_too_large",
            "too_many_explanations",
        )
        return batch and (per_item or too_many)
    return False


def test_schemathesis_finds_nothing_the_readme_does_not_explain(
    local_server: Running, tmp_path: Path
):
    # Given the README's account of what a schema-driven fuzzer reports
    assert "**Fuzzing the API against its own document.**" in README
    for phrase in (
        "*Schema-valid request rejected* on `POST /predict`",
        "*Schema-violating request accepted* on `POST /predict/batch`",
        "a 413 `batch_too_large` (a status\n  the fuzzer does not count as a rejection",
        "a 413 `too_many_explanations`",
        "`POST /outcomes` likewise",
        *MODEL_DEPENDENT,
    ):
        assert phrase in README, phrase
    # When schemathesis runs every check against tickerserve serve
    events = run_schemathesis(local_server, tmp_path)
    scenarios = [e for e in events if "ScenarioFinished" in e]
    assert len(scenarios) >= 10  # every operation, in every phase that ran
    # Then each of its findings is one the README explains, and nothing else
    unexplained = [
        (f["code"], f["operation"], f["message"][:200], error_code(r), r.get("status_code"))
        for f, r in findings(events)
        if not explained(f, r)
    ]
    assert unexplained == [], "\n".join(map(repr, unexplained))
