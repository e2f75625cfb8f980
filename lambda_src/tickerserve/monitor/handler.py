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
from tickerserve.monitor.config import DAYS, MonitorConfig
from tickerserve.monitor.evaluate import run_monitor
from tickerserve.monitor.report import Period
from tickerserve.monitor.run import complete
from tickerserve.settings import (
    ENV_BUCKET,
    ENV_CAPTURE_BUCKET,
    ENV_MONITOR_AUTO_PROMOTE,
    ENV_MONITOR_DAYS,
    ENV_MONITOR_THRESHOLDS,
    ENV_REGISTRY_KEY,
    ENV_STORE_PATH,
)
from tickerserve.storage.deadline import function_time
from tickerserve.storage.store import S3Store, Store, open_store

logger = logging.getLogger("tickerserve.monitor")
logger.setLevel(logging.INFO)


@dataclass(frozen=True)
class MonitorSettings:
    """The function's environment (``settings.MONITOR_ENV_NAMES``), read once."""

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
        raw_days = env.get(ENV_MONITOR_DAYS) or str(DAYS.default)
        try:
            days = DAYS.check(int(raw_days))
        except ValueError:
            raise ValueError(f"{ENV_MONITOR_DAYS}={raw_days!r} must be {DAYS.bounds}") from None
        try:
            config = MonitorConfig.from_thresholds(
                json.loads(env.get(ENV_MONITOR_THRESHOLDS) or "{}")
            )
        except ValueError as exc:  # bad JSON too
            raise ValueError(f"{ENV_MONITOR_THRESHOLDS}: {exc}") from None
        return cls(
            bucket=env.get(ENV_BUCKET) or None,
            store_path=env.get(ENV_STORE_PATH) or None,
            registry_key=env.get(ENV_REGISTRY_KEY) or DEFAULT_REGISTRY_KEY,
            capture_bucket=env.get(ENV_CAPTURE_BUCKET) or None,
            days=int(days),
            config=config,
            auto_promote=(env.get(ENV_MONITOR_AUTO_PROMOTE) or "false").lower() == "true",
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
                "signals": m.signals.names,
                "action": m.action,
                "drift_pct": m.performance.drift_pct,
                "win_rate": m.comparison.win_rate,
            }
            for m in report.models
        ],
        "skipped_models": report.skipped_models,
        "capture": report.capture.to_dict(),
        "history_lines": len(done.history),
        "metrics_sent": done.metrics_sent,
        "promotions": [p.to_dict() for p in done.promotions],
        "seconds": round(report.seconds, 3),
    }
    logger.info(json.dumps({"message": "monitor run", **summary}, default=str))
    return summary


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Entry point of the monitor function."""
    if not isinstance(event, dict):
        event = {}
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    # No store call outlives the invocation: a hung store ends the run with our own error,
    # logged, before Lambda's timeout would cut it off mid-write.
    with function_time(None if remaining is None else remaining() / 1000):
        return run_scheduled(event, MonitorSettings.from_env())
