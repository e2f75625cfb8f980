"""The loop the README promises, end to end, against a target (tests/e2e/targets.py):
publish -> promote -> predict and batch -> outcomes -> captured rows (capture bucket, Athena)
-> the monitor -> rollback -> alarms. Every API call is SigV4-signed; outcomes are written
by their own principal where the target has one."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.client import Answer, Caller
from tests.e2e.targets import Target, Unavailable
from tickerserve.cli.demo_set import ensure_demo_folders
from tickerserve.publishing.demo import FEATURES

MODEL = "etfs/SMH"
TICKER = "SMH"
ROW = [61.2, 0.42, 0.55, 0.21, 0.018, 0.012, -0.034, 1.3, -0.05, 0.02, 0.87, 17.4]
RUN = uuid.uuid4().hex[:8]  # request ids of this run only


def rid(n: int) -> str:
    return f"e2e-{RUN}-{n}"


def serving_version(caller: Caller, wanted: str, ttl: float) -> Answer:
    """Predict until ``wanted`` answers (the function re-reads the registry after its TTL)."""
    deadline = time.monotonic() + ttl + 30.0
    while True:
        answer = caller.call("POST", "predict", {"ticker": TICKER, "features": ROW})
        assert answer.status == 200, answer.body
        if answer.body["model"]["version"] == wanted or time.monotonic() > deadline:
            return answer
        time.sleep(1.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two versions of one model: the demo SMH and the demo SPY published under SMH's name."""
    folders = ensure_demo_folders(tmp_path_factory.mktemp("models"))
    return {"1.0.0": folders["etfs/SMH"], "1.0.1": folders["etfs/SPY"]}


class State:
    day: date = datetime.now(UTC).date()
    started: str = datetime.now(UTC).isoformat()
    served: dict[str, str] = {}  # request id -> label answered


@pytest.mark.incremental
class TestLoop:
    def test_publish_two_versions(self, target: Target, models: dict[str, Path]):
        # When a publisher publishes 1.0.0 to production (routed) and 1.0.1 to staging
        target.cli("publish", str(models["1.0.0"]), "--model", MODEL, "--alias", "production",
                   "--route", TICKER)  # fmt: skip
        target.cli("publish", str(models["1.0.1"]), "--model", MODEL, "--alias", "staging")
        # Then the store lists both, on those aliases
        listed = {
            v["version"]: v["aliases"] for v in target.cli_json("list") if v["model"] == MODEL
        }
        assert listed == {"1.0.0": ["production"], "1.0.1": ["staging"]}, listed

    def test_an_unsigned_call_is_refused(self, target: Target):
        answer = target.predict.unsigned().call("GET", "health")
        assert (answer.status, answer.error_code) == (403, "forbidden"), answer.body

    def test_promote_and_the_api_serves_it(self, target: Target):
        target.cli("promote", MODEL, "1.0.1")
        answer = serving_version(target.predict, "1.0.1", target.registry_ttl)
        assert answer.body["model"] == {"name": MODEL, "version": "1.0.1", "alias": "production"}

    def test_predict_and_batch(self, target: Target):
        # When a bot predicts one row, then a batch of two, each with its own request id
        one = target.predict.call("POST", "predict", {"ticker": TICKER, "features": ROW},
                                  headers={"X-Request-Id": rid(1)})  # fmt: skip
        items = [{"ticker": TICKER, "features": ROW, "request_id": rid(n)} for n in (2, 3)]
        batch = target.predict.call("POST", "predict/batch", {"items": items})
        # Then each answer names the version it came from and its request id
        assert one.status == 200 and one.body["request_id"] == rid(1), one.body
        assert batch.status == 200 and batch.body["failed"] == 0, batch.body
        assert [r["request_id"] for r in batch.body["results"]] == [rid(2), rid(3)]
        assert {r["model"]["version"] for r in batch.body["results"]} == {"1.0.1"}
        State.served = {rid(1): one.body["prediction"]} | {
            r["request_id"]: r["prediction"] for r in batch.body["results"]
        }
        assert len(FEATURES) == len(ROW)

    def test_outcomes_are_written_by_their_own_principal(self, target: Target):
        body = {"outcomes": [{"request_id": k, "label": v} for k, v in State.served.items()]}
        answer = target.outcomes.call("POST", "outcomes", body)
        assert answer.status == 200 and answer.body["failed"] == 0, answer.body
        assert {r["request_id"] for r in answer.body["results"]} == set(State.served)

    def test_the_predict_principal_cannot_write_outcomes(self, target: Target):
        if target.same_principal:
            pytest.skip(f"one principal here: {target.same_principal}")
        body = {"outcomes": [{"request_id": rid(1), "label": "IRON_CONDOR"}]}
        answer = Caller("predict", target.outcomes.base_url, target.predict.service,
                        target.predict.region, target.predict.credentials).call(
            "POST", "outcomes", body)  # fmt: skip
        assert (answer.status, answer.error_code) == (403, "forbidden"), answer.body

    def test_captured_rows_reach_the_capture_store(self, target: Target):
        found = target.captured_request_ids(State.day, set(State.served))
        assert set(State.served) <= found, f"captured: {sorted(found)}"

    def test_athena_finds_the_captured_rows(self, target: Target):
        try:
            found = target.athena_request_ids(State.day, set(State.served))
        except Unavailable as reason:
            pytest.skip(str(reason))
        assert found == set(State.served)

    def test_the_monitor_judges_the_served_rows_and_writes_history(self, target: Target):
        target.run_monitor(State.day, MODEL)
        lines = [
            line
            for line in target.cli_json("history", "monitoring", "--model", MODEL)
            if str(line.get("timestamp", "")) >= State.started
        ]
        assert lines, "no monitoring history line written by this run"
        latest: dict[str, Any] = lines[-1]
        assert latest["model"] == MODEL and latest["rows"] >= len(State.served), latest
        assert latest["champion"]["version"] == "1.0.1"

    def test_rollback_and_the_api_serves_the_earlier_version(self, target: Target):
        target.cli("rollback", MODEL)
        answer = serving_version(target.predict, "1.0.0", target.registry_ttl)
        assert answer.body["model"]["version"] == "1.0.0"

    def test_the_stacks_alarms_exist(self, target: Target):
        try:
            names = target.alarm_names()
        except Unavailable as reason:
            pytest.skip(str(reason))
        assert len(names) >= 5, names
