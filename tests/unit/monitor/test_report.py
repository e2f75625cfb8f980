"""The typed monitor report: readers use its fields; its JSON (``monitor run --json``) and the
history line keep the shape they had as dicts, including the keys left out when empty."""

from __future__ import annotations

import json
from datetime import date

from tickerserve.baselines.baseline import Baseline, Window
from tickerserve.baselines.persistence import StoredBaseline
from tickerserve.monitor.config import DEFAULTS
from tickerserve.monitor.monitoring_history import history_record
from tickerserve.monitor.report import (
    MODEL_A,
    MODEL_B,
    CaptureCounts,
    ChallengerRef,
    ChampionRef,
    Comparison,
    Decision,
    DriftSummary,
    FeatureDrift,
    FeatureFigure,
    History,
    Joined,
    ModelReport,
    OutcomeCounts,
    OutputDrift,
    Performance,
    Period,
    Promotion,
    RunReport,
    Signals,
    WindowReport,
)
from tickerserve.monitor.significance import mcnemar_exact


def model_report(*, drifted: bool = True, challenger: bool = True) -> ModelReport:
    """A report as a canary run over two days would make it, by hand."""
    features = {
        "rsi_14": FeatureFigure(rows=400, psi=0.4 if drifted else 0.02, linf=0.3, level="drift"
                                if drifted else "ok", missing_share=0.0),
        "iv_rank": FeatureFigure(rows=120, missing_share=0.5, too_few_rows=True),
        "unused": FeatureFigure(rows=0),
    }  # fmt: skip
    baseline = Baseline(
        "etfs/SMH", "1.0.0", "classification", metrics={"accuracy": 0.6},
        training=Window("2020-01-02", "2025-06-30", 3566), rows=1500,
    )  # fmt: skip
    windows = [
        WindowReport(name="2026-12-01", metric="accuracy", n_samples=40, champion=0.55,
                     challenger=0.7, winner=MODEL_B, too_small=False, rows=400, n_samples_b=35,
                     drift=DriftSummary.of(features),
                     output=OutputDrift(kind="classes", rows=400, psi=0.01, level="ok")),
        WindowReport(name="2026-12-02", metric="accuracy", n_samples=3, champion=1.0,
                     challenger=None, winner=None, too_small=True, rows=0, n_samples_b=0),
    ]  # fmt: skip
    return ModelReport(
        model="etfs/SMH",
        task="classification",
        champion=ChampionRef(
            alias="production", version="1.0.0", baseline=StoredBaseline(baseline, "version", "ab")
        ),
        challenger=ChallengerRef(alias="challenger", version="1.0.1", mode="canary", baseline=None)
        if challenger
        else None,
        rows=400,
        rows_other_versions=2,
        feature_drift=FeatureDrift(
            epsilon=DEFAULTS.psi_epsilon,
            thresholds=DEFAULTS.psi,
            summary=DriftSummary.of(features),
            features=features,
        ),
        output_drift=OutputDrift(kind="classes", rows=120, too_few_rows=True),
        performance=Performance(
            metric="accuracy",
            baseline=0.6,
            current=0.57,
            drift_pct=5.0,
            metrics={"accuracy": 0.57, "macro_f1": 0.5, "log_loss": 0.9},
            baseline_metrics={},
            scored=43,
            rows=400,
            coverage=0.5,
            too_few_outcomes=False,
        ),
        comparison=Comparison(
            mode="canary",
            metric="accuracy",
            champion=0.57,
            challenger=0.7,
            winner=MODEL_B,
            agreement=None,
            paired_rows=0,
            canary_rows=100,
            windows_counted=1,
            windows_won=1,
            win_rate=1.0,
        ),
        test=mcnemar_exact(1, 9),
        windows=windows,
        joined=Joined(evidence_rows=43, repeated_ids=0, pinned_rows=0, wrong_task=0, corrected=0),
        history=History(runs_needed=3, winning_days=["2026-12-03"], degrading=[5.0], days=1),
        recommendation=Decision(action="watch", reason="drift 5.0%", sentence="USE MODEL A"),
    )


def run_report(*models: ModelReport) -> RunReport:
    return RunReport(
        run_id="r1",
        started_at="2026-12-03T00:30:00.000000Z",
        period=Period(date(2026, 12, 1), date(2026, 12, 3)),
        config=DEFAULTS,
        models=list(models),
        capture=CaptureCounts(
            objects=2, lines=402, skipped=1, skipped_by_reason={"not_json": 1}, outside_period=0
        ),
        outcomes=OutcomeCounts(
            objects=1,
            lines=43,
            skipped=0,
            skipped_by_reason={},
            request_ids=43,
            ignored=0,
            sample_rate=1.0,
        ),
        skipped_models={"etfs/QQQ": "no production alias"},
    )


def test_keys_of_empty_figures_are_left_out_as_before() -> None:
    data = model_report().to_dict()
    features = data["feature_drift"]["features"]
    assert features["unused"] == {"rows": 0, "psi": None, "linf": None, "level": None}
    assert features["iv_rank"] == {"rows": 120, "psi": None, "linf": None, "level": None,
                                   "missing_share": 0.5, "too_few_rows": True}  # fmt: skip
    assert "too_few_rows" not in features["rsi_14"]
    assert data["output_drift"]["too_few_rows"] is True
    assert "promoted" not in data  # only once auto-promotion did something
    assert list(data) == [
        "model", "task", "signals", "champion", "challenger", "rows", "rows_other_versions",
        "feature_drift", "output_drift", "performance", "comparison", "test", "windows",
        "joined", "history", "recommendation",
    ]  # fmt: skip
    assert data["performance"]["model_a_drift_pct"] == 5.0  # seed 003's: degradation only
    assert data["champion"]["baseline"]["training"] == {
        "start": "2020-01-02", "end": "2025-06-30", "samples": 3566,
    }  # fmt: skip


def test_a_window_names_its_figures_after_the_metric() -> None:
    first, second = (w.to_dict() for w in model_report().windows)
    assert first == {
        "name": "2026-12-01", "n_samples": 40, "model_a_accuracy": 0.55,
        "model_b_accuracy": 0.7, "winner": "Model B", "too_small": False, "rows": 400,
        "n_samples_b": 35, "psi_max": 0.4, "drifted_share": 1.0, "output_psi": 0.01,
    }  # fmt: skip
    assert "psi_max" not in second and "output_psi" not in second


def test_the_drift_summary_counts_only_judged_features() -> None:
    summary = model_report().feature_drift.summary  # type: ignore[union-attr]
    assert (summary.judged, summary.psi_max, summary.drifted_share) == (1, 0.4, 1.0)
    assert summary.drifted == ["rsi_14"] and summary.watch == []
    assert model_report().inputs_drifted
    assert not model_report(drifted=False).inputs_drifted


def test_the_run_s_json_and_a_history_line_are_json_with_the_seed_s_keys() -> None:
    report = model_report()
    report.promoted = Promotion("etfs/SMH", error="production moved")
    run = run_report(report, model_report(challenger=False))
    data = run.to_dict()
    assert data["capture"] == {
        "objects": 2, "lines": 402, "skipped": 1, "skipped_by_reason": {"not_json": 1},
        "outside_period": 0,
    }  # fmt: skip
    assert data["models"][0]["promoted"] == {"model": "etfs/SMH", "error": "production moved"}
    line = history_record(run, report)
    json.dumps([data, line], allow_nan=False)
    assert line["model_a"] == {"training_samples": 3566, "training_date_start": "2020-01-02",
                               "training_date_end": "2025-06-30", "alias": "production",
                               "version": "1.0.0"}  # fmt: skip
    assert line["model_b"] == {"training_samples": None, "training_date_start": None,
                               "training_date_end": None, "alias": "challenger",
                               "version": "1.0.1"}  # fmt: skip
    assert line["test_window"] == {"n_samples": 43, "date_start": "2026-12-01",
                                   "date_end": "2026-12-01"}  # fmt: skip
    assert line["windows"][0] == {"name": "All new data (43 samples)", "n_samples": 43,
                                  "model_a_accuracy": 0.57, "model_b_accuracy": 0.7,
                                  "winner": "Model B"}  # fmt: skip
    assert line["comparison"]["model_b_win_rate"] == 1.0
    assert "features" not in line["feature_drift"] and set(line["features"]) == {
        "rsi_14", "iv_rank", "unused",
    }  # fmt: skip
    assert line["promoted"] == {"model": "etfs/SMH", "error": "production moved"}
    assert history_record(run, run.models[1])["model_b"] is None
    assert MODEL_A == "Model A"


def test_signals_list_the_answered_ones_first_and_say_when_one_is_not_the_default() -> None:
    served = Signals(answered={"volatility": 30, "strategy": 5}, routed=["direction", "strategy"])
    assert served.names == ["volatility", "strategy", "direction"]
    assert served.beyond_default
    assert not Signals(answered={"strategy": 5}, routed=["strategy"]).beyond_default
    # A report made before signals (or of a model nothing reached) says so in its line
    line = history_record(run_report(model_report()), model_report())
    assert line["signals"] == {"answered": {}, "routed": []}
