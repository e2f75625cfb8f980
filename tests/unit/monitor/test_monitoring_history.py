"""The monitoring history: one line per model per run, a superset of seed 003's lines (its
own analysis snippets still run on it) plus ours, appended to
``metadata/monitoring_history.jsonl`` and rotated past its size. (Appends under racing writers:
``storage/test_history.py``.)"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.monitor_support import REGISTRY_KEY, past_wins, set_shadow
from tests.unit.monitor.test_evaluate import NOW, SHIFTED, WEEK, run, smh_store, traffic
from tickerserve.layout import MONITORING_HISTORY_KEY
from tickerserve.monitor.monitoring_history import RECORD_VERSION, append_run, history_record
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.history import read_records
from tickerserve.storage.store import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_history_lines_carry_the_seed_keys_and_ours(store, models) -> None:
    names = smh_store(store, models, metrics={"accuracy": 0.62})
    set_shadow(store, "etfs/SMH", "challenger")
    traffic(store, names, models.smh.metadata.classes, shift=SHIFTED, challenger_right=0.8)
    past_wins(store, before=NOW.date())  # the two days before: three winning days in a row
    append_run(store, run(store))
    append_run(store, run(store))
    history = read_records(store, MONITORING_HISTORY_KEY).records
    assert len(history) == 4
    line = history[-1]
    # the seed's own analysis snippets work unchanged
    drift = [r["drift"]["model_a_drift_pct"] for r in history]
    wins = [r["comparison"]["model_b_win_rate"] for r in history]
    assert all(isinstance(x, float) for x in drift) and wins == [1.0] * 4
    for key in ("timestamp", "monitoring_date", "model_a", "model_b", "test_window", "drift",
                "comparison", "recommendation", "windows"):  # fmt: skip
        assert key in line
    assert line["model_a"]["training_date_start"] == "2020-01-02"
    assert line["model_a"]["version"] == "1.0.0" and line["model_b"]["version"] == "1.0.1"
    assert line["comparison"]["winner"] == "Model B"
    assert line["recommendation"] == "SWITCH TO MODEL B (challenger 1.0.1)"
    assert line["windows"][0]["name"] == f"All new data ({7 * 400} samples)"
    assert [w["name"] for w in line["windows"][1:]] == WEEK.days
    assert {"model_a_accuracy", "model_b_accuracy", "winner", "n_samples"} <= set(
        line["windows"][1]
    )
    # ours
    assert line["model"] == "etfs/SMH" and line["action"] == "switch"
    assert line["test"]["name"] == "mcnemar_exact"
    assert sorted(n for n, f in line["features"].items() if f["level"] == "drift") == sorted(
        SHIFTED
    )
    assert line["feature_drift"]["drifted"] == sorted(SHIFTED)
    # what the run judged by: k of n windows, the days in a row, what the join left out
    assert (line["comparison"]["windows_won"], line["comparison"]["windows_counted"]) == (7, 7)
    assert line["history"]["winning_days"] == [
        (NOW.date() - timedelta(days=k)).isoformat() for k in (2, 1, 0)
    ]
    assert line["joined"] == {
        "evidence_rows": 2800, "repeated_ids": 0, "pinned_rows": 0, "wrong_task": 0,
        "corrected": 0,
    }  # fmt: skip
    # both drift figures: the seed's (degradation only) and ours (+ worse, - better)
    assert line["drift"]["model_a_drift_pct"] == max(0.0, line["drift"]["drift_pct"])
    json.dumps(line, allow_nan=False)


def test_a_model_without_a_challenger_has_no_model_b(store, models) -> None:
    names = smh_store(store, models)
    traffic(store, names, models.smh.metadata.classes, days=2)
    publish_bundle(store, models.spy, registry_key=REGISTRY_KEY)
    report = run(store, models=["etfs/SPY"])
    (line,) = [history_record(report, m) for m in report.models]
    assert (line["model"], line["model_b"], line["challenger"]) == ("etfs/SPY", None, None)
    assert line["comparison"]["winner"] is None and line["rows"] == 0
    assert (line["kind"], line["v"]) == ("monitoring", RECORD_VERSION)
    assert line["run_id"] == report.run_id
    assert line["period"] == {"since": "2026-12-01", "until": "2026-12-08"}
    json.dumps(line, allow_nan=False)


def test_a_history_past_its_size_is_archived_before_the_runs_lines(store, models) -> None:
    names = smh_store(store, models)
    traffic(store, names, models.smh.metadata.classes, days=2)
    first = append_run(store, run(store))
    size = len(store.get(MONITORING_HISTORY_KEY).data)
    second = append_run(store, run(store), rotate_at=size + 10)
    assert read_records(store, MONITORING_HISTORY_KEY).records == second
    archives = [i.key for i in store.list("metadata/") if "monitoring_history_archive_" in i.key]
    assert len(archives) == 1
    assert [json.loads(line) for line in store.get(archives[0]).data.splitlines()] == first
