"""Reference samples (CSV, or Parquet with the extra): read as columns, scored by the version
itself and fitted into its baseline; every problem (no header, ragged lines, missing feature
columns, text or infinities where numbers belong) refused naming the file, the column and the
row."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cli_support import write_csv
from tests.family_support import families
from tests.support import DemoModels
from tickerserve.baselines.baseline import Window
from tickerserve.cli.errors import Refused
from tickerserve.cli.reference import fit_from_reference, parse_window, read_table
from tickerserve.serving.model import LoadedModel


def refused(message: str):
    return pytest.raises(Refused, match=f"^{re.escape(message)}")


def test_a_csv_is_read_as_columns_of_cells(tmp_path: Path):
    path = tmp_path / "ref.csv"
    path.write_text("\ufeffa,b, label\n1,,UP\n\n2.5,3,DOWN\n")  # a BOM and a blank line
    table = read_table(path)
    assert table.columns == {"a": ["1", "2.5"], "b": ["", "3"], "label": ["UP", "DOWN"]}
    assert table.rows == 2 and len(table.sha256) == 64


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "needs a header row of distinct column names"),
        (b"a,a\n1,2\n", "needs a header row of distinct column names"),
        (b"a,b\n1,2\n3\n", "line 3 has 1 cells, not 2"),
        (b"a,b\n", "no rows"),
        (b"\xff\xfe\x00", "not UTF-8 text (CSV) nor Parquet"),
    ],
)
def test_a_file_that_is_no_table_is_refused(tmp_path: Path, data: bytes, message: str):
    path = tmp_path / "ref.csv"
    path.write_bytes(data)
    with refused(f"--reference {path}: {message}"):
        read_table(path)


def test_a_missing_file_is_refused(tmp_path: Path):
    with refused(f"--reference {tmp_path / 'nope.csv'}: no such file"):
        read_table(tmp_path / "nope.csv")


def test_windows_are_start_colon_end_in_order():
    assert parse_window("2020-01-02:2025-06-30", "--training-window") == Window(
        "2020-01-02", "2025-06-30"
    )
    assert parse_window(None, "--training-window") is None
    with refused("--training-window '2020-01-02': expected START:END as ISO dates"):
        parse_window("2020-01-02", "--training-window")
    with refused("--validation-window '2025-02-01:2025-01-01': END is before START"):
        parse_window("2025-02-01:2025-01-01", "--validation-window")


def classifier_reference(tmp_path: Path, models: DemoModels, rows: int = 400) -> Path:
    meta = models.smh.metadata
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, len(meta.feature_names)))
    labels = [meta.classes[i] for i in rng.integers(0, len(meta.classes), rows)]
    columns = {n: x[:, j].round(6).tolist() for j, n in enumerate(meta.feature_names)}
    columns["label"] = labels
    return write_csv(tmp_path / "ref.csv", columns)


def test_a_classifiers_baseline_is_scored_by_the_version_itself(tmp_path, models):
    path = classifier_reference(tmp_path, models)
    baseline = fit_from_reference(models.smh, path, bins=5)
    table = read_table(path)
    meta = models.smh.metadata
    x = np.column_stack([np.asarray(table.columns[n], dtype=float) for n in meta.used_features])
    predicted = LoadedModel(meta, models.smh.files).predict_proba(x).argmax(axis=1)
    truth = [meta.classes.index(label) for label in table.columns["label"]]
    assert baseline.metrics["accuracy"] == pytest.approx(np.mean(predicted == np.array(truth)))
    assert list(baseline.features) == meta.used_features and baseline.bins == 5
    assert baseline.rows == 400
    assert baseline.source == {"kind": "reference", "file": "ref.csv", "sha256": table.sha256,
                               "rows": 400}  # fmt: skip
    assert baseline.training == Window("2020-01-02", "2025-12-31", 400)  # from the metadata


def test_a_regressors_baseline_uses_the_value_column(tmp_path):
    bundle = families()["xgboost_regressor"].bundle("vol/SPY")
    names = bundle.metadata.used_features
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, len(names)))
    truth = LoadedModel(bundle.metadata, bundle.files).predict_values(x) + 0.01
    columns = {n: x[:, j].tolist() for j, n in enumerate(names)}
    columns["value"] = truth.tolist()
    baseline = fit_from_reference(bundle, write_csv(tmp_path / "ref.csv", columns))
    assert baseline.task == "regression"
    assert baseline.metrics["rmse"] == pytest.approx(0.01, rel=1e-3)


def test_missing_feature_columns_are_listed_five_at_most(tmp_path, models):
    path = write_csv(tmp_path / "ref.csv", {"label": ["UP"]})
    with refused(f"--reference {path}: missing feature column(s) rsi_14, iv_percentile, "
                 "atr_pct, ret_20d, skew_25d (+1)"):  # fmt: skip
        fit_from_reference(models.smh, path)


@pytest.mark.parametrize(
    ("cell", "message"),
    [("abc", "column 'rsi_14' row 2: 'abc' is not a number"),
     ("inf", "column 'rsi_14' row 2 is not finite")],
)  # fmt: skip
def test_a_cell_that_is_not_a_finite_number_is_named(tmp_path, models, cell, message):
    path = classifier_reference(tmp_path, models, rows=5)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index("rsi_14")] = cell
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with refused(f"--reference {path}: {message}"):
        fit_from_reference(models.smh, path)


def test_parquet_reads_like_csv(tmp_path, models):
    path = classifier_reference(tmp_path, models, rows=50)
    table = read_table(path)
    columns = {k: ([float(v) for v in vals] if k != "label" else vals)
               for k, vals in table.columns.items()}  # fmt: skip
    pq.write_table(pa.table(columns), tmp_path / "ref.parquet")
    from_csv = fit_from_reference(models.smh, path)
    from_parquet = fit_from_reference(models.smh, tmp_path / "ref.parquet")
    assert from_parquet.metrics == pytest.approx(from_csv.metrics)
    assert from_parquet.features == from_csv.features
