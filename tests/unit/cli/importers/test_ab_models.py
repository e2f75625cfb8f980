"""Seed 003's Model A and Model B: one model named by ``--model``, A in production and B as the
shadowed challenger, the seed's baseline files as each version's metrics, windows and
monitoring baseline, its histories appended, and ``latest_ensemble.pkl`` never imported twice."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.cli_support import cli_json, import_seed_json, write_csv
from tests.monitor_support import stored_baseline
from tests.seed_layouts import (
    DUAL_BASELINE,
    VALIDATION_BASELINE,
    VOL_FEATURES,
    originals,
    stack_predict,
    write_seed_003,
)
from tickerserve.baselines.baseline import Histogram, Window
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers import ab_models
from tickerserve.cli.importers.plan import ImportOptions
from tickerserve.storage.registry import ShadowSettings

MODEL = "etfs/SPY/volatility"
OPTIONS = ImportOptions(model=MODEL, routes=("SPY",))


def test_model_a_is_production_and_model_b_the_shadowed_challenger(tmp_path):
    root = ab_models.find_root(write_seed_003(tmp_path).parent)
    assert root is not None and root == tmp_path / "models"
    plan = ab_models.plan(root, OPTIONS)
    assert [(c.source, c.aliases, c.origin["role"]) for c in plan.candidates] == [
        ("model_90pct.pkl", ("production",), "Model A (90%)"),
        ("model_100pct.pkl", ("challenger",), "Model B (all but the last 30)"),
    ]
    assert plan.shadows == {MODEL: ShadowSettings("challenger", 1.0)}
    assert [(r.ticker, r.asset_class, r.model) for r in plan.routes] == [("SPY", "etf", MODEL)]
    assert plan.notes == ["latest_ensemble.pkl is a copy of model_90pct.pkl: not imported twice"]


def test_the_baseline_files_become_metrics_and_training_windows():
    fields = ab_models.baselines(VALIDATION_BASELINE, DUAL_BASELINE)
    a_metrics, a_training = fields["model_a"]
    assert a_metrics == {"validation_rmse": 0.011402, "validation_mae": 0.006778,
                         "validation_r2": 0.434352}  # fmt: skip
    assert a_training == {
        "start": "2010-03-31", "end": "2024-05-31", "validation_start": "2024-06-03",
        "validation_end": "2025-12-31", "train_val_split": 0.9,
        "baseline_at": "2026-01-08T22:09:13.586357", "rows": 3566, "validation_rows": 397,
    }  # fmt: skip
    b_metrics, b_training = fields["model_b"]
    assert b_metrics == {"test_rmse": 0.005797, "test_mae": 0.00476, "test_r2": -0.1223}
    assert (b_training["test_start"], b_training["test_rows"]) == ("2025-11-18", 30)
    assert ab_models.baselines({}, {}) == {"model_a": ({}, {}), "model_b": ({}, {})}


def test_the_seeds_histories_are_appended_for_the_model(tmp_path):
    plan = ab_models.plan(write_seed_003(tmp_path), OPTIONS)
    (monitoring,) = plan.histories["monitoring"]
    assert monitoring["recommendation"] == "USE MODEL A (90%)"
    assert (monitoring["imported_from"], monitoring["model"]) == ("seed", MODEL)
    assert len(plan.histories["training"]) == 1


def test_without_a_model_name_the_import_is_refused(tmp_path):
    with pytest.raises(Refused) as caught:
        ab_models.plan(write_seed_003(tmp_path), ImportOptions())
    assert caught.value.message == (
        "seed 003 names no model: give --model NAME (e.g. stocks/SPY/volatility) and --route "
        "TICKER for each ticker it answers"
    )


def test_a_broken_history_line_refuses_and_a_broken_baseline_file_is_noted(tmp_path):
    root = write_seed_003(tmp_path)
    (root / "validation_baseline.json").write_text("{oops")
    (root / "dual_model_baseline.json").write_text("[1, 2]")
    plan = ab_models.plan(root, OPTIONS)
    assert plan.notes[:2] == [
        "validation_baseline.json is not valid JSON (JSONDecodeError): not used",
        "dual_model_baseline.json is not a JSON object: not used",
    ]
    assert plan.candidates[0].metrics == {}
    (root / "monitoring_history.jsonl").write_text('{"a": 1}\nnot json\n')
    with pytest.raises(Refused, match=r"monitoring_history\.jsonl: 1 line\(s\) are not JSON obj"):
        ab_models.plan(root, OPTIONS)


def test_only_model_b_or_only_the_latest_copy_is_still_imported(tmp_path):
    root = write_seed_003(tmp_path)
    (root / "model_90pct.pkl").unlink()
    plan = ab_models.plan(root, OPTIONS)
    assert [c.source for c in plan.candidates] == ["latest_ensemble.pkl", "model_100pct.pkl"]
    assert plan.notes == [
        "no model_90pct.pkl: latest_ensemble.pkl (its copy) is imported as Model A"
    ]
    (root / "latest_ensemble.pkl").unlink()
    plan = ab_models.plan(root, OPTIONS)
    assert [c.source for c in plan.candidates] == ["model_100pct.pkl"]
    assert plan.notes == ["no model_90pct.pkl: nothing for Model A (90%)"]


# -- the baselines end to end, through import-seed ------------------------------------------------
def test_seed_003_baseline_files_become_the_versions_monitoring_baselines(tmp_path):
    # Given seed 003's models/ with validation_baseline.json and dual_model_baseline.json
    write_seed_003(tmp_path)
    store = tmp_path / "store"
    # When imported (no reference sample)
    code, report = import_seed_json(store, str(tmp_path), "--model", MODEL, "--route", "SPY")
    assert code == 0
    assert {m["source"]: m["baseline"]["stored"] for m in report["models"]} == {
        "model_90pct.pkl": "version",
        "model_100pct.pkl": "version",
    }
    # Then Model A's baseline holds its validation metrics and windows, in the version folder
    a = stored_baseline(store, MODEL, "1.0.0")
    assert a.where == "version"
    assert a.baseline.task == "regression"
    assert a.baseline.metrics == {"rmse": 0.011402, "mae": 0.006778, "r2": 0.434352}
    assert a.baseline.training == Window("2010-03-31", "2024-05-31", 3566)
    assert a.baseline.validation == Window("2024-06-03", "2025-12-31", 397)
    assert a.baseline.features == {} and a.baseline.output is None
    assert a.baseline.source["kind"] == "seed_003"
    # And Model B's its held-out test (the last 30 samples)
    b = stored_baseline(store, MODEL, "1.0.1")
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
    code, again = import_seed_json(store, str(tmp_path), "--model", MODEL, "--route", "SPY")
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
    code, report = import_seed_json(store, str(tmp_path), "--model", MODEL, "--reference", str(ref))
    assert code == 0
    summary = {m["source"]: m["baseline"] for m in report["models"]}
    assert summary["model_90pct.pkl"]["rows"] == 400
    assert summary["model_90pct.pkl"]["features"] == len(VOL_FEATURES)
    a = stored_baseline(store, MODEL, "1.0.0").baseline
    # the seed's validation metrics stay the baseline's; the sample adds the distributions
    assert a.metrics == {"rmse": 0.011402, "mae": 0.006778, "r2": 0.434352}
    assert list(a.features) == VOL_FEATURES
    assert a.features["vix_level"].n == 400 and len(a.features["vix_level"].edges) == 9
    assert isinstance(a.output, Histogram) and a.output.n == 400  # Model A's predictions, binned
    assert a.source["reference"]["file"] == "validation.csv"
    b = stored_baseline(store, MODEL, "1.0.1").baseline
    assert b.metrics["rmse"] == 0.005797 and list(b.features) == VOL_FEATURES
    assert isinstance(b.output, Histogram)
    # each version scored the sample itself: the output distributions differ
    assert a.output.edges != b.output.edges
