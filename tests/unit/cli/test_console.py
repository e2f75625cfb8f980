"""Console output: aligned tables for people, compact metrics and sizes, JSON that any value
can go into, and notes on stderr that never mix into JSON on stdout."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from tickerserve.cli.console import format_metrics, human_bytes, note, print_json, table


def test_a_table_aligns_columns_and_shows_empty_cells_as_a_dash():
    text = table(["model", "version", "status"], [
        ["etfs/SMH", "1.0.0", "ok"], ["stocks/universal", None, ""],
    ])  # fmt: skip
    assert text.splitlines() == [
        "model             version  status",
        "etfs/SMH          1.0.0    ok",
        "stocks/universal  -        -",
    ]
    assert table(["a"], []) == "a"


def test_metrics_are_sorted_compact_and_cut_after_a_few():
    assert format_metrics({"f1": 0.5, "accuracy": 0.61234567}) == "accuracy=0.612346 f1=0.5"
    many = {f"m{i}": float(i) for i in range(6)}
    assert format_metrics(many) == "m0=0 m1=1 m2=2 m3=3 +2"
    assert format_metrics({}) == ""


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (5 * 1024**2 + 1, "5.0 MiB"),
     (3 * 1024**3, "3.0 GiB"), (5000 * 1024**3, "5000.0 GiB")],
)  # fmt: skip
def test_sizes_read_in_binary_units(n: int, text: str):
    assert human_bytes(n) == text


def test_json_goes_to_stdout_and_notes_to_stderr(capsys: pytest.CaptureFixture[str]):
    print_json({"day": date(2026, 12, 1), "path": Path("/x"), "n": 1})
    note("a remark")
    out, err = capsys.readouterr()
    assert json.loads(out) == {"day": "2026-12-01", "path": "/x", "n": 1}
    assert err == "a remark\n"
