"""The monitoring report: a self-contained HTML page (inline SVG charts drawn with matplotlib,
a CLI-only dependency) of what the monitoring history says.

Charts follow what NannyML and Evidently draw first: a statistic over time with its threshold
band (the champion's drift, the largest feature PSI, the challenger's win rate, accuracy
realized and estimated), and the per-feature PSI of the latest run; beside it, the warnings
the latest run's answers carried per feature (a value out of the version's range, or missing
where its reference had none). The bands and the recommendations' explanation use the
monitor's configured defaults (``monitor/config.json``); a run's own PSI band, recorded in its
history line, draws its features.

What the figures mean is what the CLI and the metrics say: drift is how much worse than its
baseline the champion is (positive worse, negative better), a win rate is ``k of n`` windows.
Over time, one point per model and day (the day's last run); a line never joins two runs with
a missing one between them (runs further apart than the model's usual spacing), and lines
imported from seed 003 (which name no model version) are listed apart, never drawn. Each model
keeps one colour in every chart. An accuracy estimate the monitor does not trust is drawn faint
and dotted, labelled so. Legends sit under their plot (never over a line, however many models
or long their names), and a title or axis label wider than its column is wrapped, never cut;
the table names a model's signal where it serves one other than the default.
"""

from __future__ import annotations

import html
import io
import itertools
import math
import textwrap
import warnings
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tickerserve.cli.drift_text import drift_of, line_drift_text
from tickerserve.contract import DEFAULT_SIGNAL
from tickerserve.monitor.config import DEFAULTS

RC: dict[Any, Any] = {"svg.fonttype": "none", "svg.hashsalt": "tickerserve", "font.size": 9}
MAX_FEATURES = 24
ACTION_COLORS = {"keep": "#2e7d32", "watch": "#f9a825", "retrain": "#c62828", "switch": "#1565c0"}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip
Draw = Callable[[Axes], None]


def _when(record: dict[str, Any]) -> datetime | None:
    stamp = record.get("timestamp") or record.get("monitoring_date")
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def _day(record: dict[str, Any]) -> date | None:
    day = record.get("monitoring_date")
    try:
        return date.fromisoformat(day) if isinstance(day, str) else None
    except ValueError:
        return None


def _series(records: list[dict[str, Any]], last: int | None) -> dict[str, list[dict[str, Any]]]:
    """Our history lines per model, in time order (``last``: the newest runs of each)."""
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if isinstance(r.get("model"), str) and _when(r) is not None:
            by_model[r["model"]].append(r)
    for name, lines in by_model.items():
        lines.sort(key=lambda r: _when(r) or datetime.min)
        if last:
            by_model[name] = lines[-last:]
    return dict(sorted(by_model.items()))


def _imported(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines that name no model: seed 003's own history, as imported."""
    return sorted(
        (r for r in records if not isinstance(r.get("model"), str) and _when(r) is not None),
        key=lambda r: _when(r) or datetime.min,
    )


def _get(record: dict[str, Any], *path: str) -> float | None:
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _daily(lines: list[dict[str, Any]], value: Callable[[dict[str, Any]], float | None]) -> tuple[
    list[date], list[float]
]:  # fmt: skip
    """One point per day (the day's last run), with a gap (NaN) wherever runs are further
    apart than the model's usual spacing (a missed day of a daily schedule, a missed week of
    a weekly one), so a line never joins runs across a missing one."""
    by_day: dict[date, float | None] = {}
    for r in lines:
        day = _day(r) or (_when(r) or datetime.min).date()
        by_day[day] = value(r)
    days = sorted(by_day)
    gaps = sorted((b - a).days for a, b in itertools.pairwise(days))
    usual = gaps[len(gaps) // 2] if gaps else 1
    xs: list[date] = []
    ys: list[float] = []
    for day in days:
        if xs and (day - xs[-1]).days > max(1, 1.5 * usual):
            xs.append(xs[-1] + timedelta(days=1))
            ys.append(math.nan)
        v = by_day[day]
        xs.append(day)
        ys.append(math.nan if v is None else v)
    return xs, ys


def _colors(models: list[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def _date_axis(ax: Axes, days: list[date]) -> None:
    """An axis that fits the days drawn: a few days around a single run, ticks on days for a
    few weeks, on weeks or months beyond (never a multi-year axis for one point)."""
    first, last = min(days), max(days)
    span = (last - first).days
    pad = max(1, round(span * 0.04))
    ax.set_xlim(
        mdates.date2num(first - timedelta(days=pad)), mdates.date2num(last + timedelta(days=pad))
    )
    if span <= 14:
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, (span + 2 * pad) // 7)))
    elif span <= 120:
        ax.xaxis.set_major_locator(
            mdates.WeekdayLocator(byweekday=mdates.MO, interval=span // 56 + 1)
        )
    else:
        ax.xaxis.set_major_locator(mdates.MonthLocator(interval=span // 180 + 1))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d" if span <= 365 else "%Y-%m"))
    for label in ax.get_xticklabels():
        label.set_rotation(0)


def _band(ax: Axes, low: float, high: float | None, top: float, labels: tuple[str, str]) -> None:
    """The threshold band: low..high amber, above high red (one blue band without high)."""
    if high is None:
        ax.axhspan(low, 1.0, color="#d6e9f8", zorder=0, label=labels[0])
        return
    ax.axhspan(low, high, color="#fff3cd", zorder=0, label=labels[0])
    ax.axhspan(high, max(top * 1.05, high * 1.2), color="#f8d7da", zorder=0, label=labels[1])


def _over_time(
    ax: Axes,
    series: dict[str, list[dict[str, Any]]],
    colors: dict[str, str],
    value: Callable[[dict[str, Any]], float | None],
    title: str,
    ylabel: str,
    band: tuple[float, float | None, tuple[str, str]] | None,
    ylim: tuple[float, float] | None = None,
    zero_line: bool = False,
) -> None:
    top = 0.0
    days: list[date] = []
    for name, lines in series.items():
        xs, ys = _daily(lines, value)
        if not any(not math.isnan(y) for y in ys):
            continue
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=name, color=colors[name])  # type: ignore[arg-type]
        days += xs
        top = max(top, *(y for y in ys if not math.isnan(y)))
    if band is not None:
        _band(ax, band[0], band[1], top, band[2])
    if zero_line:
        ax.axhline(0.0, color="#555", linewidth=0.8)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if days:
        _date_axis(ax, days)
    else:
        ax.set_xticks([])
        ax.text(0.5, 0.5, "no run has this figure yet", ha="center", transform=ax.transAxes)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    _legend_below(ax)


def _legend_below(ax: Axes) -> None:
    """The legend under the plot, never over a line (however many models, however long
    their names): a few entries a row, the layout making room for it."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    spec = ax.get_subplotspec()
    share = 1.0 if spec is None else len(spec.colspan) / spec.get_gridspec().ncols
    # About 17 characters of 7-point text an inch of the axes' column; a marker and a gap each
    inches = ax.figure.bbox.width / ax.figure.dpi if ax.figure is not None else 6.0
    chars = inches * share * 17
    longest = max(len(label) for label in labels) + 8
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.09), frameon=False,
              ncol=max(1, min(len(labels), 4, int(chars // longest))))  # fmt: skip


def _realized_accuracy(record: dict[str, Any]) -> float | None:
    drift = record.get("drift") or {}
    return _get(record, "drift", "current") if drift.get("metric") == "accuracy" else None


def _estimated_accuracy(record: dict[str, Any]) -> float | None:
    return _get(record, "estimated", "accuracy")


def _trusted_estimate(record: dict[str, Any]) -> float | None:
    estimated = record.get("estimated") or {}
    return _estimated_accuracy(record) if estimated.get("trusted") is True else None


def _untrusted_estimate(record: dict[str, Any]) -> float | None:
    estimated = record.get("estimated") or {}
    return _estimated_accuracy(record) if estimated.get("trusted") is not True else None


def _accuracy(ax: Axes, series: dict[str, list[dict[str, Any]]], colors: dict[str, str]) -> None:
    """Realized accuracy (solid) beside the accuracy estimated from confidence (dashed); an
    estimate the monitor does not trust (a badly calibrated model) is drawn faint and dotted,
    and labelled so, as the table and ``monitor run`` mark it."""
    days: list[date] = []
    for name, lines in series.items():
        for value, style, alpha, label in (
            (_realized_accuracy, "-", 1.0, f"{name} realized"),
            (_trusted_estimate, "--", 1.0, f"{name} estimated"),
            (_untrusted_estimate, ":", 0.45, f"{name} estimated (untrusted)"),
        ):
            xs, ys = _daily(lines, value)
            if all(math.isnan(y) for y in ys):
                continue
            ax.plot(xs, ys, style, marker="o", markersize=3, linewidth=1.2, label=label,  # type: ignore[arg-type]
                    color=colors[name], alpha=alpha)  # fmt: skip
            days += xs
    if days:
        _date_axis(ax, days)
    ax.set_title("Champion accuracy: realized and estimated")
    ax.set_ylabel("accuracy")
    ax.grid(True, alpha=0.3)
    _legend_below(ax)


def _feature_psi(ax: Axes, model: str, record: dict[str, Any]) -> None:
    features = record.get("features") or {}
    drift = record.get("feature_drift") or {}
    thresholds = drift.get("thresholds") or DEFAULTS.psi.to_dict()
    judged = {
        n: f["psi"] for n, f in features.items() if isinstance(f, dict) and f.get("psi") is not None
    }
    top = sorted(judged.items(), key=lambda kv: kv[1], reverse=True)[:MAX_FEATURES]
    names = [n for n, _ in reversed(top)]
    values = [v for _, v in reversed(top)]
    colors = [
        "#c62828"
        if v >= thresholds["drift"]
        else "#f9a825"
        if v >= thresholds["watch"]
        else "#2e7d32"
        for v in values
    ]
    ax.barh(names, values, color=colors)
    ax.axvline(thresholds["watch"], color="#f9a825", linestyle="--", linewidth=1)
    ax.axvline(thresholds["drift"], color="#c62828", linestyle="--", linewidth=1)
    when = (record.get("timestamp") or "")[:10]
    ax.set_title(f"{model}: PSI per feature")
    ax.set_xlabel(
        f"PSI of the run of {when} (watch {thresholds['watch']:g}, drift {thresholds['drift']:g})"
    )
    ax.grid(True, axis="x", alpha=0.3)
    if not names:
        ax.text(0.5, 0.5, "no baseline: no feature drift", ha="center", transform=ax.transAxes)


def _feature_warnings(ax: Axes, model: str, record: dict[str, Any]) -> None:
    """Per feature, how many answers of the latest run warned, stacked by code."""
    warnings = record.get("warnings") or {}
    features = warnings.get("features") or {}
    counted = {
        name: (_count(codes, "out_of_range"), _count(codes, "unexpected_missing"))
        for name, codes in features.items()
        if isinstance(codes, dict)
    }
    top = sorted(counted.items(), key=lambda kv: sum(kv[1]), reverse=True)[:MAX_FEATURES]
    names = [n for n, _ in reversed(top)]
    out_of_range = [c[0] for _, c in reversed(top)]
    missing = [c[1] for _, c in reversed(top)]
    ax.barh(names, out_of_range, color="#c62828", label="out of range")
    ax.barh(names, missing, left=out_of_range, color="#f9a825", label="unexpected missing")
    when = (record.get("timestamp") or "")[:16].replace("T", " ")
    share = warnings.get("warned_share")
    rows = warnings.get("rows")
    ax.set_title(f"{model}: warnings per feature, latest run ({when})")
    ax.set_xlabel(
        "answers with the warning"
        + (f" (warned: {share:.1%} of {rows} checked)" if isinstance(share, float) else "")
    )
    # The stacked bars' left edges would pin the axis at the longest bar: room beyond it.
    ax.set_xlim(0, max((a + b for a, b in zip(out_of_range, missing, strict=True)), default=0)
                * 1.05 or 1)  # fmt: skip
    ax.grid(True, axis="x", alpha=0.3)
    if names:
        ax.legend(fontsize=7, loc="lower right")


def _count(codes: dict[str, Any], code: str) -> int:
    value = codes.get(code)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _charts(series: dict[str, list[dict[str, Any]]]) -> list[tuple[str, Draw]]:
    """(caption, draw(ax)) for each chart of the page."""
    c = DEFAULTS
    colors = _colors(list(series))
    charts: list[tuple[str, Draw]] = [
        (
            "Drift: how much worse than its baseline each champion is (+ worse, - better)",
            lambda ax: _over_time(
                ax, series, colors, drift_of, "Champion drift vs its baseline",
                "drift % (+ worse, - better)",
                (c.watch_drift_pct, c.retrain_drift_pct,
                 (f"watch ({c.watch_drift_pct:g}-{c.retrain_drift_pct:g}%)",
                  f"retrain (> {c.retrain_drift_pct:g}%)")),
                zero_line=True,
            ),
        ),
        (
            "Feature drift: the largest PSI of each run",
            lambda ax: _over_time(
                ax, series, colors, lambda r: _get(r, "feature_drift", "psi_max"),
                "Largest feature PSI", "PSI",
                (c.psi_watch, c.psi_drift,
                 (f"watch (PSI >= {c.psi_watch:g})", f"drift (PSI >= {c.psi_drift:g})")),
            ),
        ),
        (
            "Challenger win rate: its share of the daily windows counted (k of n in the table)",
            lambda ax: _over_time(
                ax, series, colors, lambda r: _get(r, "comparison", "model_b_win_rate"),
                "Challenger win rate", "share of windows won",
                (c.switch_win_rate, None, (f"switch zone (>= {c.switch_win_rate:.0%})", "")),
                (-0.03, 1.03),
            ),
        ),
    ]  # fmt: skip
    if any(_estimated_accuracy(r) is not None for lines in series.values() for r in lines):
        charts.append(
            (
                "Accuracy realized once outcomes arrived (solid) and estimated from confidence "
                "(dashed; dotted and faint where the estimate is not trusted)",
                lambda ax: _accuracy(ax, series, colors),
            )
        )
    for model, lines in series.items():
        latest = lines[-1]
        if latest.get("features"):

            def draw(ax: Axes, m: str = model, r: dict[str, Any] = latest) -> None:
                _feature_psi(ax, m, r)

            charts.append((f"Features of {model}", draw))
        if (latest.get("warnings") or {}).get("features"):

            def draw_warnings(ax: Axes, m: str = model, r: dict[str, Any] = latest) -> None:
                _feature_warnings(ax, m, r)

            charts.append((f"Warnings of {model}", draw_warnings))
    return charts


def _quietly(save: Callable[[], None]) -> None:
    """Render with no library warning reaching the terminal (the axes are set up so none
    should arise; a matplotlib or numpy notice is not the user's business)."""
    with warnings.catch_warnings(), matplotlib.rc_context(RC):
        warnings.simplefilter("ignore")
        save()


def _fit_labels(fig: Figure) -> None:
    """Wrap any axes title or x label wider than its column of the figure onto more lines,
    so none is cut at the picture's edge or runs into its neighbour (a long model name)."""
    with warnings.catch_warnings(), matplotlib.rc_context(RC):
        warnings.simplefilter("ignore")
        fig.draw_without_rendering()  # lays the figure out: the extents below are final
        width = fig.bbox.width
        for ax in fig.axes:
            spec = ax.get_subplotspec()
            if spec is None:
                continue
            columns = spec.get_gridspec().ncols
            left = width * spec.colspan.start / columns
            right = width * spec.colspan.stop / columns
            for text in (ax.title, ax.xaxis.label):
                box = text.get_window_extent()
                if box.width <= 0 or (box.x0 >= left and box.x1 <= right):
                    continue
                content = text.get_text().replace("\n", " ")
                room = (
                    (right - left)
                    / box.width
                    * max(len(line) for line in text.get_text().split("\n"))
                )
                text.set_text(textwrap.fill(content, max(12, int(room * 0.92))))


def _svg(draw: Draw, size: tuple[float, float]) -> str:
    fig = Figure(figsize=size, layout="constrained")
    draw(fig.add_subplot())
    _fit_labels(fig)
    buffer = io.StringIO()
    _quietly(lambda: fig.savefig(buffer, format="svg", metadata={"Date": None}))
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if 0 <= start < end:  # an RDF block naming the generator: nothing a reader needs
        text = text[:start] + text[end + len("</metadata>") :]
    return text


def write_png(charts: list[tuple[str, Draw]], path: Path) -> None:
    """All charts in one picture (the README's)."""
    columns = 2
    rows = (len(charts) + 1) // columns
    fig = Figure(figsize=(12, 3.8 * rows), layout="constrained", dpi=80)
    for i, (_, draw) in enumerate(charts):
        draw(fig.add_subplot(rows, columns, i + 1))
    _fit_labels(fig)
    _quietly(lambda: fig.savefig(path, format="png", metadata={"Software": None}))


def _windows_text(r: dict[str, Any]) -> str:
    comparison = r.get("comparison") or {}
    counted, won = comparison.get("windows_counted"), comparison.get("windows_won")
    win = _get(r, "comparison", "model_b_win_rate")
    if win is None:
        return "-"
    if isinstance(counted, int) and isinstance(won, int):
        return f"{won} of {counted} windows ({win:.0%})"
    return f"{win:.0%}"


def _days_text(r: dict[str, Any]) -> str:
    history = r.get("history") or {}
    days, needed = history.get("winning_days"), history.get("runs_needed")
    if not isinstance(days, list) or not isinstance(needed, int):
        return "-"
    return f"{len(days)} ({needed} needed)"


def model_text(model: str, record: dict[str, Any]) -> str:
    """The model, with the signals its latest line says it served where one is not the
    default (as ``monitor run`` shows it)."""
    found = record.get("signals") or {}
    answered, routed = found.get("answered"), found.get("routed")
    names = [s for s in answered if isinstance(s, str)] if isinstance(answered, dict) else []
    if isinstance(routed, list):
        names += sorted({s for s in routed if isinstance(s, str)} - set(names))
    if all(s == DEFAULT_SIGNAL for s in names):
        return model
    return f"{model} (signal {', '.join(names)})"


def _table(series: dict[str, list[dict[str, Any]]]) -> str:
    rows = []
    for model, lines in series.items():
        r = lines[-1]
        action = str(r.get("action") or "-")
        color = ACTION_COLORS.get(action, "#555")
        drift = r.get("drift") or {}
        metric = str(drift.get("metric") or "metric")
        current, baseline = _get(r, "drift", "current"), _get(r, "drift", "baseline")
        estimated = r.get("estimated") or {}
        est = _get(r, "estimated", "accuracy")
        scored = _get(r, "performance", "scored")
        psi_max = _get(r, "feature_drift", "psi_max")
        warned = _get(r, "warnings", "warned_share")
        test = r.get("test") or {}
        cells = [
            html.escape(model_text(model, r)),
            html.escape(str(r.get("timestamp", ""))[:19]),
            html.escape(line_drift_text(r)),
            "-" if current is None else html.escape(
                f"{metric} {current:.3f}" + ("" if baseline is None else f" vs {baseline:.3f}")
            ),
            "-" if est is None else f"{est:.3f}" + ("" if estimated.get("trusted") else
                                                    " (untrusted)"),
            "-" if scored is None else f"{scored:.0f}",
            "-" if psi_max is None else f"{psi_max:.3f}",
            "-" if warned is None else f"{warned:.1%}",
            html.escape(_windows_text(r)),
            html.escape(_days_text(r)),
            "-" if not test else html.escape(f"{test.get('name')} p={test.get('p_value', 1):.3g}"),
            f'<b style="color:{color}">{html.escape(action)}</b>',
            html.escape(str(r.get("recommendation", ""))),
            html.escape(str(r.get("reason", ""))),
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in ("model", "latest run", "drift (+ worse)", "performance vs baseline",
                  "estimated accuracy", "scored outcomes", "PSI max", "warned", "challenger won",
                  "winning days in a row", "test", "action", "recommendation", "why")
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _imported_table(lines: list[dict[str, Any]]) -> str:
    if not lines:
        return ""
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{c}</td>"
            for c in (
                html.escape(str(r.get("monitoring_date") or r.get("timestamp", ""))[:10]),
                html.escape(line_drift_text(r)),
                html.escape(_windows_text(r)),
                html.escape(str(r.get("recommendation", ""))),
            )
        )
        + "</tr>"
        for r in lines
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("date", "Model A drift", "Model B win rate", "recommendation")
    )
    return (
        "<h2>Imported history</h2><p>Lines imported from seed 003's own "
        "<code>monitoring_history.jsonl</code>: they judged the seed's models, name no model "
        "version here, and are listed, not drawn, nor counted by the multi-run rules.</p>"
        f"<table><tr>{head}</tr>{rows}</table>"
    )


MEANINGS = f"""<ul>
<li><b>drift</b>: how much worse than its baseline the champion is on its primary metric, in
percent of the baseline's value: positive is worse, negative better, for accuracy and RMSE
alike (the history's <code>drift.model_a_drift_pct</code> keeps seed 003's meaning: the
degradation alone, 0 when better).</li>
<li><b>keep</b>: the champion holds up (drift under {DEFAULTS.watch_drift_pct:g}%, nothing
drifted, no challenger better for long enough).</li>
<li><b>watch</b>: drift between {DEFAULTS.watch_drift_pct:g}% and {DEFAULTS.retrain_drift_pct:g}%,
or inputs/outputs drifted (PSI &ge; {DEFAULTS.psi_drift:g}) while outcomes still look fine: plan
a retrain.</li>
<li><b>retrain</b>: the primary metric degraded by more than {DEFAULTS.retrain_drift_pct:g}%
against the baseline, or it degraded from each day's run to the next over
{DEFAULTS.seed_runs} days to at least {DEFAULTS.watch_drift_pct:g}% (seed 003: "degrades over
3+ monitoring runs").</li>
<li><b>switch</b>: the challenger won at least {DEFAULTS.switch_win_rate:.0%} of the daily
windows on {DEFAULTS.seed_runs} different days in a row (seed 003: "3+ consecutive runs"; the
runs of one day count once), the champion's drift is under {DEFAULTS.retrain_drift_pct:g}%, and
the significance test says the difference is not noise (p &lt; {DEFAULTS.alpha:g}; with
<code>--alpha 1</code> the seed's rule alone).</li>
</ul>"""


def render(
    records: list[dict[str, Any]], *, last: int | None = None, png: Path | None = None,
    source: str = "",
) -> str:  # fmt: skip
    """The HTML page for ``records`` (monitoring history lines)."""
    series = _series(records, last)
    imported = _imported(records)
    charts = _charts(series)
    figures = "\n".join(
        f"<figure>{_svg(draw, (9, 3.4))}<figcaption>{html.escape(title)}</figcaption></figure>"
        for title, draw in charts
    )
    if png is not None:
        write_png(charts, png)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tickerserve monitoring report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }}
figure {{ margin: 1.5em 0; }} figcaption {{ color: #666; font-size: 12px; }}
svg {{ max-width: 100%; height: auto; }}
</style></head><body>
<h1>tickerserve monitoring report</h1>
<p>{len(records)} history lines from {html.escape(source)}; Model A is each model's champion,
Model B its challenger (shadow or canary).</p>
<h2>Latest run per model</h2>
{_table(series)}
<h2>What the figures and recommendations mean</h2>
{MEANINGS}
<p><b>warned</b>: the share of the run's answers (of versions with feature ranges) that
carried a warning: a feature outside the version's range (by default its reference's 0.1 % and
99.9 % quantiles) or missing where the reference had no missing value.</p>
<h2>Over time</h2>
<p>One point per model and day (the day's last run); a line breaks where a run is missing
(runs further apart than the model's usual spacing).</p>
{figures}
{_imported_table(imported)}
</body></html>
"""
