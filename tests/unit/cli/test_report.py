"""The monitoring report page: the latest run of each model in a table, charts over time as
inline SVG, a chart of per-feature PSI where the latest run has one; self-contained (nothing
fetched), every text escaped, and the same history drawn the same way twice."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
from matplotlib.figure import Figure

from tickerserve.cli.report import _charts, _fit_labels, _series, render


def line(model: str | None, day: int, *, action: str = "keep", drift: float = 1.0,
         psi: float | None = None, win: float | None = None, features: bool = False,
         warned: bool = False,
         recommendation: str = "USE MODEL A (90%)") -> dict[str, Any]:  # fmt: skip
    record: dict[str, Any] = {
        "timestamp": f"2026-12-{day:02d}T06:00:00Z",
        "monitoring_date": f"2026-12-{day:02d}",
        "drift": {"model_a_drift_pct": drift},
        "comparison": {"model_b_win_rate": win, "winner": "Model A"},
        "recommendation": recommendation,
    }
    if model is not None:
        record |= {"model": model, "action": action, "reason": f"{action} because",
                   "test": {"name": "mcnemar_exact", "p_value": 0.012345}}  # fmt: skip
    if psi is not None:
        record["feature_drift"] = {"psi_max": psi}
    if features:
        record["features"] = {"rsi_14": {"psi": 0.31, "level": "drift"},
                              "iv_rank": {"psi": 0.02, "level": "ok"}}  # fmt: skip
    if warned:
        record["warnings"] = {"rows": 400, "warned_rows": 30, "warned_share": 0.075, "features": {
            "rsi_14": {"out_of_range": 25, "unexpected_missing": 0},
            "iv_rank": {"out_of_range": 1, "unexpected_missing": 6}}}  # fmt: skip
    return record


def rows_of(page: str) -> list[list[str]]:
    table = page[page.index("<table>") : page.index("</table>")]
    return [re.findall(r"<td>(.*?)</td>", row) for row in table.split("<tr>")[2:]]


def test_the_table_shows_each_models_latest_run():
    records = [
        line("etfs/SMH", 1, drift=2.0),
        line("etfs/SMH", 3, action="switch", drift=4.25, psi=0.3, win=0.8, warned=True,
             recommendation="SWITCH TO MODEL B (challenger 1.0.1)"),
        line("etfs/SMH", 2, action="watch"),
        line("etfs/SPY", 2, action="retrain", drift=12.0),
    ]  # fmt: skip
    rows = rows_of(render(records, source="s3://models"))
    assert [r[0] for r in rows] == ["etfs/SMH", "etfs/SPY"]
    smh = rows[0]
    assert smh[1:3] == ["2026-12-03T06:00:00", "+4.2% (worse)"]
    assert (smh[6], smh[7], smh[8], smh[10]) == ("0.300", "7.5%", "80%", "mcnemar_exact p=0.0123")
    assert smh[11] == '<b style="color:#1565c0">switch</b>'
    assert smh[12:] == ["SWITCH TO MODEL B (challenger 1.0.1)", "switch because"]
    # no warnings: nothing was checked
    assert rows[1][2] == "+12.0% (worse)" and rows[1][6:9] == ["-", "-", "-"]


def test_drift_has_one_sign_and_the_columns_agree_with_the_why():
    # Given our line for an improvement (accuracy 0.635 over a 0.597 baseline: drift -6.4%)
    record = line("etfs/SMH", 1)
    record["drift"] = {"model_a_drift_pct": 0.0, "drift_pct": -6.365, "metric": "accuracy",
                       "baseline": 0.597, "current": 0.635}  # fmt: skip
    record["reason"] = "drift -6.4%; no reason to change"
    record["comparison"] |= {"windows_counted": 5, "windows_won": 1, "model_b_win_rate": 0.2}
    record["history"] = {"runs_needed": 3, "winning_days": [], "degrading": [], "days": 4}
    (row,) = rows_of(render([record]))
    # Then the drift column says -6.4% (better), as the why does, never the seed's clipped 0.0
    assert row[2] == "-6.4% (better)" and "-6.4%" in row[13]
    assert row[3] == "accuracy 0.635 vs 0.597"
    # and the win rate says of how many windows, the streak of how many days needed
    assert (row[8], row[9]) == ("1 of 5 windows (20%)", "0 (3 needed)")


def test_imported_seed_lines_are_listed_apart_and_undated_lines_are_left_out():
    undated = line(None, 1)
    del undated["timestamp"], undated["monitoring_date"]
    page = render([line(None, 1), line(None, 2), undated, line("etfs/SMH", 3)])
    assert [r[0] for r in rows_of(page)] == ["etfs/SMH"]
    imported = page[page.index("<h2>Imported history</h2>") :]
    assert imported.count("<tr>") == 3  # a head and the two dated seed lines
    assert "2026-12-01" in imported and "+1.0% (worse)" in imported
    assert "4 history lines from" in page


def test_last_keeps_the_newest_runs_of_each_model():
    records = [line("m/a", day, drift=float(day)) for day in range(1, 6)]
    assert rows_of(render(records, last=2))[0][2] == "+5.0% (worse)"
    assert rows_of(render(records[:3], last=2))[0][2] == "+3.0% (worse)"


def test_a_line_breaks_where_a_day_has_no_run_and_imported_lines_are_not_drawn():
    # Given runs on Dec 1, 2, 3 and, after a gap, 6 and 7, beside a seed line of January
    seed = line(None, 1)
    seed["timestamp"], seed["monitoring_date"] = "2026-01-08T22:03:39", "2026-01-08"
    days = (1, 2, 3, 6, 7)
    records = [seed, *(line("etfs/SMH", d, drift=float(d), psi=0.1, win=0.5) for d in days)]
    figure = _charts(_series(records, None))[0][1]
    fig = Figure()
    ax = fig.add_subplot()
    figure(ax)
    (drift_line,) = [ln for ln in ax.get_lines() if ln.get_label() == "etfs/SMH"]
    ys = list(drift_line.get_ydata())  # type: ignore[arg-type]
    # Then the line has a hole (NaN) for the missing days, so two segments, not one
    assert [y if y == y else None for y in ys] == [1.0, 2.0, 3.0, None, 6.0, 7.0]
    # And the axis spans December alone: January's imported line is not on it
    low, high = ax.get_xlim()
    assert mdates.num2date(low).date() >= date(2026, 11, 30)
    assert mdates.num2date(high).date() <= date(2026, 12, 8)


def test_a_single_run_gets_an_axis_of_days_around_it_and_no_warning(recwarn):
    page = render([line("etfs/SMH", 14, psi=0.2, win=0.6, features=True)])
    assert [
        w for w in recwarn if "matplotlib" in str(w.filename) or "Locator" in str(w.message)
    ] == []
    fig = Figure()
    ax = fig.add_subplot()
    _charts(_series([line("etfs/SMH", 14, psi=0.2)], None))[1][1](ax)
    low, high = (mdates.num2date(x).date() for x in ax.get_xlim())
    assert (low, high) == (date(2026, 12, 13), date(2026, 12, 15))
    assert all(t.get_text().startswith("Dec") for t in ax.get_xticklabels() if t.get_text())
    assert "Features of etfs/SMH" in page


def test_the_page_is_self_contained_with_one_chart_per_view_and_per_model_features():
    page = render([line("etfs/SMH", 1, features=True), line("etfs/SPY", 1)])
    assert page.count("<svg") == 4  # three over time, the features of SMH's latest run
    # (no estimated accuracy in these lines: no chart of it)
    assert "Features of etfs/SMH" in page and "Features of etfs/SPY" not in page
    for reference in ("<script", "src=", 'href="http', "url(http", "<link"):
        assert reference not in page


def test_a_model_s_warnings_are_drawn_per_feature_stacked_by_code():
    page = render([line("etfs/SMH", 1, warned=True), line("etfs/SPY", 1)])
    assert page.count("<svg") == 4  # three over time, the warnings of SMH's latest run
    assert "Warnings of etfs/SMH" in page and "Warnings of etfs/SPY" not in page
    (chart,) = [f for f in page.split("<figure>") if "Warnings of etfs/SMH" in f]
    assert "etfs/SMH: warnings per feature" in chart and "warned: 7.5% of 400 checked" in chart
    assert "out of range" in chart and "unexpected missing" in chart
    assert "rsi_14" in chart and "iv_rank" in chart


def test_every_text_from_the_history_is_escaped():
    record = line("x/<script>", 1, recommendation="<b>now</b>")
    page = render([record])
    assert "<script>" not in page
    assert "x/&lt;script&gt;" in page and "&lt;b&gt;now&lt;/b&gt;" in page


def test_the_same_history_renders_the_same_page_and_a_png_on_request(tmp_path: Path):
    records = [line("etfs/SMH", 1, psi=0.2, features=True), line("etfs/SMH", 2, psi=0.4)]
    png = tmp_path / "report.png"
    assert render(records, png=png) == render(records)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_table_names_the_signal_of_a_model_that_serves_a_non_default_one():
    direction = line("etfs/SPY/direction", 2)
    direction["signals"] = {"answered": {"direction": 20}, "routed": ["direction"]}
    strategy = line("etfs/SPY", 2)
    strategy["signals"] = {"answered": {"strategy": 35}, "routed": ["strategy"]}
    rows = rows_of(render([strategy, direction, line("etfs/SMH", 2)]))
    # lines from before signals (none recorded) and the default signal's go unsaid
    assert [r[0] for r in rows] == ["etfs/SMH", "etfs/SPY", "etfs/SPY/direction (signal direction)"]


LONG = "stocks/universal/momentum_reversal_intraday_h1_v2"


def drawn(records: list[dict[str, Any]], columns: int = 2) -> Figure:
    """The page's charts laid out as the PNG lays them out, labels fitted."""
    charts = _charts(_series(records, None))
    fig = Figure(figsize=(12, 3.8 * ((len(charts) + 1) // columns)), layout="constrained", dpi=80)
    for i, (_, draw) in enumerate(charts):
        draw(fig.add_subplot((len(charts) + 1) // columns, columns, i + 1))
    _fit_labels(fig)
    fig.draw_without_rendering()
    return fig


def test_titles_fit_their_column_however_long_the_model_name():
    # Given a model whose name makes its feature and warnings titles wider than a column
    fig = drawn([line(LONG, d, psi=0.2, features=True, warned=True) for d in (1, 2)])
    # Then every title and x label lies inside its own column of the picture, wrapped
    width = fig.bbox.width
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        assert spec is not None
        left = width * spec.colspan.start / 2
        right = width * spec.colspan.stop / 2
        for text in (ax.title, ax.xaxis.label):
            box = text.get_window_extent()
            assert left - 1 <= box.x0 and box.x1 <= right + 1, text.get_text()
    titles = [ax.get_title() for ax in fig.axes]
    assert any(LONG in t.replace("\n", "") and "\n" in t for t in titles)


def test_legends_sit_under_the_plot_never_over_a_line():
    fig = drawn([line(m, d, drift=float(d), psi=0.1 * d, win=0.5) for m in (LONG, "etfs/SMH")
                 for d in (1, 2, 3)])  # fmt: skip
    with_legend = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert len(with_legend) == 3  # drift, PSI and win rate over time
    for ax in with_legend:
        legend = ax.get_legend()
        assert legend is not None
        assert legend.get_window_extent().y1 <= ax.get_window_extent().y0
        assert LONG in [t.get_text() for t in legend.get_texts()]


def test_an_untrusted_estimate_is_drawn_apart_and_labelled_so():
    records = []
    for d in (1, 2, 3):
        record = line("etfs/SMH", d)
        record["drift"] |= {"metric": "accuracy", "current": 0.6}
        record["estimated"] = {"accuracy": 0.62, "trusted": d != 3}
        records.append(record)
    caption, draw = _charts(_series(records, None))[3]
    assert "not trusted" in caption
    ax = Figure().add_subplot()
    draw(ax)
    by_label = {ln.get_label(): ln for ln in ax.get_lines()}
    trusted = list(by_label["etfs/SMH estimated"].get_ydata())  # type: ignore[arg-type]
    untrusted = by_label["etfs/SMH estimated (untrusted)"]
    assert [y if y == y else None for y in trusted] == [0.62, 0.62, None]
    assert [y if y == y else None for y in untrusted.get_ydata()] == [None, None, 0.62]  # type: ignore[union-attr]
    assert untrusted.get_linestyle() == ":" and (untrusted.get_alpha() or 1) < 1


def test_the_most_warned_feature_s_bar_ends_inside_the_axis():
    page_charts = _charts(_series([line("etfs/SMH", 1, warned=True)], None))
    (draw,) = [d for caption, d in page_charts if caption.startswith("Warnings of")]
    ax = Figure().add_subplot()
    draw(ax)
    assert ax.get_xlim()[1] > 25  # rsi_14: 25 answers out of range
