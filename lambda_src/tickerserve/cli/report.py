"""The monitoring report: a self-contained HTML page (inline SVG charts drawn with matplotlib,
a CLI-only dependency) of what the monitoring history says.

Charts follow what NannyML and Evidently draw first: a statistic over time with its threshold
band (performance drift, the largest feature PSI, the challenger's win rate), and the
per-feature PSI of the latest run; beside it, the warnings the latest run's answers carried per
feature (a value out of the version's range, or missing where its reference had none). The
bands and the recommendations' explanation use the monitor's configured defaults
(``monitor/config.json``); a run's own PSI band, recorded in its history line, draws its
features.
"""

from __future__ import annotations

import html
import io
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tickerserve.monitor.config import DEFAULTS

RC: dict[Any, Any] = {"svg.fonttype": "none", "svg.hashsalt": "tickerserve", "font.size": 9}
MAX_FEATURES = 24
ACTION_COLORS = {"keep": "#2e7d32", "watch": "#f9a825", "retrain": "#c62828", "switch": "#1565c0"}


def _when(record: dict[str, Any]) -> datetime | None:
    stamp = record.get("timestamp") or record.get("monitoring_date")
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def _series(records: list[dict[str, Any]], last: int | None) -> dict[str, list[dict[str, Any]]]:
    """History lines per model in time order (seed lines without a model are "Model A")."""
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if _when(r) is not None:
            by_model[str(r.get("model") or "Model A (seed history)")].append(r)
    for name, lines in by_model.items():
        lines.sort(key=lambda r: _when(r) or datetime.min)
        if last:
            by_model[name] = lines[-last:]
    return dict(sorted(by_model.items()))


def _get(record: dict[str, Any], *path: str) -> float | None:
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _band(ax: Axes, watch: float, alarm: float | None, top: float, labels: tuple[str, str]) -> None:
    """The threshold band: watch..alarm amber, above alarm red (one band without alarm)."""
    if alarm is None:
        ax.axhspan(watch, 1.0, color="#d6e9f8", zorder=0, label=labels[0])
        return
    ax.axhspan(watch, alarm, color="#fff3cd", zorder=0, label=labels[0])
    ax.axhspan(alarm, max(top * 1.05, alarm * 1.2), color="#f8d7da", zorder=0, label=labels[1])


def _over_time(
    ax: Axes,
    series: dict[str, list[dict[str, Any]]],
    path: tuple[str, ...],
    title: str,
    ylabel: str,
    band: tuple[float, float | None, tuple[str, str]] | None,
    ylim: tuple[float, float] | None = None,
) -> None:
    top = 0.0
    for name, lines in series.items():
        points = [(_when(r), _get(r, *path)) for r in lines]
        xs = [w for w, v in points if v is not None]
        ys = [v for _, v in points if v is not None]
        if ys:
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=name)  # type: ignore[arg-type]
            top = max(top, *ys)
    if band is not None:
        _band(ax, band[0], band[1], top, band[2])
    if ylim is not None:
        ax.set_ylim(*ylim)
    locator = mdates.AutoDateLocator(maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left")


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
    when = (record.get("timestamp") or "")[:16].replace("T", " ")
    ax.set_title(f"{model}: PSI per feature, latest run ({when})")
    ax.set_xlabel(f"PSI (watch {thresholds['watch']:g}, drift {thresholds['drift']:g})")
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
    ax.grid(True, axis="x", alpha=0.3)
    if names:
        ax.legend(fontsize=7, loc="lower right")


def _count(codes: dict[str, Any], code: str) -> int:
    value = codes.get(code)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _charts(series: dict[str, list[dict[str, Any]]]) -> list[tuple[str, Any]]:
    """(title, draw(ax)) for each chart of the page."""
    c = DEFAULTS
    charts: list[tuple[str, Any]] = [
        (
            "Performance drift",
            lambda ax: _over_time(
                ax, series, ("drift", "model_a_drift_pct"),
                "Performance drift of the champion (Model A)", "drift % vs baseline",
                (c.watch_drift_pct, c.retrain_drift_pct,
                 (f"watch ({c.watch_drift_pct:g}-{c.retrain_drift_pct:g}%)",
                  f"retrain (> {c.retrain_drift_pct:g}%)")),
            ),
        ),
        (
            "Feature drift",
            lambda ax: _over_time(
                ax, series, ("feature_drift", "psi_max"), "Largest feature PSI",
                "PSI", (c.psi_watch, c.psi_drift,
                        (f"watch (PSI >= {c.psi_watch:g})", f"drift (PSI >= {c.psi_drift:g})")),
            ),
        ),
        (
            "Challenger win rate",
            lambda ax: _over_time(
                ax, series, ("comparison", "model_b_win_rate"),
                "Challenger (Model B) win rate over daily windows", "win rate",
                (c.switch_win_rate, None, (f"switch zone (>= {c.switch_win_rate:.0%})", "")),
                (-0.03, 1.03),
            ),
        ),
    ]  # fmt: skip
    for model, lines in series.items():
        latest = lines[-1]
        if latest.get("features"):
            charts.append(
                (f"Features of {model}", lambda ax, m=model, r=latest: _feature_psi(ax, m, r))
            )
        if (latest.get("warnings") or {}).get("features"):
            charts.append(
                (
                    f"Warnings of {model}",
                    lambda ax, m=model, r=latest: _feature_warnings(ax, m, r),
                )
            )
    return charts


def _svg(draw: Any, size: tuple[float, float]) -> str:
    fig = Figure(figsize=size, layout="constrained")
    draw(fig.add_subplot())
    buffer = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if 0 <= start < end:  # an RDF block naming the generator: nothing a reader needs
        text = text[:start] + text[end + len("</metadata>") :]
    return text


def write_png(charts: list[tuple[str, Any]], path: Path) -> None:
    """All charts in one picture (the README's)."""
    columns = 2
    rows = (len(charts) + 1) // columns
    fig = Figure(figsize=(11, 3.6 * rows), layout="constrained", dpi=80)
    for i, (_, draw) in enumerate(charts):
        draw(fig.add_subplot(rows, columns, i + 1))
    with matplotlib.rc_context(RC):
        fig.savefig(path, format="png", metadata={"Software": None})


def _table(series: dict[str, list[dict[str, Any]]]) -> str:
    rows = []
    for model, lines in series.items():
        r = lines[-1]
        action = str(r.get("action") or "-")
        color = ACTION_COLORS.get(action, "#555")
        drift = _get(r, "drift", "model_a_drift_pct")
        win = _get(r, "comparison", "model_b_win_rate")
        psi_max = _get(r, "feature_drift", "psi_max")
        warned = _get(r, "warnings", "warned_share")
        test = r.get("test") or {}
        cells = [
            html.escape(model),
            html.escape(str(r.get("timestamp", ""))[:19]),
            "-" if drift is None else f"{drift:.1f}%",
            "-" if psi_max is None else f"{psi_max:.3f}",
            "-" if warned is None else f"{warned:.1%}",
            "-" if win is None else f"{win:.0%}",
            "-" if not test else html.escape(f"{test.get('name')} p={test.get('p_value', 1):.3g}"),
            f'<b style="color:{color}">{html.escape(action)}</b>',
            html.escape(str(r.get("recommendation", ""))),
            html.escape(str(r.get("reason", ""))),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in ("model", "latest run", "drift", "PSI max", "warned", "challenger wins",
                  "test", "action", "recommendation", "why")
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


MEANINGS = f"""<ul>
<li><b>keep</b>: the champion holds up (drift under {DEFAULTS.watch_drift_pct:g}%, nothing
drifted, no significantly better challenger).</li>
<li><b>watch</b>: drift between {DEFAULTS.watch_drift_pct:g}% and {DEFAULTS.retrain_drift_pct:g}%,
or inputs/outputs drifted (PSI &ge; {DEFAULTS.psi_drift:g}) while outcomes still look fine: plan
a retrain.</li>
<li><b>retrain</b>: the primary metric degraded by more than {DEFAULTS.retrain_drift_pct:g}%
against the baseline.</li>
<li><b>switch</b>: the challenger won at least {DEFAULTS.switch_win_rate:.0%} of the daily
windows, the champion's drift is under {DEFAULTS.retrain_drift_pct:g}%, and the paired test says
the difference is not noise (p &lt; {DEFAULTS.alpha:g}).</li>
</ul>"""


def render(
    records: list[dict[str, Any]], *, last: int | None = None, png: Path | None = None,
    source: str = "",
) -> str:  # fmt: skip
    """The HTML page for ``records`` (monitoring history lines)."""
    series = _series(records, last)
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
<h2>What the recommendations mean</h2>
{MEANINGS}
<p><b>warned</b>: the share of the run's answers (of versions with feature ranges) that
carried a warning: a feature outside the version's range (by default its reference's 0.1 % and
99.9 % quantiles) or missing where the reference had no missing value.</p>
<h2>Over time</h2>
{figures}
</body></html>
"""
