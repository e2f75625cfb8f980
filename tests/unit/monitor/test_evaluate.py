"""Monitor runs over generated capture and outcomes: drift flags, performance, champion vs
challenger (shadow and canary, classifier and regressor), the recommendation, the history."""

from __future__ import annotations

import dataclasses
import gzip
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.capture_support import ListSink
from tests.family_support import families
from tests.monitor_support import (
    DAY0,
    REGISTRY_KEY,
    Row,
    calibrated_rows,
    class_output,
    classification_baseline,
    feature_dict,
    past_wins,
    publish_with_baseline,
    reference_rows,
    serve_spy_on_two_signals,
    set_shadow,
    stamp,
    write_capture,
    write_outcomes,
)
from tests.support import DemoModels
from tickerserve.baselines.baseline import Reference, Window, fit_baseline
from tickerserve.baselines.persistence import attach_to_bundle
from tickerserve.metric_names import MONITOR
from tickerserve.monitor.cloudwatch import model_figures
from tickerserve.monitor.config import MonitorConfig
from tickerserve.monitor.evaluate import routed_signals, run_monitor
from tickerserve.monitor.monitoring_history import history_record
from tickerserve.monitor.report import (
    FeatureWarnings,
    Period,
    RequestWarnings,
    RunReport,
    Signals,
)
from tickerserve.publishing.release import apply_publication, publish_bundle, write_version
from tickerserve.serving.capture import Capture
from tickerserve.serving.model import LoadedModel
from tickerserve.serving.predict import predict
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.registry import Registry
from tickerserve.storage.store import LocalStore

# The monitor function's layer has no scipy: nothing here may import it.
pytestmark = pytest.mark.usefixtures("without_scipy")
WEEK = Period(DAY0, DAY0 + timedelta(days=7))
NOW = datetime(2026, 12, 10, 6, 0)
SHIFTED = ("rsi_14", "atr_pct")  # two of the six features SMH uses


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def smh_store(
    store: LocalStore, models: DemoModels, *, metrics: dict[str, float] | None = None
) -> list[str]:
    """SMH 1.0.0 in production and 1.0.1 as challenger, both with baselines; returns the
    used feature names."""
    rng = np.random.default_rng(0)
    meta = models.smh.metadata
    x = reference_rows(rng, 3000, len(meta.used_features))
    truth = [meta.classes[i] for i in rng.integers(0, len(meta.classes), 3000)]
    baseline = classification_baseline(models.smh, x, truth)
    if metrics is not None:
        baseline = dataclasses.replace(baseline, metrics=metrics)
    publish_with_baseline(store, models.smh, baseline)
    publish_with_baseline(
        store,
        models.smh_v2,
        classification_baseline(models.smh_v2, x, None),
        aliases=("challenger",),
    )
    return meta.used_features


def traffic(
    store: LocalStore,
    names: list[str],
    classes: list[str],
    *,
    per_day: int = 400,
    days: int = 7,
    champion_right: float = 0.6,
    challenger_right: float = 0.6,
    shift: tuple[str, ...] = (),
    outcome_share: float = 1.0,
    mode: str = "shadow",
    seed: int = 1,
) -> None:
    """Captured rows and their outcomes: each side is right with the given probability."""
    rng = np.random.default_rng(seed)
    records, outcomes = [], []
    for d in range(days):
        day = DAY0 + timedelta(days=d)
        x = reference_rows(rng, per_day, len(names))
        for name in shift:
            x[:, names.index(name)] += 1.2
        for i in range(per_day):
            truth = classes[rng.integers(len(classes))]
            wrong = classes[(classes.index(truth) + 1) % len(classes)]
            a = truth if rng.random() < champion_right else wrong
            b = truth if rng.random() < challenger_right else wrong
            rid = f"req-{d}-{i}"
            if mode == "canary" and i % 4 == 0:
                row = Row(
                    rid,
                    stamp(day, i * 97),
                    "etfs/SMH",
                    "1.0.1",
                    "challenger",
                    "canary",
                    "classification",
                    feature_dict(names, x[i]),
                    class_output(b, classes),
                    [],
                )
            else:
                shadow = [
                    {
                        "alias": "challenger",
                        "version": "1.0.1",
                        "output": class_output(b, classes),
                        "latency_us": 30,
                    }
                ]
                row = Row(rid, stamp(day, i * 97), "etfs/SMH", "1.0.0", "production", "champion",
                          "classification", feature_dict(names, x[i]), class_output(a, classes),
                          shadow if mode == "shadow" else [])  # fmt: skip
            records.append(row.record())
            if rng.random() < outcome_share:
                outcomes.append(
                    {"request_id": rid, "label": truth, "observed_at": stamp(day, 86000)}
                )
    write_capture(store, records, parts=2)
    write_outcomes(store, outcomes, DAY0 + timedelta(days=days))


def run(store: LocalStore, **kwargs) -> RunReport:
    return run_monitor(store, registry_key=REGISTRY_KEY, period=WEEK, now=NOW, **kwargs)


def test_shifted_features_are_flagged_and_unshifted_ones_are_not(store, models) -> None:
    # Given a champion with a baseline and a week of traffic where two inputs moved by 1.2 sd
    names = smh_store(store, models)
    traffic(store, names, models.smh.metadata.classes, shift=SHIFTED)
    # When the monitor runs
    report = run(store).models[0].to_dict()
    drift = report["feature_drift"]
    # Then exactly the shifted features are at "drift", with the statistic and thresholds named
    assert drift["drifted"] == sorted(SHIFTED)
    assert drift["watch"] == []
    assert drift["statistic"] == "psi" and drift["thresholds"] == {"watch": 0.1, "drift": 0.25}
    assert drift["drifted_share"] == pytest.approx(2 / 6)
    for name, figure in drift["features"].items():
        assert figure["rows"] == 7 * 400
        assert (figure["psi"] >= 0.25) == (name in SHIFTED)
        assert (figure["linf"] > 0.3) == (name in SHIFTED)
    # every daily window says the same
    assert all(w["drifted_share"] == pytest.approx(2 / 6) for w in report["windows"])
    assert report["recommendation"]["action"] == "watch"  # inputs moved; outcomes still fine


def test_a_better_challenger_wins_and_the_rule_says_switch(store, models) -> None:
    # Given a baseline accuracy of 0.62, a champion right 60% of the time and a shadow
    # challenger right 80% of the time on the same rows
    names = smh_store(store, models, metrics={"accuracy": 0.62, "macro_f1": 0.6})
    set_shadow(store, "etfs/SMH", "challenger")
    traffic(store, names, models.smh.metadata.classes, champion_right=0.6, challenger_right=0.8)
    # On its first day the challenger's win is one day of evidence: no switch yet
    first = run(store).models[0]
    assert first.action == "keep" and first.history.winning_days == [NOW.date().isoformat()]
    assert "it has won on 1 day(s) in a row; seed 003 asks for 3" in first.recommendation.reason
    # After it also won the two days before (the history says so), the rule says switch
    past_wins(store, before=NOW.date())
    report = run(store).models[0].to_dict()
    comparison, test = report["comparison"], report["test"]
    assert comparison["mode"] == "shadow"
    assert comparison["winner"] == "Model B"
    assert comparison["win_rate"] == 1.0 and comparison["windows_counted"] == 7
    assert comparison["challenger"] > comparison["champion"]
    assert test["name"] == "mcnemar_exact" and test["p_value"] < 1e-6
    assert test["favours"] == "challenger"
    # drift_pct: relative degradation of accuracy against the baseline's 0.62
    current = report["performance"]["current"]
    assert report["performance"]["drift_pct"] == pytest.approx((0.62 - current) / 0.62 * 100)
    assert report["performance"]["coverage"] == 1.0
    assert report["recommendation"]["action"] == "switch"
    assert report["recommendation"]["sentence"] == "SWITCH TO MODEL B (challenger 1.0.1)"
    assert report["recommendation"]["reason"].startswith(
        "challenger won 7 of 7 windows (100% >= 75%) on 3 days in a row"
    )
    assert len(report["history"]["winning_days"]) == 3


def test_a_degraded_champion_is_retrained_not_switched(store, models) -> None:
    names = smh_store(store, models, metrics={"accuracy": 0.80})
    traffic(store, names, models.smh.metadata.classes, champion_right=0.6, challenger_right=0.85)
    report = run(store).models[0].to_dict()
    assert report["performance"]["drift_pct"] > 10
    assert report["comparison"]["win_rate"] == 1.0
    assert report["recommendation"]["action"] == "retrain"


def test_equal_models_keep_the_champion(store, models) -> None:
    names = smh_store(store, models, metrics={"accuracy": 0.6})
    traffic(store, names, models.smh.metadata.classes, champion_right=0.6, challenger_right=0.6)
    report = run(store).models[0].to_dict()
    assert report["comparison"]["win_rate"] < 0.75
    assert report["test"]["p_value"] > 0.05
    assert report["recommendation"]["action"] == "keep"


def test_windows_with_fewer_than_30_outcomes_are_too_small(store, models) -> None:
    # outcomes lag: only ~5% of rows have one yet
    names = smh_store(store, models, metrics={"accuracy": 0.6})
    traffic(store, names, models.smh.metadata.classes, per_day=300, champion_right=0.3,
            challenger_right=0.9, outcome_share=0.05)  # fmt: skip
    report = run(store).models[0].to_dict()
    assert all(w["too_small"] and w["winner"] is None for w in report["windows"])
    assert report["comparison"]["win_rate"] is None
    assert report["performance"]["coverage"] == pytest.approx(0.05, abs=0.02)
    assert report["recommendation"]["action"] != "switch"


def test_canary_only_uses_the_unpaired_test(store, models) -> None:
    names = smh_store(store, models, metrics={"accuracy": 0.6})
    traffic(store, names, models.smh.metadata.classes, champion_right=0.55, challenger_right=0.85,
            mode="canary")  # fmt: skip
    report = run(store).models[0].to_dict()
    assert report["comparison"]["mode"] == "canary"
    assert report["comparison"]["agreement"] is None  # different rows: nothing to agree on
    assert report["test"]["name"] == "two_proportion_z"
    assert report["test"]["favours"] == "challenger" and report["test"]["p_value"] < 0.001
    assert report["comparison"]["win_rate"] == 1.0
    assert report["challenger"]["mode"] == "canary"


def regression_store(store: LocalStore, models: DemoModels, rng: np.random.Generator) -> list[str]:
    """Seed 003's kind of model: an XGBoost + LightGBM stack under a Ridge (a regressor),
    validated at RMSE 0.010; its 1.0.1 is the challenger."""
    bundle = families()["stack_regressor"].bundle("etfs/SPY")
    meta = bundle.metadata
    assert meta.task == "regression"
    names = meta.used_features
    x = reference_rows(rng, 2000, len(names))
    predictions = LoadedModel(meta, bundle.files).predict_values(x)
    baseline = fit_baseline(
        meta.model, meta.version, "regression", Reference(names, x, predictions),
        training=Window("2010-03-31", "2024-05-31", 3566),
    )  # fmt: skip
    baseline = dataclasses.replace(baseline, metrics={"rmse": 0.010, "mae": 0.007, "r2": 0.43})
    for version, alias in (("1.0.0", "production"), ("1.0.1", "challenger")):
        written = write_version(
            store, attach_to_bundle(bundle, baseline), model=meta.model, version=version
        )
        apply_publication(store, REGISTRY_KEY, [written], aliases=[alias])
    return names


@pytest.mark.parametrize("mode", ["shadow", "canary"])
def test_a_regression_challenger_with_smaller_errors_wins(store, models, mode: str) -> None:
    rng = np.random.default_rng(21)
    names = regression_store(store, models, rng)
    records, outcomes = [], []
    for d in range(7):
        day = DAY0 + timedelta(days=d)
        x = reference_rows(rng, 300, len(names))
        for i in range(300):
            truth = float(rng.normal(0.02, 0.01))
            a = truth + float(rng.normal(0, 0.0105))  # champion RMSE about 0.0105
            b = truth + float(rng.normal(0, 0.0070))
            rid = f"v-{d}-{i}"
            canary = mode == "canary" and i % 3 == 0
            shadow = [] if mode == "canary" else [
                {"alias": "challenger", "version": "1.0.1", "output": {"value": b}}
            ]  # fmt: skip
            records.append(Row(rid, stamp(day, i * 200), "etfs/SPY", "1.0.1" if canary else "1.0.0",
                               "challenger" if canary else "production",
                               "canary" if canary else "champion", "regression",
                               feature_dict(names, x[i]), {"value": b if canary else a},
                               shadow).record())  # fmt: skip
            outcomes.append({"request_id": rid, "value": truth})
    write_capture(store, records)
    write_outcomes(store, outcomes, DAY0 + timedelta(days=8))
    past_wins(store, "etfs/SPY", before=NOW.date())
    report = run(store).models[0].to_dict()
    assert report["task"] == "regression"
    assert report["performance"]["metric"] == "rmse"
    assert report["performance"]["drift_pct"] == pytest.approx(
        (report["performance"]["current"] - 0.010) / 0.010 * 100
    )
    assert report["comparison"]["winner"] == "Model B"
    assert report["comparison"]["win_rate"] >= 0.75
    name = "diebold_mariano_hln" if mode == "shadow" else "welch_t_squared_errors"
    assert report["test"]["name"] == name
    assert report["test"]["favours"] == "challenger" and report["test"]["p_value"] < 0.05
    assert report["recommendation"]["action"] == "switch"


def test_lines_that_are_not_capture_records_are_skipped_and_counted(store, models) -> None:
    names = smh_store(store, models)
    traffic(store, names, models.smh.metadata.classes, days=1)
    day = f"capture/dt={DAY0.isoformat()}"
    store.put(f"{day}/garbage.jsonl", b'not json\n{"kind": "other"}\n[1, 2]\n\n')
    store.put(f"{day}/truncated.jsonl.gz", gzip.compress(b'{"kind": "capture"}\n' * 100)[:60])
    result = run(store)
    assert result.capture.skipped >= 4
    assert result.models[0].to_dict()["rows"] == 400


def test_a_correction_replaces_the_earlier_outcome(store, models) -> None:
    names = smh_store(store, models, metrics={"accuracy": 0.5})
    classes = models.smh.metadata.classes
    rows = [
        Row(f"c-{i}", stamp(DAY0, i), "etfs/SMH", "1.0.0", "production", "champion",
            "classification", feature_dict(names, np.zeros(6)), class_output(classes[0], classes),
            []).record()
        for i in range(40)
    ]  # fmt: skip
    write_capture(store, rows)
    # all wrong on the first day, corrected to right the next day
    write_outcomes(store, [{"request_id": f"c-{i}", "label": classes[1]} for i in range(40)], DAY0)
    write_outcomes(store, [{"request_id": f"c-{i}", "label": classes[0]} for i in range(40)],
                   DAY0 + timedelta(days=1))  # fmt: skip
    report = run(store).models[0].to_dict()
    assert report["performance"]["current"] == 1.0


def test_memory_stays_bounded_with_a_sample_of_outcomes(store, models) -> None:
    names = smh_store(store, models, metrics={"accuracy": 0.6})
    traffic(store, names, models.smh.metadata.classes, champion_right=0.6, challenger_right=0.8)
    full = run(store).models[0].to_dict()
    result = run(store, config=MonitorConfig(outcome_capacity=500))
    sampled = result.models[0].to_dict()
    assert result.outcomes.request_ids <= 500
    assert result.outcomes.sample_rate <= 0.25
    assert sampled["performance"]["scored"] < full["performance"]["scored"]
    assert sampled["performance"]["coverage"] == 1.0  # rows outside the sample do not count
    assert sampled["performance"]["current"] == pytest.approx(
        full["performance"]["current"], abs=0.08
    )


def _rounded(value: object) -> object:
    """A report with floats to 10 significant digits (sums taken in other slices may differ
    in the last bits)."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@pytest.mark.parametrize("mode", ["shadow", "canary"])
def test_folding_the_stream_often_or_once_gives_the_same_report(
    store, models, monkeypatch, mode: str
) -> None:
    # Given a week of traffic with drift, outcomes and a challenger, read in 14 objects
    names = smh_store(store, models, metrics={"accuracy": 0.6})
    traffic(store, names, models.smh.metadata.classes, challenger_right=0.7, shift=SHIFTED,
            mode=mode)  # fmt: skip
    once = run(store)
    # When the streams are folded into their tallies after every batch instead of at the end
    monkeypatch.setattr("tickerserve.monitor.evaluate.FOLD_CELLS", 1)
    often = run(store)
    # Then every figure of the report is the same
    assert often.capture == once.capture
    assert _rounded(often.models[0].to_dict()) == _rounded(once.models[0].to_dict())
    assert once.models[0].to_dict()["feature_drift"]["drifted"] == sorted(SHIFTED)


# -- performance before outcomes arrive (issue 19) -----------------------------------------------


def estimated_store(
    store: LocalStore, models: DemoModels, *, sharpen: float, outcome_share: float = 1.0
) -> None:
    """SMH whose outputs come from a synthetic model (probabilities, and truths drawn from the
    true ones; ``sharpen`` > 1: overconfident), calibrated on 3,000 labelled reference rows,
    then a week of captured traffic on which the model is less sure (and less often right)."""
    rng = np.random.default_rng(5)
    meta = models.smh.metadata
    classes = list(meta.classes)
    p, truth = calibrated_rows(rng, 3000, sharpen=sharpen, classes=classes)
    x = reference_rows(rng, 3000, len(meta.used_features))
    baseline = fit_baseline(
        meta.model, meta.version, "classification",
        Reference(meta.used_features, x, p, [classes[t] for t in truth]), classes=classes,
    )  # fmt: skip
    publish_with_baseline(store, models.smh, baseline)
    records, outcomes = [], []
    for d in range(7):
        day = DAY0 + timedelta(days=d)
        later, later_truth = calibrated_rows(rng, 400, scale=0.9, sharpen=sharpen, classes=classes)
        for i in range(400):
            rid = f"e-{d}-{i}"
            output = {
                "label": classes[int(np.argmax(later[i]))],
                "probabilities": dict(zip(classes, map(float, later[i]), strict=True)),
            }
            records.append(Row(rid, stamp(day, i * 97), "etfs/SMH", "1.0.0", "production",
                               "champion", "classification", {}, output, []).record())  # fmt: skip
            if rng.random() < outcome_share:
                outcomes.append({"request_id": rid, "label": classes[later_truth[i]]})
    write_capture(store, records)
    write_outcomes(store, outcomes, DAY0 + timedelta(days=7))


def test_a_calibrated_model_s_estimated_accuracy_is_within_003_of_the_realized(store, models):
    estimated_store(store, models, sharpen=1.0)
    report = run(store).models[0]
    performance, estimated = report.performance, report.performance.estimated
    assert estimated is not None and estimated.trusted and estimated.problem is None
    assert performance.current is not None and estimated.accuracy is not None
    # The traffic is harder than the reference: both agree on it, within 0.03
    assert performance.current < performance.baseline - 0.05  # type: ignore[operator]
    assert abs(estimated.accuracy - performance.current) < 0.03
    assert estimated.realized == performance.current and estimated.rows == 2800
    # day by day too (400 rows a day: within sampling noise of the day's realized accuracy)
    for window in report.windows:
        assert window.estimated_accuracy is not None and window.champion is not None
        assert abs(window.estimated_accuracy - window.champion) < 0.08
    # and the estimate's drift is the realized drift's, seen before the outcomes
    assert estimated.drift_pct is not None and performance.drift_pct is not None
    assert abs(estimated.drift_pct - performance.drift_pct) < 5


def test_before_any_outcome_arrives_the_estimate_already_says_it(store, models):
    estimated_store(store, models, sharpen=1.0, outcome_share=0.0)
    report = run(store).models[0]
    estimated = report.performance.estimated
    assert report.performance.current is None and report.performance.scored == 0
    assert estimated is not None and estimated.trusted and estimated.accuracy is not None
    assert estimated.drift_pct is not None and estimated.drift_pct > 5  # worse, already known
    assert model_figures(report)[MONITOR.estimated_drift_pct] == estimated.drift_pct


def test_a_badly_calibrated_model_s_estimate_is_flagged_not_trusted(store, models):
    estimated_store(store, models, sharpen=3.0)
    report = run(store).models[0]
    estimated = report.performance.estimated
    assert estimated is not None and not estimated.trusted
    assert estimated.problem is not None and estimated.problem.startswith("badly calibrated")
    # and it is never sent for an alarm
    assert MONITOR.estimated_drift_pct not in model_figures(report)


def test_the_answers_warnings_are_counted_per_feature_and_kept_in_history(store, models) -> None:
    # Given SMH published with its baseline (its reference never missed atr_pct) and served
    # with capture on: rsi_14 far out of range on a quarter of the rows, atr_pct missing on a
    # tenth, the rest like the reference
    meta = models.smh.metadata
    rng = np.random.default_rng(4)
    x = reference_rows(rng, 3000, len(meta.used_features))
    x[:, meta.used_features.index("atr_pct")] = rng.normal(size=3000)
    baseline = classification_baseline(models.smh, x, None)
    publish_bundle(store, attach_to_bundle(models.smh, baseline), registry_key=REGISTRY_KEY,
                   routes={"SMH": "etf"})  # fmt: skip
    service = ModelService(Settings(cache_dir=str(store.root / "cache")), store=store)
    sink = ListSink()
    for i in range(400):
        features: dict[str, float | None] = dict.fromkeys(meta.feature_names, 0.2)
        if i % 4 == 0:
            features["rsi_14"] = 50.0
        if i % 10 == 0:
            features["atr_pct"] = None
        predict(service, {"ticker": "SMH", "features": features}, capture=Capture(sink))
    records = [{**r, "time": stamp(DAY0, i)} for i, r in enumerate(sink.records)]
    write_capture(store, records)
    # When the monitor judges the day
    report = run_monitor(
        store, registry_key=REGISTRY_KEY, period=Period(DAY0, DAY0 + timedelta(days=1)), now=NOW
    )
    # Then the model's report counts the warnings per feature, most warned first
    (smh,) = report.models
    assert smh.warnings == RequestWarnings(
        rows=400,
        warned_rows=100 + 40 - 20,
        warned_share=120 / 400,
        features={
            "rsi_14": FeatureWarnings(out_of_range=100),
            "atr_pct": FeatureWarnings(unexpected_missing=40),
        },
    )
    # and its history line keeps them for the HTML report
    line = history_record(report, smh)
    assert line["warnings"] == {
        "rows": 400, "warned_rows": 120, "warned_share": 0.3,
        "features": {"rsi_14": {"out_of_range": 100, "unexpected_missing": 0},
                     "atr_pct": {"out_of_range": 0, "unexpected_missing": 40}},
    }  # fmt: skip


def test_a_run_without_checked_answers_reports_no_warnings(store, models) -> None:
    # Captured rows from before warnings existed (no "warnings" key) are not "no warnings"
    names = smh_store(store, models)
    traffic(store, names, models.smh.metadata.classes, per_day=50, days=1)
    (smh,) = run(store).models
    assert smh.warnings is None
    assert "warnings" not in smh.to_dict()


def test_each_model_reports_the_signals_it_answered_and_is_routed_on(store, models) -> None:
    # Given SPY's strategy model on its default signal and a second model on SPY's
    # direction signal (issue 14: several models per ticker), 30 requests naming no signal
    # and 20 naming direction, and 5 strategy rows captured before signals existed
    serve_spy_on_two_signals(store, models.spy, store.root / "cache")
    # When the monitor judges the day
    report = run_monitor(
        store, registry_key=REGISTRY_KEY, period=Period(DAY0, DAY0 + timedelta(days=1)), now=NOW
    )
    # Then each model says which signal it answered for, and the registry's routes to it
    by_model = {m.model: m for m in report.models}
    spy, other = by_model["etfs/SPY"], by_model["etfs/SPY/direction"]
    assert spy.signals == Signals(answered={"strategy": 35}, routed=["strategy"])
    assert other.signals == Signals(answered={"direction": 20}, routed=["direction"])
    assert (spy.signals.beyond_default, other.signals.beyond_default) == (False, True)
    assert other.to_dict()["signals"] == {"answered": {"direction": 20}, "routed": ["direction"]}
    # and its history line keeps them, beside seed 003's own keys
    line = history_record(report, other)
    assert line["signals"] == {"answered": {"direction": 20}, "routed": ["direction"]}
    assert {"timestamp", "monitoring_date", "model_a", "drift", "comparison"} <= set(line)
    assert "model_a_drift_pct" in line["drift"] and "model_b_win_rate" in line["comparison"]


def test_a_model_routed_by_no_ticker_s_own_route_serves_through_its_fallback(store, models):
    # Given the universal stock model as the fallback, AAPL's own strategy route elsewhere,
    # and MSFT (default signal direction) with no route of its own on it
    registry = Registry()
    registry.fallbacks["stock"] = "stocks/universal"
    registry.set_route("AAPL", "etfs/SPY", "stock")
    registry.set_route("MSFT", "etfs/SMH", "stock", signal="volatility")
    registry.tickers["MSFT"] = dataclasses.replace(
        registry.tickers["MSFT"], default_signal="direction"
    )
    # Then the fallback answers on the contract's default signal and on MSFT's default
    assert routed_signals(registry, "stocks/universal") == ["direction", "strategy"]
    assert routed_signals(registry, "etfs/SMH") == ["volatility"]
    assert routed_signals(registry, "etfs/QQQ") == []
