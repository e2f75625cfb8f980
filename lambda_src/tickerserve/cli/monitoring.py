"""``monitor run`` (judge the models on captured traffic and outcomes) and ``monitor report``
(an HTML page of the monitoring history)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from tickerserve.cli.console import JsonOption, note, print_json, table
from tickerserve.cli.dates import parse_day
from tickerserve.cli.drift_text import drift_text
from tickerserve.cli.errors import Refused
from tickerserve.cli.model_names import model_name
from tickerserve.cli.progress import ReadsCounted, progress
from tickerserve.cli.store_option import target
from tickerserve.layout import MONITORING_HISTORY_KEY
from tickerserve.monitor.config import DEFAULT_DAYS, DEFAULTS, THRESHOLDS, MonitorConfig
from tickerserve.monitor.evaluate import run_monitor
from tickerserve.monitor.report import ModelReport, Period, RequestWarnings, RunReport
from tickerserve.monitor.run import complete
from tickerserve.storage.history import read_records
from tickerserve.storage.store import S3Store

app = typer.Typer(
    help="Drift, performance and champion vs challenger on captured traffic.",
    no_args_is_help=True,
)


def period_of(since: str | None, until: str | None, today: date) -> Period:
    """Default: the last ``DEFAULT_DAYS`` days up to now (today included); ``until`` is
    exclusive."""
    end = parse_day(until, "--until") or today + timedelta(days=1)
    start = parse_day(since, "--since") or end - timedelta(days=DEFAULT_DAYS)
    try:
        return Period(start, end)
    except ValueError as exc:
        raise Refused(str(exc)) from None


@app.command("run")
def run_command(
    ctx: typer.Context,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Only this model (repeatable; default: all)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="DATE", help=f"First day (default: {DEFAULT_DAYS} days ago)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", metavar="DATE", help="Day after the last (exclusive; default: tomorrow)."
        ),
    ] = None,
    capture_bucket: Annotated[
        str | None,
        typer.Option(
            "--capture-bucket", metavar="NAME", help="Bucket of capture/ (default: the store)."
        ),
    ] = None,
    # Defaults, bounds and help: monitor/config.json (``THRESHOLDS``), as every other reader.
    psi_watch: Annotated[
        float, typer.Option("--psi-watch", help=THRESHOLDS["psiWatch"].description)
    ] = DEFAULTS.psi_watch,
    psi_drift: Annotated[
        float, typer.Option("--psi-drift", help=THRESHOLDS["psiDrift"].description)
    ] = DEFAULTS.psi_drift,
    switch_win_rate: Annotated[
        float,
        typer.Option("--switch-win-rate", help=THRESHOLDS["switchWinRate"].description),
    ] = DEFAULTS.switch_win_rate,
    retrain_drift: Annotated[
        float, typer.Option("--retrain-drift", help=THRESHOLDS["retrainDriftPct"].description)
    ] = DEFAULTS.retrain_drift_pct,
    watch_drift: Annotated[
        float, typer.Option("--watch-drift", help=THRESHOLDS["watchDriftPct"].description)
    ] = DEFAULTS.watch_drift_pct,
    alpha: Annotated[
        float, typer.Option("--alpha", help=THRESHOLDS["alpha"].description)
    ] = DEFAULTS.alpha,
    min_window: Annotated[
        int,
        typer.Option(
            "--min-window",
            min=THRESHOLDS["minWindow"].minimum,
            help=THRESHOLDS["minWindow"].description,
        ),
    ] = DEFAULTS.min_window,
    emit_metrics: Annotated[
        bool, typer.Option("--emit-metrics", help="Send the metrics to CloudWatch.")
    ] = False,
    auto_promote: Annotated[
        bool,
        typer.Option("--auto-promote", help="Promote the challenger where the run says switch."),
    ] = False,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Do not append to the monitoring history.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Judge each model on a period of captured traffic and its outcomes.

    Feature and output drift (PSI against the version's baseline), performance where
    outcomes arrived, champion vs challenger per day with a significance test, and seed
    003's recommendation: keep, watch, retrain or switch. One line per model is appended to
    metadata/monitoring_history.jsonl.
    """
    t = target(ctx)
    try:
        config = MonitorConfig(
            psi_watch=psi_watch,
            psi_drift=psi_drift,
            switch_win_rate=switch_win_rate,
            retrain_drift_pct=retrain_drift,
            watch_drift_pct=watch_drift,
            alpha=alpha,
            min_window=min_window,
        )
    except ValueError as exc:
        raise Refused(str(exc)) from None
    if config.rule.test_off:
        note(
            "warning: --alpha 1 turns the significance test off: a switch follows seed 003's "
            f"rule alone (the challenger winning {config.switch_win_rate:.0%} of the windows "
            f"on {config.seed_runs} days in a row), however few the outcomes behind it"
        )
    period = period_of(since, until, datetime.now(UTC).date())
    capture_store = (
        S3Store(capture_bucket, endpoint_url=t.endpoint_url, region=t.region)
        if capture_bucket
        else None
    )
    with progress(not json_output) as track:  # on a terminal: objects read so far
        reading = track.step(f"reading {period.since} .. {period.until}: captured rows, outcomes")
        report = run_monitor(
            ReadsCounted(t.store, reading) if track.shown else t.store,
            registry_key=t.registry_key,
            period=period,
            config=config,
            models=[model_name(m, t) for m in model] if model else None,
            capture_store=(
                ReadsCounted(capture_store, reading)
                if capture_store is not None and track.shown
                else capture_store
            ),
        )
        reading.done()
        writing = track.step("writing the history" + (", sending metrics" if emit_metrics else ""))
        done = complete(
            t.store,
            t.registry_key,
            report,
            write_history=not no_history,
            emit_metrics=emit_metrics,
            promote_switches=auto_promote,
        )
        writing.done()
    if json_output:
        print_json({**report.to_dict(), "metrics_sent": done.metrics_sent})
        return
    print_run(report)
    if done.history:
        typer.echo(f"{len(done.history)} line(s) appended to {MONITORING_HISTORY_KEY}")
    if emit_metrics:
        typer.echo(f"{done.metrics_sent} metric data points sent to CloudWatch")
    for promotion in done.promotions:
        move = promotion.move
        if move is None:
            note(f"warning: auto-promote {promotion.model}: {promotion.error}")
        else:
            typer.echo(f"promoted {move.model} {move.alias}: {move.previous} -> {move.version}")


def _f(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def performance_text(m: ModelReport) -> str:
    perf = m.performance
    text = f"{perf.metric} {_f(perf.current)}"
    if perf.baseline is not None:
        text += f" (baseline {_f(perf.baseline)})"
    return text


def estimate_text(m: ModelReport) -> str:
    estimated = m.performance.estimated
    if estimated is None or estimated.accuracy is None:
        return "-"
    return f"{estimated.accuracy:.3f}" + ("" if estimated.trusted else " (untrusted)")


def challenger_text(m: ModelReport) -> str:
    if not m.challenger:
        return "-"
    comp = m.comparison
    if not comp.windows_counted:
        return f"{m.challenger.version}: no window counted"
    days = len(m.history.winning_days)
    streak = f", {days} day(s) in a row" if days else ""
    return (
        f"{m.challenger.version}: won {comp.windows_won} of {comp.windows_counted} windows{streak}"
    )


def describe_warnings(warnings: RequestWarnings, shown: int = 8) -> str:
    """One line: how many checked answers warned, and the most warned features by code."""
    parts = [
        ", ".join(f"{code} {n}" for code, n in counts.to_dict().items() if n)
        for counts in warnings.features.values()
    ]
    named = [f"{name} ({what})" for name, what in zip(warnings.features, parts, strict=True)]
    more = len(named) - shown
    return (
        f"warnings on {warnings.warned_rows} of {warnings.rows} checked answers "
        f"({warnings.warned_share:.1%}): {'; '.join(named[:shown])}"
        + (f"; and {more} more feature(s)" if more > 0 else "")
    )


def model_text(m: ModelReport) -> str:
    """The model, with the signal(s) it serves where one is not the default (a ticker's
    ``volatility`` model beside its ``strategy`` one)."""
    if not m.signals.beyond_default:
        return m.model
    return f"{m.model} (signal {', '.join(m.signals.names)})"


def print_run(report: RunReport) -> None:
    rows = []
    for m in report.models:
        drift = m.feature_drift.summary if m.feature_drift else None
        perf, test = m.performance, m.test
        drifted = drift.drifted if drift else []
        rows.append(
            [
                model_text(m),
                f"{m.champion.alias} {m.champion.version}",
                m.rows,
                _f(drift.psi_max if drift else None)
                + (f" ({len(drifted)} drifted)" if drifted else ""),
                _f(m.output_drift.psi if m.output_drift else None),
                performance_text(m),
                drift_text(perf.drift_pct),
                estimate_text(m),
                f"{perf.scored} ({_f(perf.coverage, '.0%')})",
                challenger_text(m),
                "-" if not test else f"{test.name} p={test.p_value:.3g}",
                m.action,
            ]
        )
    capture, outcomes = report.capture, report.outcomes
    typer.echo(
        f"monitor run {report.run_id}: {report.period.since} .. {report.period.until} "
        f"(exclusive), {capture.lines} captured lines, {capture.skipped} skipped, "
        f"{outcomes.request_ids} request ids with outcomes"
    )
    typer.echo(
        table(
            [
                "MODEL",
                "CHAMPION",
                "ROWS",
                "PSI MAX",
                "OUTPUT PSI",
                "PERFORMANCE",
                "DRIFT",
                "ESTIMATED",
                "SCORED",
                "CHALLENGER",
                "TEST",
                "ACTION",
            ],
            rows,
        )
    )
    band = report.config.psi
    typer.echo(
        f"PSI: watch >= {band.watch:g}, drift >= {band.drift:g}; DRIFT: how much worse than "
        "its baseline the champion is (+ worse, - better); ESTIMATED: accuracy from confidence "
        "before outcomes arrive; SCORED: rows with an outcome (share of those judged)"
    )
    for m in report.models:
        typer.echo(f"{m.model}: {m.action}: {m.recommendation.reason}")
    for m in report.models:
        if m.warnings is not None and m.warnings.warned_rows:
            typer.echo(f"{m.model}: {describe_warnings(m.warnings)}")
        estimated = m.performance.estimated
        if estimated is not None and estimated.problem:
            note(f"{m.model}: the estimated accuracy is not trusted: {estimated.problem}")
        joined = m.joined
        left_out = {
            "repeated request ids": joined.repeated_ids,
            "rows pinned to a version or another alias": joined.pinned_rows,
            "ids with only an outcome of the other task": joined.wrong_task,
        }
        shown = [f"{n} {what}" for what, n in left_out.items() if n]
        if shown:
            note(f"{m.model}: not evidence: {', '.join(shown)}")
        if joined.corrected:
            note(f"{m.model}: {joined.corrected} scored row(s) had their outcome corrected")
    skipped = {
        "capture": capture.skipped_by_reason,
        "outcome": outcomes.skipped_by_reason,
    }
    for what, reasons in skipped.items():
        if reasons:
            listed = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
            note(f"skipped {what} lines: {listed}")
    if outcomes.ignored:
        note(f"{outcomes.ignored} outcome(s) for request ids no captured row carried: ignored")
    for name, why in report.skipped_models.items():
        note(f"skipped {name}: {why}")


@app.command("report")
def report_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the HTML page.")],
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only these models.")
    ] = None,
    last: Annotated[
        int | None, typer.Option("--last", min=1, help="Only the last N runs per model.")
    ] = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Also write the charts as one PNG picture.")
    ] = None,
) -> None:
    """Write a self-contained HTML page of the monitoring history: drift and challenger win
    rate over time, and per-feature PSI of the latest run (charts drawn with matplotlib)."""
    from tickerserve.cli.report import render  # matplotlib: only for this command

    t = target(ctx)
    log = read_records(t.store, MONITORING_HISTORY_KEY)
    records = [r for r in log.records if isinstance(r.get("model"), str) or "drift" in r]
    if model:
        wanted = {model_name(m, t) for m in model}
        records = [r for r in records if r.get("model") in wanted]
    if not records:
        raise Refused("no monitoring history to report on (run: tickerserve monitor run)")
    page = render(records, last=last, png=png, source=t.store.describe())
    out.write_text(page, encoding="utf-8")
    typer.echo(f"wrote {out} ({len(page) // 1024} KiB, {len(records)} history lines)")
    if png is not None:
        typer.echo(f"wrote {png}")
