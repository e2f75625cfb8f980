"""The monitoring history: one line per model per run in ``metadata/monitoring_history.jsonl``.

Each line is a superset of seed 003's: its own keys as the seed writes them (``timestamp``,
``monitoring_date``, ``model_a`` / ``model_b`` with training windows, ``test_window``,
``drift.model_a_drift_pct``, ``comparison`` with ``winner`` and ``model_b_win_rate``,
``recommendation`` as a sentence, ``windows``), so the seed's own analysis snippets still run,
plus ours (``model``, ``champion`` / ``challenger``, per-feature drift, the test, ``action``...).
Model A is the champion, Model B the challenger. Lines are appended with compare-and-swap;
past 64 MiB the file is rotated to a dated archive.
"""

from __future__ import annotations

from typing import Any

from tickerserve.layout import MONITORING_HISTORY_KEY
from tickerserve.monitor.evaluate import ModelReport, RunReport
from tickerserve.storage.history import append_records
from tickerserve.storage.store import Store

ROTATE_BYTES = 64 << 20
RECORD_VERSION = 1


def _model_block(version: dict[str, Any] | None, window: dict[str, Any] | None) -> dict[str, Any]:
    training = (window or {}).get("training") or {}
    block: dict[str, Any] = {
        "training_samples": training.get("samples"),
        "training_date_start": training.get("start"),
        "training_date_end": training.get("end"),
    }
    if version:
        block |= {"alias": version["alias"], "version": version["version"]}
    return block


def history_record(run: RunReport, report: ModelReport) -> dict[str, Any]:
    """The history line of ``report`` (one model of ``run``)."""
    data = report.to_dict()
    champion, challenger = data["champion"], data["challenger"]
    performance, comparison = data["performance"], data["comparison"]
    metric = comparison["metric"]
    dated = [w for w in data["windows"] if w["rows"]]
    all_window = {
        "name": f"All new data ({performance['scored']} samples)",
        "n_samples": performance["scored"],
        f"model_a_{metric}": comparison["champion"],
        f"model_b_{metric}": comparison["challenger"],
        "winner": comparison["winner"],
    }
    features = data["feature_drift"]
    return {
        # seed 003's keys, as the seed writes them
        "timestamp": run.started_at,
        "monitoring_date": run.started_at[:10],
        "model_a": _model_block(champion, champion.get("baseline")),
        "model_b": _model_block(challenger, (challenger or {}).get("baseline"))
        if challenger
        else None,
        "test_window": {
            "n_samples": performance["scored"],
            "date_start": dated[0]["name"] if dated else None,
            "date_end": dated[-1]["name"] if dated else None,
        },
        "drift": {
            "model_a_drift_pct": performance["model_a_drift_pct"],
            "drift_pct": performance["drift_pct"],
            "metric": performance["metric"],
            "baseline": performance["baseline"],
            "current": performance["current"],
            "coverage": performance["coverage"],
        },
        "comparison": {
            f"model_a_{metric}": comparison["champion"],
            f"model_b_{metric}": comparison["challenger"],
            "winner": comparison["winner"],
            "model_b_win_rate": comparison["win_rate"],
            "windows_counted": comparison["windows_counted"],
            "agreement": comparison["agreement"],
            "mode": comparison["mode"],
        },
        "recommendation": data["recommendation"]["sentence"],
        "windows": [all_window, *data["windows"]],
        # ours
        "kind": "monitoring",
        "v": RECORD_VERSION,
        "run_id": run.run_id,
        "model": data["model"],
        "task": data["task"],
        "period": {"since": run.period.since.isoformat(), "until": run.period.until.isoformat()},
        "champion": {"alias": champion["alias"], "version": champion["version"]},
        "challenger": None
        if challenger is None
        else {"alias": challenger["alias"], "version": challenger["version"]},
        "rows": data["rows"],
        "feature_drift": None
        if features is None
        else {k: v for k, v in features.items() if k != "features"},
        "features": None if features is None else features["features"],
        "output_drift": data["output_drift"],
        "performance": performance["metrics"] | {"scored": performance["scored"]},
        "test": data["test"],
        "action": data["recommendation"]["action"],
        "reason": data["recommendation"]["reason"],
        "baseline": champion.get("baseline"),
        "promoted": data.get("promoted"),
    }


def append_run(
    store: Store, run: RunReport, *, rotate_at: int = ROTATE_BYTES
) -> list[dict[str, Any]]:
    """Append one line per model of ``run``; returns the lines."""
    records = [history_record(run, m) for m in run.models]
    append_records(store, MONITORING_HISTORY_KEY, records, rotate_at=rotate_at)
    return records
