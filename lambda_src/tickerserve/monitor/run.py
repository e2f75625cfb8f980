"""A whole monitor run as the CLI and the scheduled function do it: judge, optionally promote
(only where the recommendation says switch), append the history lines, emit the metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tickerserve.errors import TickerserveError
from tickerserve.monitor.cloudwatch import emit
from tickerserve.monitor.monitoring_history import ROTATE_BYTES, append_run
from tickerserve.monitor.report import Promotion, RunReport
from tickerserve.publishing.promotion import promote
from tickerserve.storage.store import Store

logger = logging.getLogger(__name__)


@dataclass
class Completed:
    run: RunReport
    history: list[dict[str, Any]]
    metrics_sent: int
    promotions: list[Promotion]


def auto_promote(store: Store, registry_key: str, run: RunReport) -> list[Promotion]:
    """Move the champion alias to the challenger's version where the run says switch.

    The normal promote path (verify, then one registry compare-and-swap, the previous
    version kept for ``rollback``), refused when the champion alias moved since the run
    judged it. Each outcome is recorded in the model's report (so in its history line).
    """
    moves: list[Promotion] = []
    for report in run.models:
        champion, challenger = report.champion, report.challenger
        if report.action != "switch" or challenger is None:
            continue
        try:
            move = promote(
                store,
                registry_key,
                report.model,
                challenger.version,
                champion.alias,
                only_if_at=champion.version,
            )
            outcome = Promotion(report.model, move=move)
        except TickerserveError as exc:
            logger.warning("auto-promote of %s failed: %s", report.model, exc.message)
            outcome = Promotion(report.model, error=exc.message)
        report.promoted = outcome
        moves.append(outcome)
    return moves


def complete(
    store: Store,
    registry_key: str,
    run: RunReport,
    *,
    write_history: bool = True,
    emit_metrics: bool = False,
    promote_switches: bool = False,
    cloudwatch: Any = None,
    rotate_at: int = ROTATE_BYTES,
) -> Completed:
    promotions = auto_promote(store, registry_key, run) if promote_switches else []
    history = append_run(store, run, rotate_at=rotate_at) if write_history else []
    sent = emit(run, cloudwatch) if emit_metrics else 0
    return Completed(run, history, sent, promotions)
