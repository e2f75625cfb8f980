"""``import-seed`` brings monitoring baselines: seed 003's baseline files become its versions'
baselines, and ``--reference FILE`` fits one for every imported version (a sidecar for a
version the store already held)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cli_support import cli, cli_json
from tests.seed_layouts import (
    SIGNALS,
    VOL_FEATURES,
    originals,
    stack_predict,
    write_seed_002,
    write_seed_003,
)
from tickerserve.baselines.baseline import Window
from tickerserve.baselines.persistence import load_baseline
from tickerserve.layout import baseline_sidecar_key
from tickerserve.publishing.demo import FEATURES
from tickerserve.storage.bundle import read_metadata
from tickerserve.storage.store import LocalStore
from tickerserve.storage.version_index import read_index

MODEL = "etfs/SPY/volatility"


def import_seed(store: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("--store", str(store), "import-seed", *args, "--json")
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def write_csv(path: Path, columns: dict[str, list[Any]]) -> Path:
    names = list(columns)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in zip(*columns.values(), strict=True):
            writer.writerow(row)
    return path


def stored(store: Path, model: str, version: str):
    local = LocalStore(store)
    baseline = load_baseline(local, read_metadata(local, model, version)[0])
    assert baseline is not None
    return baseline


def test_seed_003_baseline_files_become_the_versions_monitoring_baselines(tmp_path):
    # Given seed 003's models/ with validation_baseline.json and dual_model_baseline.json
    write_seed_003(tmp_path)
    store = tmp_path / "store"
    # When imported (no reference sample)
    code, report = import_seed(store, str(tmp_path), "--model", MODEL, "--route", "SPY")
    assert code == 0
    assert {m["source"]: m["baseline"]["stored"] for m in report["models"]} == {
        "model_90pct.pkl": "version",
        "model_100pct.pkl": "version",
    }
    # Then Model A's baseline holds its validation metrics and windows, in the version folder
    a = stored(store, MODEL, "1.0.0")
    assert a.where == "version"
    assert a.baseline.task == "regression"
    assert a.baseline.metrics == {"rmse": 0.011402, "mae": 0.006778, "r2": 0.434352}
    assert a.baseline.training == Window("2010-03-31", "2024-05-31", 3566)
    assert a.baseline.validation == Window("2024-06-03", "2025-12-31", 397)
    assert a.baseline.features == {} and a.baseline.output is None
    assert a.baseline.source["kind"] == "seed_003"
    # And Model B's its held-out test (the last 30 samples)
    b = stored(store, MODEL, "1.0.1")
    assert b.baseline.metrics == {"rmse": 0.005797, "mae": 0.00476, "r2": -0.1223}
    assert b.baseline.training == Window("2010-03-31", "2025-11-17", 3933)
    assert b.baseline.validation == Window("2025-11-18", "2025-12-31", 30)
    # And the monitor judges against them: drift_pct is relative to Model A's RMSE, and the
    # challenger block carries Model B's training window (seed 003's model_b)
    run = cli_json("--store", str(store), "monitor", "run", "--since", "2026-12-01",
                   "--until", "2026-12-02")  # fmt: skip
    [judged] = run["models"]
    assert judged["performance"]["baseline"] == 0.011402
    assert judged["champion"]["baseline"]["where"] == "version"
    assert judged["challenger"]["baseline"]["training"]["end"] == "2025-11-17"
    # And a re-import publishes nothing new (the baseline is not part of the content)
    code, again = import_seed(store, str(tmp_path), "--model", MODEL, "--route", "SPY")
    assert code == 0 and {m["status"] for m in again["models"]} == {"unchanged"}
    assert {m["baseline"]["stored"] for m in again["models"]} == {"kept"}


def test_seed_003_with_a_reference_fits_distributions_and_keeps_the_seed_metrics(tmp_path):
    write_seed_003(tmp_path)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, len(VOL_FEATURES)))
    truth = stack_predict(originals().stacks["model_90pct.pkl"], x) + rng.normal(0, 0.01, 400)
    columns: dict[str, list[Any]] = {n: x[:, j].tolist() for j, n in enumerate(VOL_FEATURES)}
    columns["value"] = truth.tolist()
    ref = write_csv(tmp_path / "validation.csv", columns)
    store = tmp_path / "store"
    code, report = import_seed(store, str(tmp_path), "--model", MODEL, "--reference", str(ref))
    assert code == 0
    summary = {m["source"]: m["baseline"] for m in report["models"]}
    assert summary["model_90pct.pkl"]["rows"] == 400
    assert summary["model_90pct.pkl"]["features"] == len(VOL_FEATURES)
    a = stored(store, MODEL, "1.0.0").baseline
    # the seed's validation metrics stay the baseline's; the sample adds the distributions
    assert a.metrics == {"rmse": 0.011402, "mae": 0.006778, "r2": 0.434352}
    assert list(a.features) == VOL_FEATURES
    assert a.features["vix_level"].n == 400 and len(a.features["vix_level"].edges) == 9
    assert a.output is not None and a.output.n == 400  # Model A's own predictions, binned
    assert a.source["reference"]["file"] == "validation.csv"
    b = stored(store, MODEL, "1.0.1").baseline
    assert b.metrics["rmse"] == 0.005797 and list(b.features) == VOL_FEATURES
    # each version scored the sample itself: the output distributions differ
    assert a.output.edges != b.output.edges


def reference_002(path: Path, rows: int = 300, *, drop: str | None = None) -> Path:
    rng = np.random.default_rng(11)
    columns: dict[str, list[Any]] = {
        n: np.round(rng.normal(size=rows), 5).tolist() for n in FEATURES if n != drop
    }
    columns["label"] = SIGNALS[rng.integers(0, 3, rows)].tolist()
    return write_csv(path, columns)


def test_reference_attaches_sidecars_to_versions_the_store_already_held(tmp_path):
    # Given seed 002's files imported before, without a reference
    folder = write_seed_002(tmp_path)
    store = tmp_path / "store"
    assert import_seed(store, str(folder))[0] == 0
    ref = reference_002(tmp_path / "ref.csv")
    # When imported again with --reference
    code, report = import_seed(store, str(folder), "--reference", str(ref))
    # Then nothing new is published: each version gets the baseline as a sidecar, its sha256
    # in the model's digest index
    assert code == 0
    assert {(m["source"], m["status"], m["baseline"]["stored"]) for m in report["models"]} == {
        ("AAPL_d1_20250114.pkl", "unchanged", "sidecar"),
        ("AAPL_d1_20250121.pkl", "unchanged", "sidecar"),
        ("AAPL_h1_20250121.pkl", "unchanged", "sidecar"),
    }
    local = LocalStore(store)
    for model, version in (("stocks/AAPL/d1", "1.0.0"), ("stocks/AAPL/d1", "1.0.1"),
                           ("stocks/AAPL/h1", "1.0.0")):  # fmt: skip
        found = stored(store, model, version)
        assert found.where == "sidecar" and found.baseline.rows == 300
        assert set(found.baseline.metrics) == {"accuracy", "macro_f1", "log_loss"}
        recorded = read_index(local, model).index.versions[version].sidecars
        assert recorded == {"baseline.json": found.sha256}
    # When imported once more / Then the sidecars are kept, not rewritten
    before = {p: p.read_bytes() for p in (store / "stocks").rglob("*.json")}
    code, report = import_seed(store, str(folder), "--reference", str(ref))
    assert code == 0 and {m["baseline"]["stored"] for m in report["models"]} == {"kept"}
    assert {p: p.read_bytes() for p in (store / "stocks").rglob("*.json")} == before
    text = cli("--store", str(store), "import-seed", str(folder), "--reference", str(ref))
    assert (
        "baseline stocks/AAPL/h1 1.0.0: kept the one it has (to refit it: tickerserve baseline "
        "stocks/AAPL/h1@1.0.0 --reference FILE --replace)" in text.stdout.splitlines()
    )


def test_a_reference_without_a_model_s_columns_skips_it(tmp_path):
    folder = write_seed_002(tmp_path)
    store = tmp_path / "store"
    ref = reference_002(tmp_path / "ref.csv", drop="iv_rank")
    code, report = import_seed(store, str(folder), "--reference", str(ref))
    assert code == 2 and report["models"] == []
    assert {s["source"] for s in report["skipped"]} == {
        "AAPL_d1_20250114.pkl", "AAPL_d1_20250121.pkl", "AAPL_h1_20250121.pkl",
    }  # fmt: skip
    assert report["skipped"][0]["reason"] == (
        f"--reference {ref}: missing feature column(s) iv_rank"
    )
    assert not (store / "stocks").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "needs a header row"), (None, "no such file")],
)
def test_an_unreadable_reference_refuses_the_import_before_anything(tmp_path, content, message):
    folder = write_seed_002(tmp_path)
    ref = tmp_path / "ref.csv"
    if content is not None:
        ref.write_text(content)
    result = cli("--store", str(tmp_path / "store"), "import-seed", str(folder),
                 "--reference", str(ref))  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --reference {ref}: ") and message in result.stderr
    assert not (tmp_path / "store").exists()


def test_dry_run_fits_the_baselines_and_writes_nothing(tmp_path):
    folder = write_seed_002(tmp_path)
    store = tmp_path / "store"
    ref = reference_002(tmp_path / "ref.csv")
    code, report = import_seed(store, str(folder), "--reference", str(ref), "--dry-run")
    assert code == 0
    text = cli("--store", str(store), "import-seed", str(folder), "--reference", str(ref),
               "--dry-run").stdout.splitlines()  # fmt: skip
    assert text[5].startswith(
        "baseline stocks/AAPL/d1 1.0.0: would be attached; 300 reference rows x 12 features; "
        "accuracy="
    )
    assert {m["baseline"]["stored"] for m in report["models"]} == {None}
    assert {m["baseline"]["rows"] for m in report["models"]} == {300}
    assert not store.exists()
    assert not (tmp_path / baseline_sidecar_key("stocks/AAPL/d1", "1.0.0")).exists()
