"""Seed 004's SQLite registry: every registry name mapped to a model, rows keeping their own
semver with the highest in production, files found where they were recorded or by name beside
the database, and rows that cannot be versions skipped with the reason."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.seed_layouts import write_seed_004
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers import sqlite_registry
from tickerserve.cli.importers.plan import ImportOptions, Skipped
from tickerserve.publishing.conversion import NotConvertible

MAPPED = ImportOptions(mapping={"xgboost_tuned": "stocks/universal"}, routes=("AAPL",))


def test_the_database_is_found_by_its_name(tmp_path: Path):
    folder = write_seed_004(tmp_path)
    assert sqlite_registry.find_root(tmp_path / "data/models") == folder
    assert sqlite_registry.find_root(folder / "registry.db") == folder
    assert sqlite_registry.find_root(tmp_path) == folder  # the seed's own data/models/registry
    assert sqlite_registry.find_root(tmp_path / "data") is None


def test_rows_keep_their_semver_and_the_highest_is_production(tmp_path: Path):
    plan = sqlite_registry.plan(write_seed_004(tmp_path), MAPPED)
    assert [(c.model, c.version, c.aliases) for c in plan.candidates] == [
        ("stocks/universal", "1.0.0", ()),
        ("stocks/universal", "1.0.1", ()),
        ("stocks/universal", "2.0.0", ("production",)),
    ]
    assert plan.candidates[0].origin["registry_name"] == "xgboost_tuned"
    assert [(r.ticker, r.model) for r in plan.routes] == [("AAPL", "stocks/universal")]


def test_an_unmapped_or_unknown_name_is_refused(tmp_path: Path):
    folder = write_seed_004(tmp_path)
    with pytest.raises(Refused) as caught:
        sqlite_registry.plan(folder, ImportOptions())
    assert caught.value.message == (
        "registry.db holds models named xgboost_tuned; map each to a tickerserve model with "
        "--map NAME=MODEL (unmapped: xgboost_tuned)"
    )
    extra = ImportOptions(mapping={"xgboost_tuned": "stocks/u", "lstm": "stocks/l"})
    with pytest.raises(Refused, match=r"^--map lstm: registry\.db has no model named 'lstm'"):
        sqlite_registry.plan(folder, extra)


def test_rows_that_cannot_be_versions_are_skipped(tmp_path: Path):
    folder = write_seed_004(tmp_path)
    with sqlite3.connect(folder / "registry.db") as db:
        db.execute(
            "INSERT INTO models (model_name, model_type, version, metrics, file_path, "
            "created_at) VALUES ('xgboost_tuned', 'XGBClassifier', 'v3', '{}', 'x.pkl', '')"
        )
        db.execute(
            "INSERT INTO models (model_name, model_type, version, metrics, file_path, "
            "created_at) VALUES ('xgboost_tuned', 'XGBClassifier', '1.0.0', '{}', 'y.pkl', '')"
        )
    db.close()
    skipped = sqlite_registry.plan(folder, MAPPED).skipped
    assert skipped[0].source == "registry.db model_id 4 (xgboost_tuned v3)"
    assert skipped[1] == Skipped(
        "registry.db model_id 5 (xgboost_tuned 1.0.0)", "stocks/universal 1.0.0 is listed twice"
    )


def test_a_database_without_the_models_table_is_refused(tmp_path: Path):
    with sqlite3.connect(tmp_path / "registry.db") as db:
        db.execute("CREATE TABLE runs (id INTEGER)")
    db.close()
    with pytest.raises(Refused, match=r"registry\.db"):
        sqlite_registry.plan(tmp_path, MAPPED)


def test_a_file_recorded_on_another_machine_is_found_beside_the_database(tmp_path: Path):
    folder = write_seed_004(tmp_path)
    (folder / "model.pkl").write_bytes(b"x")
    assert (
        sqlite_registry.locate(folder, "/Users/someone/registry/model.pkl") == folder / "model.pkl"
    )
    assert sqlite_registry.locate(folder, "C:\\models\\model.pkl") == folder / "model.pkl"
    assert sqlite_registry.locate(folder, "model.pkl") == folder / "model.pkl"
    assert sqlite_registry.locate(folder, "") is None
    assert sqlite_registry.locate(folder, "/nowhere/else.pkl") is None


def test_a_candidate_converts_with_the_rows_metrics_and_date(tmp_path: Path):
    plan = sqlite_registry.plan(write_seed_004(tmp_path), MAPPED)
    meta = plan.candidates[2].convert().bundle.metadata
    assert meta.metrics == {"f1": 0.77, "roc_auc": 0.85}
    assert meta.hyperparameters == {"max_depth": 3, "learning_rate": 0.3}
    assert meta.created_at == "2025-11-16T10:00:00"


def test_a_candidate_whose_file_is_gone_says_where_it_looked(tmp_path: Path):
    folder = write_seed_004(tmp_path)
    plan = sqlite_registry.plan(folder, MAPPED)
    (folder / "XGBClassifier_1_0_0.pkl").unlink()
    with pytest.raises(NotConvertible) as caught:
        plan.candidates[0].convert()
    assert caught.value.message.endswith(f"not found, nor XGBClassifier_1_0_0.pkl in {folder}")
