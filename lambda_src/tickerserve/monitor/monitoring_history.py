"""The monitoring history: one line per model per run in ``metadata/monitoring_history.jsonl``.

Each line is a superset of seed 003's: its own keys as the seed writes them (``timestamp``,
``monitoring_date``, ``model_a`` / ``model_b`` with training windows, ``test_window``,
``drift.model_a_drift_pct``, ``comparison`` with ``winner`` and ``model_b_win_rate``,
``recommendation`` as a sentence, ``windows``), so the seed's own analysis snippets still run,
plus ours (``model``, ``signals``, ``champion`` / ``challenger``, per-feature drift, the answers'
warnings per feature, the test, ``action``...).

``signals`` says what the model served (a ticker may route several models, one per signal):
``{"answered": {"volatility": 400}, "routed": ["volatility"]}``, the rows it answered per
signal in the run's capture and the signals the registry routes to it at the run.

Drift keeps the seed's meaning: ``drift.model_a_drift_pct`` is how much worse than its baseline
Model A is, in percent (0 when it is better: the seed's ``> 10 % -> retrain`` reads it), and
``drift.drift_pct`` our signed figure (positive worse, negative better, for accuracy and RMSE
alike). ``comparison.model_b_win_rate`` is a share (0..1) of ``windows_counted`` windows,
``windows_won`` of them won; ``history`` lists the days in a row the challenger won (seed
003's 3-run rule reads these lines back).
Model A is the champion, Model B the challenger. Lines are appended with compare-and-swap;
past 64 MiB the file is rotated to a dated archive.
"""

from __future__ import annotations

from typing import Any

from tickerserve.layout import MONITORING_HISTORY_KEY
from tickerserve.monitor.report import ModelReport, RunReport
from tickerserve.storage.history import append_records
from tickerserve.storage.store import Store

ROTATE_BYTES = 64 << 20
RECORD_VERSION = 1


def _model_block(ref: dict[str, Any] | None, training: dict[str, Any]) -> dict[str, Any]:
    """Seed 003's ``model_a`` / ``model_b``: the training window, and which version it is."""
    block: dict[str, Any] = {
        "training_samples": training.get("samples"),
        "training_date_start": training.get("start"),
        "training_date_end": training.get("end"),
    }
    if ref:
        block |= ref
    return block


def history_record(run: RunReport, report: ModelReport) -> dict[str, Any]:
    """The history line of ``report`` (one model of ``run``): the one place it is written."""
    champion, challenger = report.champion, report.challenger
    performance, comparison = report.performance, report.comparison
    metric = comparison.metric
    windows = [w.to_dict() for w in report.windows]
    dated = [w for w in report.windows if w.rows]
    all_window = {
        "name": f"All new data ({performance.scored} samples)",
        "n_samples": performance.scored,
        f"model_a_{metric}": comparison.champion,
        f"model_b_{metric}": comparison.challenger,
        "winner": comparison.winner,
    }
    champion_ref = {"alias": champion.alias, "version": champion.version}
    challenger_ref = (
        None if challenger is None else {"alias": challenger.alias, "version": challenger.version}
    )
    features = report.feature_drift
    feature_drift = None if features is None else features.to_dict()
    return {
        # seed 003's keys, as the seed writes them
        "timestamp": run.started_at,
        "monitoring_date": run.started_at[:10],
        "model_a": _model_block(champion_ref, champion.training),
        "model_b": None
        if challenger is None
        else _model_block(challenger_ref, challenger.training),
        "test_window": {
            "n_samples": performance.scored,
            "date_start": dated[0].name if dated else None,
            "date_end": dated[-1].name if dated else None,
        },
        "drift": {
            "model_a_drift_pct": performance.model_a_drift_pct,
            "drift_pct": performance.drift_pct,
            "metric": performance.metric,
            "baseline": performance.baseline,
            "current": performance.current,
            "coverage": performance.coverage,
        },
        "comparison": {
            f"model_a_{metric}": comparison.champion,
            f"model_b_{metric}": comparison.challenger,
            "winner": comparison.winner,
            "model_b_win_rate": comparison.win_rate,
            "windows_counted": comparison.windows_counted,
            "windows_won": comparison.windows_won,
            "agreement": comparison.agreement,
            "mode": comparison.mode,
        },
        "recommendation": report.recommendation.sentence,
        "windows": [all_window, *windows],
        # ours
        "kind": "monitoring",
        "v": RECORD_VERSION,
        "run_id": run.run_id,
        "model": report.model,
        "signals": report.signals.to_dict(),
        "task": report.task,
        "period": {"since": run.period.since.isoformat(), "until": run.period.until.isoformat()},
        "champion": champion_ref,
        "challenger": challenger_ref,
        "rows": report.rows,
        "feature_drift": None
        if feature_drift is None
        else {k: v for k, v in feature_drift.items() if k != "features"},
        "features": None if feature_drift is None else feature_drift["features"],
        "output_drift": None if report.output_drift is None else report.output_drift.to_dict(),
        "warnings": None if report.warnings is None else report.warnings.to_dict(),
        "performance": performance.metrics | {"scored": performance.scored},
        "estimated": None if performance.estimated is None else performance.estimated.to_dict(),
        "joined": report.joined.to_dict(),
        "history": report.history.to_dict(),
        "test": None if report.test is None else report.test.to_dict(),
        "action": report.action,
        "reason": report.recommendation.reason,
        "baseline": champion.baseline_dict(),
        "promoted": None if report.promoted is None else report.promoted.to_dict(),
    }


def append_run(
    store: Store, run: RunReport, *, rotate_at: int = ROTATE_BYTES
) -> list[dict[str, Any]]:
    """Append one line per model of ``run``; returns the lines."""
    records = [history_record(run, m) for m in run.models]
    append_records(store, MONITORING_HISTORY_KEY, records, rotate_at=rotate_at)
    return records
