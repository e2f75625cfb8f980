"""The issue-19 attacks on the learning loop, replayed end to end: real models answer through
the API (prediction and outcomes entry points, captured as ``tickerserve serve`` captures), the
attacker's requests and outcomes go through the same doors, and ``monitor run --auto-promote``
judges. Each attack must end in ``keep`` with ``production`` where it was.

Scenario 1: 300 honest shadowed rows (the champion right about 80% of the time, the challenger
well under 40%), then 8 probes pinned to the challenger alias (to learn its answers), one 370-item
batch whose items share two request ids, and one 2-item outcomes call naming the challenger's
answers. Scenario 2: the same honest rows with guessable ids, then 32 batch items sharing two
ids and one 302-item outcomes call: values for the 300 honest ids (erasing their labels, once)
and the challenger's answers for the two. A third replay floods the outcomes with ids that were
never served.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.capture_support import read_capture
from tests.cli_support import cli
from tests.monitor_support import (
    classification_baseline,
    past_wins,
    publish_with_baseline,
    set_shadow,
)
from tests.support import REGISTRY_KEY, DemoModels, load_event
from tickerserve.cli.capture_writer import StoreCaptureWriter
from tickerserve.http.api import Api
from tickerserve.serving.capture import Capture
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.registry import read_registry, update_registry
from tickerserve.storage.store import LocalStore

FEATURES = json.loads(load_event("rest_predict.json")["body"])["features"]
HONEST = 300


class Deployment:
    """The two deployed entry points over one store, capture written to the store."""

    def __init__(self, store: LocalStore, tmp_path: Path) -> None:
        self.store = store
        self.writer = StoreCaptureWriter(store)
        service = ModelService(Settings(cache_dir=str(tmp_path / "cache"), registry_ttl=0), store)
        # A warm sandbox: both versions in memory, so every shadowed row holds both answers
        service.serving_for_ticker("SMH")
        service.serving_for_ticker("SMH", alias="challenger")
        self.predictions = Api(service, capture=Capture(self.writer), entry="prediction")
        self.outcomes = Api(service, entry="outcomes")

    def predict_batch(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = self.predictions.handle({"items": items}, None)
        assert answer["failed"] == 0, answer
        return list(answer["results"])

    def post_outcomes(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        event = load_event("rest_predict.json")
        event["path"] = event["resource"] = "/outcomes"
        event["body"] = json.dumps({"outcomes": items})
        refused = self.predictions.handle(event, None)  # the prediction door refuses them
        assert refused["statusCode"] == 403
        response = self.outcomes.handle(event, None)
        assert response["statusCode"] == 200, response
        return dict(json.loads(response["body"]))

    def flush(self) -> None:
        assert self.writer.flush()


@pytest.fixture
def deployment(tmp_path: Path, models: DemoModels) -> Iterator[Deployment]:
    store = LocalStore(tmp_path / "store")
    publish_with_baselines(store, models)
    running = Deployment(store, tmp_path)
    yield running
    running.writer.close()


def publish_with_baselines(store: LocalStore, models: DemoModels) -> None:
    """SMH 1.0.0 in production and 1.0.1 as its shadow challenger, each with a baseline whose
    accuracy is what the champion shows on the honest traffic (so its drift is known and small:
    nothing but the comparison stands between the attacker and a switch)."""
    rng = np.random.default_rng(3)
    meta = models.smh.metadata
    # the reference looks like the honest traffic: no input drift to watch
    rows = [varied_features(rng) for _ in range(2000)]
    x = np.array([[row[name] for name in meta.used_features] for row in rows])
    for bundle, aliases in ((models.smh, ("production",)), (models.smh_v2, ("challenger",))):
        baseline = classification_baseline(bundle, x, None)
        baseline = dataclasses.replace(baseline, metrics={"accuracy": 0.77})
        publish_with_baseline(store, bundle, baseline, aliases=aliases)
    update_registry(store, REGISTRY_KEY, lambda r: r.set_route("SMH", "etfs/SMH", "etf"))
    set_shadow(store, "etfs/SMH", "challenger")


def varied_features(rng: np.random.Generator) -> dict[str, float]:
    return {name: float(value) * float(rng.uniform(0.5, 1.5)) for name, value in FEATURES.items()}


def honest_traffic(deployment: Deployment, classes: list[str], seed: int = 0) -> None:
    """300 shadowed predictions with guessable ids and their true labels: the champion right
    about 80% of the time, the challenger well under 40% (the demo models mostly disagree)."""
    rng = np.random.default_rng(seed)
    items = [
        {"ticker": "SMH", "features": varied_features(rng), "request_id": f"req-{i}"}
        for i in range(HONEST)
    ]
    deployment.predict_batch(items)
    deployment.flush()
    answers = captured_answers(deployment.store)
    outcomes = []
    for i in range(HONEST):
        champion, challenger = answers[f"req-{i}"]
        others = [c for c in classes if c not in (champion, challenger)]
        if rng.random() < 0.77:
            truth = champion
        elif challenger != champion and rng.random() < 0.6:
            truth = challenger
        else:
            truth = others[0] if others else champion
        outcomes.append({"request_id": f"req-{i}", "label": truth})
    assert deployment.post_outcomes(outcomes)["stored"] == HONEST


def captured_answers(store: LocalStore) -> dict[str, tuple[str, str]]:
    """The champion's and the shadow challenger's answer per captured request id."""
    found: dict[str, tuple[str, str]] = {}
    for record in read_capture(store):
        shadows = [c for c in record.get("challengers") or [] if "output" in c]
        if record["role"] == "champion" and shadows:
            found[record["request_id"]] = (record["output"]["label"], shadows[0]["output"]["label"])
    return found


def monitor(deployment: Deployment) -> dict[str, Any]:
    deployment.flush()
    result = cli("--store", str(deployment.store.root), "monitor", "run", "--auto-promote",
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (model,) = json.loads(result.stdout)["models"]
    return dict(model)


def production(deployment: Deployment) -> str:
    registry = read_registry(deployment.store, REGISTRY_KEY).registry
    return registry.models["etfs/SMH"].aliases["production"].version


def probe_challenger(deployment: Deployment, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Eight requests pinned to the challenger alias: the attacker learns its answers."""
    probes = [{"ticker": "SMH", "features": varied_features(rng), "alias": "challenger"}
              for _ in range(8)]  # fmt: skip
    answers = deployment.predict_batch(probes)
    return [{**p, "answer": a["prediction"]} for p, a in zip(probes, answers, strict=True)]


def repeated_batch(
    deployment: Deployment, probes: list[dict[str, Any]], size: int, ids: tuple[str, str]
) -> dict[str, Any]:
    """One batch of ``size`` unpinned items on the probed features, half under each of two
    ids: refused whole, as request ids are unique per served row."""
    items = [
        {"ticker": "SMH", "features": probes[i % len(probes)]["features"],
         "request_id": ids[i % 2]}
        for i in range(size)
    ]  # fmt: skip
    return dict(deployment.predictions.handle({"items": items}, None))


def repeated_requests(
    deployment: Deployment, probes: list[dict[str, Any]], size: int, ids: tuple[str, str]
) -> None:
    """The same rows as separate requests reusing two ids (as retries do): all served."""
    for i in range(size):
        body = {"ticker": "SMH", "features": probes[i % len(probes)]["features"],
                "request_id": ids[i % 2]}  # fmt: skip
        assert "error" not in deployment.predictions.handle(body, None)


def attack_outcomes(probes: list[dict[str, Any]], ids: tuple[str, str]) -> list[dict[str, Any]]:
    """The challenger's answers (learned by the probes) as the truth of the attacker's ids."""
    return [{"request_id": rid, "label": probes[i]["answer"]} for i, rid in enumerate(ids)]


def test_scenario_1_probes_a_repeated_id_batch_and_two_outcomes_end_in_keep(
    deployment: Deployment, models: DemoModels
):
    classes = list(models.smh.metadata.classes)
    honest_traffic(deployment, classes)
    # Control: the champion is clearly better, and the run says keep
    control = monitor(deployment)
    assert control["recommendation"]["action"] == "keep"
    assert control["test"]["favours"] == "champion" and control["test"]["p_value"] < 0.01
    # Given two winning days already in the history (as if the attack had run twice before)
    past_wins(deployment.store, before=datetime.now(UTC).date())
    # When the attacker probes the challenger, sends 370 items under two ids, and writes the
    # challenger's answers as the two outcomes
    rng = np.random.default_rng(9)
    probes = probe_challenger(deployment, rng)
    refused = repeated_batch(deployment, probes, 370, ("atk-0", "atk-1"))
    assert refused["error"]["code"] == "duplicate_request_id"
    deployment.post_outcomes(attack_outcomes(probes, ("atk-0", "atk-1")))
    attacked = monitor(deployment)
    # Then nothing of it is evidence (the probes pinned another version, the batch was never
    # served, its outcomes name ids no row carried) and the run keeps the champion
    assert attacked["rows_other_versions"] == 8
    assert attacked["performance"]["scored"] == HONEST
    assert attacked["test"] == control["test"]
    assert attacked["recommendation"]["action"] == "keep"
    assert "promoted" not in attacked and production(deployment) == "1.0.0"


def test_scenario_1_spread_over_requests_that_reuse_two_ids_counts_each_id_once(
    deployment: Deployment, models: DemoModels
):
    # Given the same attack with the 370 rows sent as separate requests reusing two ids
    honest_traffic(deployment, list(models.smh.metadata.classes))
    past_wins(deployment.store, before=datetime.now(UTC).date())
    probes = probe_challenger(deployment, np.random.default_rng(9))
    repeated_requests(deployment, probes, 370, ("atk-0", "atk-1"))
    deployment.post_outcomes(attack_outcomes(probes, ("atk-0", "atk-1")))
    attacked = monitor(deployment)
    # Then each id is one row of evidence: the outcomes score two rows, not 370, the champion
    # still wins the comparison and nothing is promoted (the 370 identical rows are real
    # traffic: they may move the feature drift, never the comparison)
    assert attacked["joined"]["repeated_ids"] == 368
    assert attacked["performance"]["scored"] == HONEST + 2
    assert attacked["test"]["favours"] == "champion"
    assert attacked["recommendation"]["action"] != "switch"
    assert "promoted" not in attacked and production(deployment) == "1.0.0"


def test_scenario_2_values_over_honest_ids_and_a_small_batch_end_in_keep(
    deployment: Deployment, models: DemoModels
):
    classes = list(models.smh.metadata.classes)
    honest_traffic(deployment, classes, seed=1)
    control = monitor(deployment)
    past_wins(deployment.store, before=datetime.now(UTC).date())
    rng = np.random.default_rng(11)
    probes = probe_challenger(deployment, rng)
    assert repeated_batch(deployment, probes, 32, ("evil-0", "evil-1"))["error"]["code"] == (
        "duplicate_request_id"
    )
    # One 302-item outcomes call: a value for every honest id (a classifier's), and the
    # challenger's answers for the attacker's two ids
    answer = deployment.post_outcomes(
        [{"request_id": f"req-{i}", "value": 0.0} for i in range(HONEST)]
        + attack_outcomes(probes, ("evil-0", "evil-1"))
    )
    assert answer["stored"] == HONEST + 2
    attacked = monitor(deployment)
    # The honest labels still stand (a value never erases a label), the attacker's ids were
    # never served, and the champion keeps its place
    assert attacked["joined"]["wrong_task"] == 0  # every honest id still has its label
    assert attacked["performance"]["scored"] == HONEST
    assert attacked["test"] == control["test"]
    assert attacked["recommendation"]["action"] == "keep"
    assert production(deployment) == "1.0.0"


def test_flooding_outcomes_for_never_served_ids_costs_nothing(
    deployment: Deployment, models: DemoModels
):
    classes = list(models.smh.metadata.classes)
    honest_traffic(deployment, classes, seed=2)
    before = monitor(deployment)
    # When 20,000 outcomes arrive for ids that were never served
    for start in range(0, 20_000, 1000):
        deployment.post_outcomes(
            [{"request_id": f"flood-{i}", "label": classes[0]} for i in range(start, start + 1000)]
        )
    after = monitor(deployment)
    # Then the same rows are judged the same way: nothing thinned, nothing added
    assert after["performance"]["scored"] == before["performance"]["scored"] == HONEST
    assert after["joined"]["evidence_rows"] == before["joined"]["evidence_rows"] == HONEST
    assert after["comparison"] == before["comparison"]
    assert after["test"] == before["test"]
