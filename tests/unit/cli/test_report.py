"""The monitoring report page: the latest run of each model in a table, charts over time as
inline SVG, a chart of per-feature PSI where the latest run has one; self-contained (nothing
fetched), every text escaped, and the same history drawn the same way twice."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tickerserve.cli.report import render


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
    assert smh[1:7] == [
        "2026-12-03T06:00:00", "4.2%", "0.300", "7.5%", "80%", "mcnemar_exact p=0.0123",
    ]  # fmt: skip
    assert smh[7] == '<b style="color:#1565c0">switch</b>'
    assert smh[8:] == ["SWITCH TO MODEL B (challenger 1.0.1)", "switch because"]
    assert rows[1][2:6] == ["12.0%", "-", "-", "-"]  # no warnings: nothing was checked


def test_seed_lines_without_a_model_are_model_a_and_undated_lines_are_left_out():
    undated = line(None, 1)
    del undated["timestamp"], undated["monitoring_date"]
    page = render([line(None, 1), line(None, 2), undated])
    rows = rows_of(page)
    assert [r[0] for r in rows] == ["Model A (seed history)"]
    assert rows[0][7] == '<b style="color:#555">-</b>'
    assert "3 history lines from" in page


def test_last_keeps_the_newest_runs_of_each_model():
    records = [line("m/a", day, drift=float(day)) for day in range(1, 6)]
    assert rows_of(render(records, last=2))[0][2] == "5.0%"
    assert rows_of(render(records[:3], last=2))[0][2] == "3.0%"


def test_the_page_is_self_contained_with_one_chart_per_view_and_per_model_features():
    page = render([line("etfs/SMH", 1, features=True), line("etfs/SPY", 1)])
    assert page.count("<svg") == 4  # three over time, the features of SMH's latest run
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
