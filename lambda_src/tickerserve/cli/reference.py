"""Reading a reference sample (CSV or Parquet) and fitting a version's baseline from it.

The file holds the model's feature columns (by name; a missing one is refused) and,
optionally, the truth: a ``label`` column for classifiers, ``value`` for regressors. Empty
cells are missing values. For a network that takes a window, the rows are in time order and
every window of them is scored (the truth and the features of a window are its newest row's,
as capture records them). Parquet needs pyarrow, an optional extra (about 170 MB installed):
``pip install 'tickerserve[parquet]'``; CSV needs nothing.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from tickerserve.baselines.baseline import (
    DEFAULT_BINS,
    Baseline,
    BaselineError,
    Reference,
    Window,
    fit_baseline,
)
from tickerserve.baselines.ranges import DEFAULT_QUANTILES, Quantiles
from tickerserve.cli.errors import Refused
from tickerserve.monitor.evaluate import task_of
from tickerserve.serving.windows import sliding_windows
from tickerserve.storage.bundle import Bundle
from tickerserve.storage.registry import utc_now
from tickerserve.storage.store import sha256_hex

LABEL_COLUMN = "label"
VALUE_COLUMN = "value"
MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class Table:
    """Columns by name: numbers as float arrays (NaN for empty), others as strings."""

    path: Path
    columns: dict[str, list[Any]]
    rows: int
    sha256: str


def read_table(path: Path) -> Table:
    """A CSV (header row) or Parquet file as columns; refuses anything else."""
    if not path.is_file():
        raise Refused(f"--reference {path}: no such file")
    data = path.read_bytes()
    if data[:4] == b"PAR1" or path.suffix.lower() in (".parquet", ".pq"):
        columns = _parquet(path)
    else:
        columns = _csv(path, data)
    rows = len(next(iter(columns.values()), []))
    if rows == 0:
        raise Refused(f"--reference {path}: no rows")
    if rows > MAX_ROWS:
        raise Refused(f"--reference {path}: {rows} rows; sample it to at most {MAX_ROWS}")
    return Table(path, columns, rows, sha256_hex(data))


def _csv(path: Path, data: bytes) -> dict[str, list[Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Refused(f"--reference {path}: not UTF-8 text (CSV) nor Parquet") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if not header or len(set(header)) != len(header):
        raise Refused(f"--reference {path}: needs a header row of distinct column names")
    columns: dict[str, list[Any]] = {name.strip(): [] for name in header}
    names = list(columns)
    for number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(names):
            raise Refused(
                f"--reference {path}: line {number} has {len(row)} cells, not {len(names)}"
            )
        for name, cell in zip(names, row, strict=True):
            columns[name].append(cell.strip())
    return columns


def _parquet(path: Path) -> dict[str, list[Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise Refused(
            "reading Parquet needs pyarrow: pip install 'tickerserve[parquet]' (or save the "
            "reference as CSV)"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
        raise Refused(f"--reference {path}: not a readable Parquet file ({exc})") from None
    return {name: table.column(name).to_pylist() for name in table.column_names}


def _numbers(table: Table, name: str) -> np.ndarray:
    out = np.empty(table.rows)
    for i, cell in enumerate(table.columns[name]):
        if cell is None or cell == "":
            out[i] = np.nan
            continue
        try:
            value = float(cell)
        except (TypeError, ValueError):
            raise Refused(
                f"--reference {table.path}: column {name!r} row {i + 1}: {str(cell)[:30]!r} "
                "is not a number"
            ) from None
        if isinstance(cell, bool) or not math.isfinite(value):
            raise Refused(f"--reference {table.path}: column {name!r} row {i + 1} is not finite")
        out[i] = value
    return out


def parse_window(raw: str | None, option: str) -> Window | None:
    """``START:END`` (ISO dates) -> a window."""
    if raw is None:
        return None
    start, sep, end = raw.partition(":")
    try:
        if not sep:
            raise ValueError
        date.fromisoformat(start)
        date.fromisoformat(end)
    except ValueError:
        raise Refused(f"{option} {raw!r}: expected START:END as ISO dates") from None
    if end < start:
        raise Refused(f"{option} {raw!r}: END is before START")
    return Window(start, end)


def fit_from_reference(
    bundle: Bundle,
    path: Path,
    *,
    bins: int = DEFAULT_BINS,
    training: Window | None = None,
    validation: Window | None = None,
    range_quantiles: Quantiles = DEFAULT_QUANTILES,
) -> Baseline:
    """Score the reference with the version itself and fit its baseline."""
    return fit_from_table(
        bundle,
        read_table(path),
        bins=bins,
        training=training,
        validation=validation,
        range_quantiles=range_quantiles,
    )


def fit_from_table(
    bundle: Bundle,
    table: Table,
    *,
    bins: int = DEFAULT_BINS,
    training: Window | None = None,
    validation: Window | None = None,
    range_quantiles: Quantiles = DEFAULT_QUANTILES,
) -> Baseline:
    """``fit_from_reference`` on a reference read once (an import fits many versions)."""
    from tickerserve.serving.model import LoadedModel  # lightgbm, only when a baseline is fitted

    meta = bundle.metadata
    path = table.path
    names = meta.used_features
    missing = [n for n in names if n not in table.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5})" if len(missing) > 5 else "")
        raise Refused(f"--reference {path}: missing feature column(s) {shown}")
    x = np.column_stack([_numbers(table, n) for n in names])
    task = task_of(meta)
    loaded = LoadedModel(meta, bundle.files)
    inputs, first = x, 0
    rows = None if meta.network is None else meta.network.rows
    if rows is not None:
        # A windowed network: the table's rows in time order, every window of them; each
        # window's newest row is what capture records, so the features are those rows.
        inputs, first = sliding_windows(x, rows), rows - 1
        if len(inputs) == 0:
            raise Refused(f"--reference {path}: {table.rows} rows; a window needs {rows}")
        x = x[first:]
    truth: Any = None
    if task == "classification":
        predictions = loaded.predict_proba(inputs)
        if LABEL_COLUMN in table.columns:
            truth = [str(v) for v in table.columns[LABEL_COLUMN]][first:]
    else:
        predictions = np.asarray(loaded.predict_values(inputs))
        if predictions.ndim == 2:  # named outputs, a box's action: the first is monitored
            predictions = predictions[:, 0]
        if VALUE_COLUMN in table.columns:
            truth = _numbers(table, VALUE_COLUMN)[first:]
    if training is None and meta.training.get("start") and meta.training.get("end"):
        training = Window(str(meta.training["start"]), str(meta.training["end"]),
                          meta.training.get("rows"))  # fmt: skip
    try:
        return fit_baseline(
            meta.model,
            meta.version,
            task,  # type: ignore[arg-type]
            Reference(names, x, predictions, truth),
            classes=meta.classes,
            training=training,
            validation=validation,
            bins=bins,
            range_quantiles=range_quantiles,
            created_at=utc_now(),
            source={
                "kind": "reference",
                "file": path.name,
                "sha256": table.sha256,
                "rows": table.rows,
            },
        )
    except BaselineError as exc:
        raise Refused(f"--reference {path}: {exc}") from None
