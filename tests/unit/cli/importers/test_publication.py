"""Carrying out an import plan: every candidate converted first (a failure skips it, the rest
go on), only new content written, versions in time order with the newest aliased, one
registry update, then the histories; a re-import publishes nothing and moves nothing. And
monitoring baselines: in a new version's folder, or as a sidecar beside a version the store
already held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cli_support import cli, import_seed_json, write_csv
from tests.monitor_support import stored_baseline
from tests.seed_layouts import (
    SIGNALS,
    write_seed_002,
)
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.plan import Candidate, ImportOptions, ImportPlan, Skipped
from tickerserve.cli.importers.publication import (
    PUBLISHED,
    SAME,
    UNCHANGED,
    WOULD_PUBLISH,
    run_import,
)
from tickerserve.layout import TRAINING_HISTORY_KEY, baseline_sidecar_key
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.recipe import Converted
from tickerserve.publishing.demo import FEATURES
from tickerserve.publishing.promotion import promote
from tickerserve.publishing.release import RouteChange
from tickerserve.storage.bundle import Bundle
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore
from tickerserve.storage.version_index import read_index

REGISTRY = "metadata/asset_registry.json"


def candidate(model: str, bundle: Bundle, order: int, *, aliases=(), version=None) -> Candidate:
    return Candidate(
        model, f"run-{order}", lambda: Converted(bundle, "seed", "LGBMClassifier"), "etf",
        order=(order,), aliases=tuple(aliases), version=version,
    )  # fmt: skip


def smh_plan(tmp_path: Path, models, **extra) -> ImportPlan:
    """Two SMH runs, the newer one in production, and SMH routed to it."""
    plan = ImportPlan("001", tmp_path)
    plan.candidates = [
        candidate("etfs/SMH", models.smh, 0),
        candidate("etfs/SMH", models.smh_v2, 1, aliases=("production",)),
    ]
    plan.routes = [RouteChange("SMH", "etf", "etfs/SMH")]
    for key, value in extra.items():
        setattr(plan, key, value)
    return plan


def test_new_versions_are_written_in_order_then_one_registry_update(tmp_path, models):
    store = LocalStore(tmp_path / "store")
    result = run_import(store, REGISTRY, smh_plan(tmp_path, models), ImportOptions())
    assert [(o.status, o.version, o.aliases) for o in result.outcomes] == [
        (PUBLISHED, "1.0.0", []), (PUBLISHED, "1.0.1", ["production"]),
    ]  # fmt: skip
    registry = read_registry(store, REGISTRY).registry
    assert registry.revision == result.revision == 1
    assert registry.models["etfs/SMH"].aliases["production"].version == "1.0.1"
    assert registry.tickers["SMH"].model == "etfs/SMH"
    history = read_records(store, TRAINING_HISTORY_KEY).records
    assert [(r["version"], r["aliases"]) for r in history] == [
        ("1.0.0", []),
        ("1.0.1", ["production"]),
    ]
    assert result.history_lines["training"] == 0  # the seed brought no lines of its own


def test_a_reimport_publishes_nothing_and_leaves_the_registry_alone(tmp_path, models):
    store = LocalStore(tmp_path / "store")
    run_import(store, REGISTRY, smh_plan(tmp_path, models), ImportOptions())
    again = run_import(store, REGISTRY, smh_plan(tmp_path, models), ImportOptions())
    assert [(o.status, o.version) for o in again.outcomes] == [
        (UNCHANGED, "1.0.0"), (UNCHANGED, "1.0.1"),
    ]  # fmt: skip
    assert again.moves == [] and again.revision == 1
    assert len(read_records(store, TRAINING_HISTORY_KEY).records) == 2


def test_a_reimport_never_moves_an_alias_someone_promoted_by_hand(tmp_path, models):
    store = LocalStore(tmp_path / "store")
    run_import(store, REGISTRY, smh_plan(tmp_path, models), ImportOptions())
    promote(store, REGISTRY, "etfs/SMH", "1.0.0", "production")
    run_import(store, REGISTRY, smh_plan(tmp_path, models), ImportOptions())
    registry = read_registry(store, REGISTRY).registry
    assert registry.models["etfs/SMH"].aliases["production"].version == "1.0.0"


def test_the_same_content_twice_in_one_import_is_one_version(tmp_path, models):
    store = LocalStore(tmp_path / "store")
    plan = smh_plan(tmp_path, models)
    plan.candidates.append(candidate("etfs/SMH", models.smh, 2))
    result = run_import(store, REGISTRY, plan, ImportOptions())
    assert [(o.status, o.version) for o in result.outcomes] == [
        (PUBLISHED, "1.0.0"), (PUBLISHED, "1.0.1"), (SAME, "1.0.0"),
    ]  # fmt: skip


def test_a_candidate_that_cannot_convert_is_skipped_and_the_rest_imported(tmp_path, models):
    def refuse() -> Converted:
        raise NotConvertible("run-9: sklearn.StandardScaler cannot be served")

    store = LocalStore(tmp_path / "store")
    plan = smh_plan(tmp_path, models)
    plan.candidates.insert(0, Candidate("etfs/SMH", "run-9", refuse, order=(-1,)))
    result = run_import(store, REGISTRY, plan, ImportOptions())
    assert result.skipped == [Skipped("run-9", "run-9: sklearn.StandardScaler cannot be served")]
    assert [o.version for o in result.outcomes] == ["1.0.0", "1.0.1"]


def test_a_dry_run_decides_everything_and_writes_nothing(tmp_path, models):
    store = LocalStore(tmp_path / "store")
    result = run_import(store, REGISTRY, smh_plan(tmp_path, models), ImportOptions(), dry_run=True)
    assert [(o.status, o.version) for o in result.outcomes] == [
        (WOULD_PUBLISH, "1.0.0"), (WOULD_PUBLISH, "1.0.1"),
    ]  # fmt: skip
    assert result.dry_run and list(store.list("")) == []


def test_a_route_to_a_model_left_without_its_alias_is_dropped_with_a_note(tmp_path, models):
    store = LocalStore(tmp_path / "store")
    plan = smh_plan(tmp_path, models)
    plan.candidates = plan.candidates[:1]  # the production candidate is gone
    result = run_import(store, REGISTRY, plan, ImportOptions())
    assert result.routes == []
    assert plan.notes == [
        "not routed SMH: etfs/SMH has no production version "
        "(the version that would have been production was skipped)"
    ]
    assert "SMH" not in read_registry(store, REGISTRY).registry.tickers


def test_an_own_version_held_with_other_content_refuses_unless_skipped(tmp_path, models):
    store = LocalStore(tmp_path / "store")
    first = ImportPlan("004", tmp_path)
    first.candidates = [candidate("etfs/SMH", models.smh, 0, version="2.0.0")]
    run_import(store, REGISTRY, first, ImportOptions())
    second = ImportPlan("004", tmp_path)
    second.candidates = [candidate("etfs/SMH", models.smh_v2, 0, version="2.0.0",
                                   aliases=("production",))]  # fmt: skip
    with pytest.raises(Refused) as caught:
        run_import(store, REGISTRY, second, ImportOptions())
    assert caught.value.message == (
        "already in the store with other content: etfs/SMH 2.0.0 (run-0); versions are "
        "immutable: give --skip-existing to leave those out"
    )
    result = run_import(store, REGISTRY, second, ImportOptions(skip_existing=True))
    assert [o.status for o in result.outcomes] == ["exists"]
    assert second.notes == [
        "left out etfs/SMH 2.0.0 (run-0): that version already exists in the store "
        "(--skip-existing)"
    ]


# -- monitoring baselines from --reference (through import-seed) ---------------------------------
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
    assert import_seed_json(store, str(folder))[0] == 0
    ref = reference_002(tmp_path / "ref.csv")
    # When imported again with --reference
    code, report = import_seed_json(store, str(folder), "--reference", str(ref))
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
        found = stored_baseline(store, model, version)
        assert found.where == "sidecar" and found.baseline.rows == 300
        assert set(found.baseline.metrics) == {"accuracy", "macro_f1", "log_loss"}
        recorded = read_index(local, model).index.versions[version].sidecars
        # with its feature ranges beside the version (its metadata was written without)
        assert set(recorded) == {"baseline.json", "ranges.json"}
        assert recorded["baseline.json"] == found.sha256
    # When imported once more / Then the sidecars are kept, not rewritten
    before = {p: p.read_bytes() for p in (store / "stocks").rglob("*.json")}
    code, report = import_seed_json(store, str(folder), "--reference", str(ref))
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
    code, report = import_seed_json(store, str(folder), "--reference", str(ref))
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
    code, report = import_seed_json(store, str(folder), "--reference", str(ref), "--dry-run")
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
