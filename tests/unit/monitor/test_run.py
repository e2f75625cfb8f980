"""A whole monitor run after judging: promote only where the run says switch and only if the
champion has not moved since, append one history line per model, and emit the metrics; each
step on request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.monitor_support import REGISTRY_KEY, past_wins
from tests.unit.monitor.test_evaluate import NOW, SHIFTED, run, smh_store, traffic
from tickerserve.layout import MONITORING_HISTORY_KEY
from tickerserve.monitor.cloudwatch import NAMESPACE
from tickerserve.monitor.run import complete
from tickerserve.publishing.promotion import promote
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def cloudwatch() -> Iterator[object]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def switching(store: LocalStore, models) -> None:
    """SMH with a champion whose inputs moved and a challenger right far more often, as it
    was on the two days before (the history says)."""
    names = smh_store(store, models, metrics={"accuracy": 0.6})
    traffic(store, names, models.smh.metadata.classes, shift=SHIFTED, challenger_right=0.85)
    past_wins(store, before=NOW.date())


def production(store: LocalStore) -> str:
    registry = read_registry(store, REGISTRY_KEY).registry
    return registry.models["etfs/SMH"].aliases["production"].version


def test_by_default_a_run_writes_history_and_changes_nothing_else(store, models) -> None:
    switching(store, models)
    done = complete(store, REGISTRY_KEY, run(store))
    *_, line = read_records(store, MONITORING_HISTORY_KEY).records
    assert done.history == [line]
    assert (line["model"], line["action"], line["promoted"]) == ("etfs/SMH", "switch", None)
    assert (done.metrics_sent, done.promotions) == (0, [])
    assert production(store) == "1.0.0"  # switching stays a human decision


def test_a_switch_is_promoted_through_the_promote_path_and_recorded(store, models) -> None:
    switching(store, models)
    done = complete(store, REGISTRY_KEY, run(store), promote_switches=True)
    (promotion,) = done.promotions
    move = promotion.to_dict()
    assert (move["from"], move["to"], move["alias"]) == ("1.0.0", "1.0.1", "production")
    assert production(store) == "1.0.1"
    entry = read_registry(store, REGISTRY_KEY).registry.models["etfs/SMH"]
    assert [t.version for t in entry.history["production"]] == ["1.0.0"]  # rollback works
    *_, line = read_records(store, MONITORING_HISTORY_KEY).records
    assert line["promoted"] == move


def test_a_champion_that_moved_since_the_run_judged_it_is_not_switched(store, models) -> None:
    # Given a run that says switch, and an operator who moved production before it completes
    switching(store, models)
    judged = run(store)
    promote(store, REGISTRY_KEY, "etfs/SMH", "1.0.1", "production")
    promote(store, REGISTRY_KEY, "etfs/SMH", "1.0.0", "staging")
    # When the run completes with auto-promotion
    done = complete(store, REGISTRY_KEY, judged, promote_switches=True)
    # Then nothing moved and the history line says why
    (outcome,) = (p.to_dict() for p in done.promotions)
    assert outcome == {
        "model": "etfs/SMH",
        "error": "etfs/SMH production moved to 1.0.1 since it was judged at 1.0.0; not promoting",
    }
    assert production(store) == "1.0.1"
    *_, line = read_records(store, MONITORING_HISTORY_KEY).records
    assert line["promoted"] == outcome


def test_a_run_that_does_not_say_switch_promotes_nothing(store, models) -> None:
    names = smh_store(store, models, metrics={"accuracy": 0.6})
    traffic(store, names, models.smh.metadata.classes)  # equal models
    done = complete(store, REGISTRY_KEY, run(store), promote_switches=True)
    assert done.promotions == [] and production(store) == "1.0.0"


def test_metrics_are_emitted_on_request_and_history_can_be_skipped(
    store, models, cloudwatch
) -> None:
    switching(store, models)
    done = complete(
        store, REGISTRY_KEY, run(store), write_history=False, emit_metrics=True,
        cloudwatch=cloudwatch,
    )  # fmt: skip
    assert done.history == []
    assert len(read_records(store, MONITORING_HISTORY_KEY).records) == 2  # past_wins' alone
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]}
    assert {"SwitchRecommended", "FeatureDriftMax", "ChallengerWinRate"} <= names
    assert done.metrics_sent == 2 * len(names)  # per model and the worst over models
