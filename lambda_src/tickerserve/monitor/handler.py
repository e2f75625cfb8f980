"""The scheduled monitor function: EventBridge Scheduler invokes it daily (by default) with
its scheduled time; it judges the complete days before that time and writes the history,
the metrics and, when configured, the promotions.

The schedule's input is ``{"scheduled_time": "<aws.scheduler.scheduled-time>"}``; a manual
invocation may pass ``since`` / ``until`` (ISO dates, ``until`` exclusive) and ``models``.
Using the scheduled time (not the clock) makes a retried invocation judge the same days.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tickerserve.layout import DEFAULT_REGISTRY_KEY
from tickerserve.monitor.drift_statistics import Threshold
from tickerserve.monitor.evaluate import DEFAULT_DAYS, MonitorConfig, Period, run_monitor
from tickerserve.monitor.recommendation import Rule
from tickerserve.monitor.run import complete
from tickerserve.storage.store import S3Store, Store, open_store

logger = logging.getLogger("tickerserve.monitor")
logger.setLevel(logging.INFO)

ENV_BUCKET = "TICKERSERVE_BUCKET"
ENV_STORE_PATH = "TICKERSERVE_STORE_PATH"
ENV_REGISTRY_KEY = "TICKERSERVE_REGISTRY_KEY"
ENV_CAPTURE_BUCKET = "TICKERSERVE_CAPTURE_BUCKET"
ENV_DAYS = "TICKERSERVE_MONITOR_DAYS"
ENV_THRESHOLDS = "TICKERSERVE_MONITOR_THRESHOLDS"
ENV_AUTO_PROMOTE = "TICKERSERVE_MONITOR_AUTO_PROMOTE"
ENV_NAMES = (
    ENV_BUCKET,
    ENV_STORE_PATH,
    ENV_REGISTRY_KEY,
    ENV_CAPTURE_BUCKET,
    ENV_DAYS,
    ENV_THRESHOLDS,
    ENV_AUTO_PROMOTE,
)
THRESHOLD_KEYS = {
    "psiWatch": 0.1,
    "psiDrift": 0.25,
    "switchWinRate": 0.75,
    "retrainDriftPct": 10.0,
    "watchDriftPct": 5.0,
    "alpha": 0.05,
    "minWindow": 30,
}


@dataclass(frozen=True)
class MonitorSettings:
    """The function's environment, read once."""

    bucket: str | None
    store_path: str | None
    registry_key: str
    capture_bucket: str | None
    days: int
    config: MonitorConfig
    auto_promote: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MonitorSettings:
        env = os.environ if env is None else env
        days = int(env.get(ENV_DAYS) or DEFAULT_DAYS)
        if not 1 <= days <= 92:
            raise ValueError(f"{ENV_DAYS} must be 1..92")
        raw = json.loads(env.get(ENV_THRESHOLDS) or "{}")
        unknown = set(raw) - set(THRESHOLD_KEYS)
        if unknown:
            raise ValueError(f"{ENV_THRESHOLDS}: unknown keys {sorted(unknown)}")
        t = {**THRESHOLD_KEYS, **raw}
        config = MonitorConfig(
            psi=Threshold(float(t["psiWatch"]), float(t["psiDrift"])),
            rule=Rule(
                float(t["switchWinRate"]),
                float(t["retrainDriftPct"]),
                float(t["watchDriftPct"]),
                float(t["alpha"]),
            ),
            min_window=int(t["minWindow"]),
        )
        return cls(
            bucket=env.get(ENV_BUCKET) or None,
            store_path=env.get(ENV_STORE_PATH) or None,
            registry_key=env.get(ENV_REGISTRY_KEY) or DEFAULT_REGISTRY_KEY,
            capture_bucket=env.get(ENV_CAPTURE_BUCKET) or None,
            days=days,
            config=config,
            auto_promote=(env.get(ENV_AUTO_PROMOTE) or "false").lower() == "true",
        )


def period_for(event: Mapping[str, Any], days: int, now: datetime) -> Period:
    """The days a run judges: the event's ``since``/``until`` when given, else the ``days``
    complete days before the scheduled time."""
    scheduled = event.get("scheduled_time")
    moment = datetime.fromisoformat(str(scheduled).replace("Z", "+00:00")) if scheduled else now
    until = date.fromisoformat(event["until"]) if event.get("until") else moment.date()
    since = (
        date.fromisoformat(event["since"]) if event.get("since") else until - timedelta(days=days)
    )
    return Period(since, until)


def run_scheduled(
    event: Mapping[str, Any],
    settings: MonitorSettings,
    *,
    store: Store | None = None,
    capture_store: Store | None = None,
    cloudwatch: Any = None,
) -> dict[str, Any]:
    """One scheduled run; returns a short summary (also logged)."""
    now = datetime.now(UTC)
    period = period_for(event, settings.days, now)
    store = store or open_store(bucket=settings.bucket, store_path=settings.store_path)
    if capture_store is None and settings.capture_bucket:
        capture_store = S3Store(settings.capture_bucket)
    models = event.get("models")
    report = run_monitor(
        store,
        registry_key=settings.registry_key,
        period=period,
        config=settings.config,
        models=list(models) if isinstance(models, list) else None,
        capture_store=capture_store,
        now=now,
    )
    done = complete(
        store,
        settings.registry_key,
        report,
        write_history=True,
        emit_metrics=True,
        promote_switches=settings.auto_promote,
        cloudwatch=cloudwatch,
    )
    summary = {
        "run_id": report.run_id,
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "models": [
            {
                "model": m.model,
                "action": m.action,
                "drift_pct": m.to_dict()["performance"]["drift_pct"],
                "win_rate": m.to_dict()["comparison"]["win_rate"],
            }
            for m in report.models
        ],
        "skipped_models": report.skipped_models,
        "capture": report.capture,
        "history_lines": len(done.history),
        "metrics_sent": done.metrics_sent,
        "promotions": done.promotions,
        "seconds": round(report.seconds, 3),
    }
    logger.info(json.dumps({"message": "monitor run", **summary}, default=str))
    return summary


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Entry point of the monitor function."""
    if not isinstance(event, dict):
        event = {}
    return run_scheduled(event, MonitorSettings.from_env())
