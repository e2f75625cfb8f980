"""``tickerserve outcomes add`` and ``list``: realized results from CSV or JSON lines, stored
a thousand to an object, bad lines reported by number and the rest stored; adding the same
file again changes nothing, and a later line corrects an earlier one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_support import cli
from tests.unit.storage.test_outcomes import POISON
from tickerserve.cli.errors import Refused
from tickerserve.cli.outcomes import read_items
from tickerserve.layout import OUTCOMES_PREFIX
from tickerserve.storage.outcomes import latest_outcomes
from tickerserve.storage.store import LocalStore, Store


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def objects(store: Store) -> list[str]:
    return sorted(i.key for i in store.list(OUTCOMES_PREFIX))


def test_outcomes_add_reads_csv_and_reports_bad_lines_by_number(store: LocalStore, tmp_path: Path):
    csv = tmp_path / "outcomes.csv"
    csv.write_text(
        "request_id,label,observed_at\n"
        "order-1,IRON_CONDOR,2026-12-01T21:00:00Z\n"
        "bad id,IRON_CONDOR,\n"
        "order-2,BULL_PUT_SPREAD,\n"
    )
    result = cli("--store", str(store.root), "outcomes", "add", str(csv))
    assert result.exit_code == 2
    assert "stored 2, unchanged 0, refused 1, failed 0 (of 3)" in result.stdout
    assert "line 3: invalid_request_id" in result.stderr
    assert {k: v.label for k, v in latest_outcomes(store).items()} == {
        "order-1": "IRON_CONDOR", "order-2": "BULL_PUT_SPREAD",
    }  # fmt: skip
    again = cli("--store", str(store.root), "outcomes", "add", str(csv), "--json")
    assert json.loads(again.stdout)["unchanged"] == 2


def test_outcomes_add_reads_json_lines_with_values(store: LocalStore, tmp_path: Path):
    jsonl = tmp_path / "realized.jsonl"
    jsonl.write_text(
        '{"request_id": "v1", "value": 0.011}\n\n{"request_id": "v2", "value": -0.004}\n{oops\n'
    )
    result = cli("--store", str(store.root), "outcomes", "add", str(jsonl), "--json")
    summary = json.loads(result.stdout)
    assert (result.exit_code, summary["stored"], summary["refused"]) == (2, 2, 1)
    assert summary["results"][2] == {
        "line": 4,
        "error": {"code": "invalid_json", "message": summary["results"][2]["error"]["message"]},
    }
    listed = cli("--store", str(store.root), "outcomes", "list", "--json")
    assert [(r["request_id"], r["value"]) for r in json.loads(listed.stdout)] == [
        ("v1", 0.011), ("v2", -0.004),
    ]  # fmt: skip


def test_outcomes_add_refuses_a_csv_without_the_needed_columns(store: LocalStore, tmp_path: Path):
    csv = tmp_path / "x.csv"
    csv.write_text("id,result\n1,A\n")
    result = cli("--store", str(store.root), "outcomes", "add", str(csv))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "request_id" in result.stderr
    assert objects(store) == []


def test_outcomes_add_writes_one_object_per_thousand_lines(store: LocalStore, tmp_path: Path):
    # Given a file of 2,500 outcomes whose last line corrects the sixth
    lines = [json.dumps({"request_id": f"o{i}", "value": float(i)}) for i in range(2500)]
    lines.append(json.dumps({"request_id": "o5", "value": -5.0}))
    path = tmp_path / "realized.jsonl"
    path.write_text("\n".join(lines) + "\n")
    # When it is added, and added again
    first = cli("--store", str(store.root), "outcomes", "add", str(path), "--json")
    again = cli("--store", str(store.root), "outcomes", "add", str(path), "--json")
    # Then three objects hold them, the later line wins, and adding again changed nothing
    assert (first.exit_code, json.loads(first.stdout)["stored"]) == (0, 2501)
    assert json.loads(again.stdout)["unchanged"] == 2501
    assert len(objects(store)) == 3
    latest = latest_outcomes(store)
    assert (len(latest), latest["o5"].value, latest["o2499"].value) == (2500, -5.0, 2499.0)


def test_csv_rows_keep_their_line_numbers_and_values_are_numbers(tmp_path: Path):
    path = tmp_path / "o.csv"
    path.write_text("request_id,value,observed_at\n\na,0.5,\nb,high,2026-12-01\n")
    assert read_items(path) == [
        (3, {"request_id": "a", "value": 0.5}),
        (4, {"request_id": "b", "value": "high", "observed_at": "2026-12-01"}),
    ]


def test_a_file_that_cannot_be_read_or_has_unknown_columns_is_refused(tmp_path: Path):
    with pytest.raises(Refused, match=r"^cannot read .*missing\.csv: "):
        read_items(tmp_path / "missing.csv")
    path = tmp_path / "o.csv"
    path.write_text("request_id,label,colour\nx,UP,red\n")
    with pytest.raises(Refused) as caught:
        read_items(path)
    assert caught.value.message == (
        f"{path}: a CSV needs a header with request_id and label or value (and optionally "
        "observed_at); found request_id, label, colour"
    )


# The items that made POST /outcomes answer 500 (tests/unit/storage/test_outcomes.py).
def test_outcomes_add_stores_the_good_lines_of_a_file_with_poisoned_ones(
    store: LocalStore, tmp_path: Path
):
    # Given a JSON-lines file with the three poisoned lines, a line of invalid UTF-8
    # bytes and three good lines
    path = tmp_path / "realized.jsonl"
    path.write_bytes(
        b'{"request_id": "g1", "label": "UP"}\n'
        + POISON["year_one_east_of_utc"][0].encode() + b"\n"
        + POISON["lone_surrogate_label"][0].encode() + b"\n"
        + b'{"request_id": "g2", "label": "DOWN"}\n'
        + POISON["400_digit_value"][0].encode() + b"\n"
        + b'{"request_id": "bytes", "label": "\xff\xfeUP"}\n'
        + b'{"request_id": "g3", "value": 0.25}\n'
    )  # fmt: skip
    # When it is added
    result = cli("--store", str(store.root), "outcomes", "add", str(path))
    # Then the good lines are stored, each bad one is listed by its line number, exit 2
    assert result.exit_code == 2, result.output
    assert "stored 3, unchanged 0, refused 4, failed 0 (of 7)" in result.stdout
    for line, code in ((2, "invalid_observed_at"), (3, "invalid_label"), (5, "invalid_value"),
                       (6, "invalid_label")):  # fmt: skip
        assert f"line {line}: {code}" in result.stderr
    assert sorted(latest_outcomes(store)) == ["g1", "g2", "g3"]


def test_outcomes_add_reports_a_csv_row_with_extra_cells_by_its_line(
    store: LocalStore, tmp_path: Path
):
    path = tmp_path / "realized.csv"
    path.write_bytes(b"request_id,label\nc1,UP\nc2,UP,EXTRA\nc3,\xffDOWN\nc4,DOWN\n")
    result = cli("--store", str(store.root), "outcomes", "add", str(path))
    assert result.exit_code == 2, result.output
    assert "line 3: invalid_row" in result.stderr
    assert "line 4: invalid_label" in result.stderr
    assert sorted(latest_outcomes(store)) == ["c1", "c4"]
