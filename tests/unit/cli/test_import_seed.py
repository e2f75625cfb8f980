"""``import-seed`` on each of the five seed layouts, built as their documents show them: one
command imports each, and the imported models answer what the seeds' own code answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cli_support import (
    REGISTRY,
    FaultyStore,
    cli,
    cli_json,
    registry_of,
    run_on_terminal,
    ts,
)
from tests.integration.serving import TICKERSERVE
from tests.seed_layouts import (
    SELECTED,
    VOL_FEATURES,
    ensemble_predict,
    garbled_lightgbm_pickle,
    originals,
    quiet,
    stack_predict,
    write_seed_000,
    write_seed_001,
    write_seed_002,
    write_seed_003,
    write_seed_004,
)
from tests.seed_support import original_prediction, seed_models, write_seed_tree
from tickerserve.errors import StorageUnavailable
from tickerserve.http.api import Api
from tickerserve.layout import (
    MONITORING_HISTORY_KEY,
    TRAINING_HISTORY_KEY,
)
from tickerserve.publishing.demo import FEATURES
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.bundle import read_metadata
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import ShadowSettings, read_registry
from tickerserve.storage.store import LocalStore

NO_TORCH = (
    "not imported, because the zip-packaged prediction function does not serve torch models "
    "(PyTorch alone is larger than Lambda's 250 MB unzipped limit)"
)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def import_seed(store: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run ``import-seed ... --json``: the exit code and the report."""
    result = cli("--store", str(store), "import-seed", *args, "--json")
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def versions(report: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(model, source) -> (status, version)."""
    return {(m["model"], m["source"]): (m["status"], m["version"]) for m in report["models"]}


def registry(store: Path):
    return read_registry(LocalStore(store), REGISTRY).registry


def serving(store: Path, tmp_path: Path) -> Api:
    return Api(ModelService(Settings(store_path=str(store), cache_dir=str(tmp_path / "cache"))))


def ask(api: Api, ticker: str, names: list[str], row: np.ndarray, **extra: Any) -> dict[str, Any]:
    features = {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, row, strict=True)}
    answer = dict(api.handle({"ticker": ticker, "features": features, **extra}, None))
    assert "error" not in answer, answer
    return answer


def request_rows(n: int, width: int, *, missing: bool = True, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(scale=1.5, size=(n, width))
    if missing:
        rows[rng.random(rows.shape) < 0.1] = np.nan
    return rows


def probabilities(answer: dict[str, Any], labels: list[str]) -> np.ndarray:
    assert list(answer["probabilities"]) == labels
    return np.array([answer["probabilities"][label] for label in labels])


# -- 000: models_storage/ ------------------------------------------------------------------------
def test_seed_000_exactly_as_documented_imports_and_answers_like_its_pickles(store, tmp_path):
    # Given models_storage/ as seed 000 draws it: lightgbm_clean_model.pkl,
    # label_encoder_clean.pkl, feature_names_clean.json, metadata.json, an empty universal
    # production folder and a registry
    write_seed_000(tmp_path)
    # When imported with one command (the folder that holds models_storage/)
    code, report = import_seed(store, str(tmp_path))
    # Then SMH is published and routed, and the empty folder is only noted
    assert (code, report["layout"], report["skipped"]) == (0, "000", [])
    assert versions(report) == {("etfs/SMH", "etfs/SMH/production"): ("published", "1.0.0")}
    assert "stocks/universal/production is empty: nothing to import" in report["notes"]
    assert registry(store).tickers["SMH"].model == "etfs/SMH"
    meta, _ = read_metadata(LocalStore(store), "etfs/SMH", "1.0.0")
    assert meta.metrics == {"accuracy": 0.8421}
    assert meta.created_at == "2024-12-06T10:00:00"
    # And SMH answers the pickles' label (through the encoder) and probabilities
    api = serving(store, tmp_path)
    m = seed_models()
    for row in request_rows(12, len(FEATURES)):
        answer = ask(api, "SMH", list(FEATURES), row)
        label, expected = original_prediction(m.smh, m.smh_encoder, row)
        assert answer["prediction"] == label
        assert answer["probabilities"] == pytest.approx(expected, abs=1e-12)


def test_a_pickle_that_aborts_lightgbm_is_skipped_and_the_rest_imported(store, tmp_path):
    # Given a second ETF whose LightGBM pickle makes LightGBM abort the process when unpickled
    storage = write_seed_000(tmp_path)
    smh = storage / "etfs/SMH/production"
    xlk = storage / "etfs/XLK/production"
    shutil.copytree(smh, xlk)
    model = xlk / "lightgbm_clean_model.pkl"
    model.write_bytes(garbled_lightgbm_pickle(model.read_bytes()))
    # When imported
    code, report = import_seed(store, str(storage))
    # Then this process survived, XLK is skipped with LightGBM's last words, SMH is imported
    assert code == 2
    [skipped] = report["skipped"]
    assert skipped["source"] == "etfs/XLK/production"
    assert skipped["reason"].startswith(
        f"cannot unpickle {model}: the loader crashed (SIGABRT): [LightGBM] [Fatal] "
    )
    assert versions(report) == {("etfs/SMH", "etfs/SMH/production"): ("published", "1.0.0")}
    assert sorted(registry(store).tickers) == ["SMH"]


# -- 001: run folders ----------------------------------------------------------------------------
@pytest.mark.parametrize("pointer", [False, True], ids=["symlink", "pointer-file"])
def test_seed_001_runs_become_versions_and_torch_runs_are_refused(store, tmp_path, pointer):
    # Given models/{type}/{symbol}/{run_id}/ with LightGBM, GRU and PPO runs, `latest` links
    # (or latest_pointer.txt files) and a walk-forward best artifact
    models = write_seed_001(tmp_path, pointer=pointer)
    # When imported with one command
    code, report = import_seed(store, str(models))
    # Then the LightGBM runs are versions in time order with the run id kept
    assert (code, report["layout"]) == (2, "001")
    assert versions(report) == {
        ("stocks/BTCEUR", "lightgbm/BTCEUR/20240815_102314"): ("published", "1.0.0"),
        ("stocks/BTCEUR", "lightgbm/BTCEUR/20240816_143502"): ("published", "1.0.1"),
        ("stocks/BTCEUR", "metadata/best_wf_lightgbm_BTCEUR.pkl"): ("same as another", "1.0.0"),
        ("stocks/ETHEUR", "lightgbm/ETHEUR/20240810_090000"): ("published", "1.0.0"),
        ("stocks/ETHEUR", "lightgbm/ETHEUR/20240812_090000"): ("published", "1.0.1"),
    }
    store_ = LocalStore(store)
    assert read_metadata(store_, "stocks/BTCEUR", "1.0.1")[0].source["run_id"] == (
        "20240816_143502"
    )
    # And torch runs are refused, saying why, and counted in the exit code
    assert report["skipped"] == [
        {"source": "gru/BTCEUR/20240816_142301", "reason": f"model.pth is a PyTorch model "
         f"(torch.save, e.g. a GRU): {NO_TORCH}"},
        {"source": "ppo/BTCEUR/20240816_144023", "reason": f"model.zip is a Stable-Baselines3 "
         f"model (e.g. PPO, on torch): {NO_TORCH}"},
        {"source": "metadata/best_wf_gru_BTCEUR.pth", "reason": "best_wf_gru_BTCEUR.pth is a "
         f"PyTorch model (torch.save, e.g. a GRU): {NO_TORCH}"},
    ]  # fmt: skip
    # And `latest` (symlink or pointer) is production, the walk-forward best is `best`
    reg = registry(store)
    btc, eth = reg.models["stocks/BTCEUR"].aliases, reg.models["stocks/ETHEUR"].aliases
    assert {a: t.version for a, t in btc.items()} == {"production": "1.0.1", "best": "1.0.0"}
    assert {a: t.version for a, t in eth.items()} == {"production": "1.0.0"}
    assert reg.tickers["BTCEUR"].model == "stocks/BTCEUR"
    # And requests name the full feature list; the model gets the selected features
    meta = read_metadata(store_, "stocks/BTCEUR", "1.0.1")[0]
    assert (meta.feature_names, meta.selected_features) == (list(FEATURES), SELECTED)
    api = serving(store, tmp_path)
    runs = originals().runs
    eth = originals().eth_runs["20240810_090000"]
    for row in request_rows(10, len(FEATURES)):
        subset, whole = row[SELECTED].reshape(1, -1), row.reshape(1, -1)
        for extra, run_id in (({}, "20240816_143502"), ({"alias": "best"}, "20240815_102314")):
            answer = ask(api, "BTCEUR", list(FEATURES), row, **extra)
            want = quiet(lambda r=run_id, x=subset: runs[r].predict_proba(x))
            assert np.allclose(probabilities(answer, ["0", "1", "2"]), want[0], atol=1e-12)
        value = ask(api, "ETHEUR", list(FEATURES), row)["prediction"]
        want = quiet(lambda x=whole: eth.predict(x))
        assert value == pytest.approx(want[0], abs=1e-12)


# -- 002: dated ensembles ------------------------------------------------------------------------
def test_seed_002_dated_ensembles_per_symbol_and_timeframe(store, tmp_path):
    # Given trained_models/ with AAPL d1 (two dates) and h1
    write_seed_002(tmp_path)
    # When imported with one command
    code, report = import_seed(store, str(tmp_path))
    # Then each symbol and timeframe is a model, its dates versions in date order
    assert (code, report["layout"], report["skipped"]) == (0, "002", [])
    assert versions(report) == {
        ("stocks/AAPL/d1", "AAPL_d1_20250114.pkl"): ("published", "1.0.0"),
        ("stocks/AAPL/d1", "AAPL_d1_20250121.pkl"): ("published", "1.0.1"),
        ("stocks/AAPL/h1", "AAPL_h1_20250121.pkl"): ("published", "1.0.0"),
    }
    reg = registry(store)
    assert reg.models["stocks/AAPL/d1"].aliases["production"].version == "1.0.1"
    route = reg.tickers["AAPL"]
    assert (route.model, route.timeframes) == (
        "stocks/AAPL/d1",
        {"d1": "stocks/AAPL/d1", "h1": "stocks/AAPL/h1"},
    )
    meta = read_metadata(LocalStore(store), "stocks/AAPL/d1", "1.0.1")[0]
    assert (meta.created_at, meta.source["date"], meta.method) == (
        "2025-01-21",
        "20250121",
        "weighted_average",
    )
    assert meta.metrics["ensemble_accuracy"] == 0.601
    assert meta.metrics["gb_valid_accuracy"] == 0.592
    # And each timeframe answers the weighted average of its pickled members, with agreement
    api = serving(store, tmp_path)
    ensembles = originals().ensembles
    labels = ["bearish", "bullish", "neutral"]
    for row in request_rows(8, len(FEATURES), missing=False):
        for extra, name in (
            ({}, "AAPL_d1_20250121.pkl"),
            ({"timeframe": "h1"}, "AAPL_h1_20250121.pkl"),
        ):
            answer = ask(api, "AAPL", list(FEATURES), row, **extra)
            want = ensemble_predict(ensembles[name], row.reshape(1, -1))[0]
            assert np.allclose(probabilities(answer, labels), want, atol=1e-12)
            assert answer["prediction"] == labels[int(np.argmax(want))]
            assert answer["agreement"] in (0.5, 1.0)


def test_seed_002_without_feature_names_asks_for_features_file(store, tmp_path):
    # Given SPY's ensemble fitted on bare arrays: no feature names anywhere
    write_seed_002(tmp_path, unnamed=True)
    # When imported / Then SPY is skipped with what to do, the rest is imported
    code, report = import_seed(store, str(tmp_path))
    assert code == 2
    assert report["skipped"] == [
        {
            "source": "SPY_d1_20250121.pkl",
            "reason": "SPY_d1_20250121.pkl: no feature names: the seed lists none and the "
            "estimator has no feature_names_in_; give --features FILE (the 12 names in "
            "training order, as a JSON list)",
        }
    ]
    assert {m["model"] for m in report["models"]} == {"stocks/AAPL/d1", "stocks/AAPL/h1"}
    # When imported again with --features / Then only SPY is new, and it answers by those names
    names = tmp_path / "features.json"
    names.write_text(json.dumps(list(FEATURES)))
    code, again = import_seed(store, str(tmp_path), "--features", str(names), "--etfs", "SPY")
    assert (code, again["skipped"]) == (0, [])
    assert {m["model"]: m["status"] for m in again["models"]} == {
        "stocks/AAPL/d1": "unchanged",
        "stocks/AAPL/h1": "unchanged",
        "etfs/SPY/d1": "published",
    }
    row = request_rows(1, len(FEATURES), missing=False)[0]
    answer = ask(serving(store, tmp_path), "SPY", list(FEATURES), row)
    want = ensemble_predict(originals().ensembles["SPY_d1_20250121.pkl"], row.reshape(1, -1))
    assert answer["model"]["name"] == "etfs/SPY/d1"
    assert np.allclose(list(answer["probabilities"].values()), want[0], atol=1e-12)


def test_reimport_publishes_only_what_is_new(store, tmp_path):
    # Given an imported trained_models/ folder
    folder = write_seed_002(tmp_path)
    assert import_seed(store, str(folder))[0] == 0
    revision = registry(store).revision
    # When a new dated file appears and the folder is imported again
    shutil.copy(folder / "AAPL_h1_20250121.pkl", folder / "AAPL_d1_20250128.pkl")
    code, report = import_seed(store, str(folder))
    # Then only it is published (next version, production), in one registry update
    assert code == 0
    assert {m["source"]: (m["status"], m["version"]) for m in report["models"]} == {
        "AAPL_d1_20250114.pkl": ("unchanged", "1.0.0"),
        "AAPL_d1_20250121.pkl": ("unchanged", "1.0.1"),
        "AAPL_d1_20250128.pkl": ("published", "1.0.2"),
        "AAPL_h1_20250121.pkl": ("unchanged", "1.0.0"),
    }
    assert report["revision"] == revision + 1
    assert registry(store).models["stocks/AAPL/d1"].aliases["production"].version == "1.0.2"
    # When imported once more / Then nothing is written at all
    before = sorted(p.name for p in LocalStore(store).root.rglob("*"))
    code, report = import_seed(store, str(folder))
    assert (code, report["revision"]) == (0, revision + 1)
    assert {m["status"] for m in report["models"]} == {"unchanged"}
    assert sorted(p.name for p in LocalStore(store).root.rglob("*")) == before


def test_dry_run_lists_what_it_would_publish_and_writes_nothing(store, tmp_path):
    write_seed_002(tmp_path)
    code, report = import_seed(store, str(tmp_path), "--dry-run")
    assert (code, report["dry_run"]) == (0, True)
    assert {m["source"]: (m["status"], m["version"]) for m in report["models"]} == {
        "AAPL_d1_20250114.pkl": ("would publish", "1.0.0"),
        "AAPL_d1_20250121.pkl": ("would publish", "1.0.1"),
        "AAPL_h1_20250121.pkl": ("would publish", "1.0.0"),
    }
    assert not store.exists()
    text = cli("--store", str(store), "import-seed", str(tmp_path), "--dry-run")
    assert text.stdout.splitlines()[-1] == (
        f"dry run: would publish 3; 0 unchanged, 0 skipped, 3 route(s); nothing written to {store}"
    )


def test_corrupted_pickle_is_skipped_and_the_rest_imported(store, tmp_path):
    folder = write_seed_002(tmp_path)
    (folder / "QQQ_d1_20250121.pkl").write_bytes(b"\x80\x04 truncated")
    result = cli("--store", str(store), "import-seed", str(folder))
    assert result.exit_code == 2
    assert "skipped QQQ_d1_20250121.pkl: cannot unpickle " in result.stdout
    assert result.stdout.splitlines()[-1].startswith(
        "published 3; 0 unchanged, 1 skipped, 3 route(s); registry revision 1 in "
    )
    assert "QQQ" not in registry(store).tickers


# -- 003: Model A and Model B --------------------------------------------------------------------
def test_seed_003_model_a_production_model_b_challenger_in_shadow(store, tmp_path):
    # Given models/ with model_90pct.pkl, model_100pct.pkl, latest_ensemble.pkl (A's copy),
    # the two baselines and both histories
    write_seed_003(tmp_path)
    # When imported with one command, naming the model and the ticker it answers
    code, report = import_seed(
        store, str(tmp_path), "--model", "etfs/SPY/volatility", "--route", "SPY"
    )
    # Then A is production and B the challenger, shadowed, in one registry revision
    assert (code, report["layout"], report["revision"]) == (0, "003", 1)
    assert versions(report) == {
        ("etfs/SPY/volatility", "model_90pct.pkl"): ("published", "1.0.0"),
        ("etfs/SPY/volatility", "model_100pct.pkl"): ("published", "1.0.1"),
    }
    assert (
        "latest_ensemble.pkl is a copy of model_90pct.pkl: not imported twice" in (report["notes"])
    )
    entry = registry(store).models["etfs/SPY/volatility"]
    assert {a: t.version for a, t in entry.aliases.items()} == {
        "production": "1.0.0",
        "challenger": "1.0.1",
    }
    assert entry.shadow == ShadowSettings("challenger", 1.0)
    assert registry(store).tickers["SPY"].model == "etfs/SPY/volatility"
    # And the baselines are the versions' validation metrics and training windows
    store_ = LocalStore(store)
    a = read_metadata(store_, "etfs/SPY/volatility", "1.0.0")[0]
    b = read_metadata(store_, "etfs/SPY/volatility", "1.0.1")[0]
    assert a.metrics == {"validation_rmse": 0.011402, "validation_mae": 0.006778,
                         "validation_r2": 0.434352}  # fmt: skip
    assert a.training == {
        "start": "2010-03-31", "end": "2024-05-31", "validation_start": "2024-06-03",
        "validation_end": "2025-12-31", "train_val_split": 0.9,
        "baseline_at": "2026-01-08T22:09:13.586357", "rows": 3566, "validation_rows": 397,
    }  # fmt: skip
    assert b.metrics == {"test_rmse": 0.005797, "test_mae": 0.00476, "test_r2": -0.1223}
    assert a.created_at == b.created_at == "2026-01-08T22:09:13.586357"
    assert (b.training["end"], b.training["test_start"], b.training["rows"]) == (
        "2025-11-17",
        "2025-11-18",
        3933,
    )
    # And the seed's histories are appended to the store's, named by model
    monitoring = read_records(store_, MONITORING_HISTORY_KEY).records
    assert [r["recommendation"] for r in monitoring] == ["USE MODEL A (90%)"]
    assert monitoring[0]["model"] == "etfs/SPY/volatility"
    training = read_records(store_, TRAINING_HISTORY_KEY).records
    assert [r.get("event") for r in training] == ["published", "published", None]
    # And both answer what seed 003's own code computes from each pickle
    api = serving(store, tmp_path)
    stacks = originals().stacks
    for row in request_rows(10, len(VOL_FEATURES)):
        for extra, name in (({}, "model_90pct.pkl"), ({"alias": "challenger"}, "model_100pct.pkl")):
            answer = ask(api, "SPY", VOL_FEATURES, row, **extra)
            assert set(answer) == {"request_id", "ticker", "model", "prediction"}
            want = stack_predict(stacks[name], row.reshape(1, -1))[0]
            assert answer["prediction"] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_seed_003_needs_a_model_name(store, tmp_path):
    write_seed_003(tmp_path)
    result = cli("--store", str(store), "import-seed", str(tmp_path))
    assert (result.exit_code, result.stderr) == (
        2,
        "error: seed 003 names no model: give --model NAME (e.g. stocks/SPY/volatility) and "
        "--route TICKER for each ticker it answers\n",
    )
    assert not store.exists()


# -- 004: SQLite registry ------------------------------------------------------------------------
def test_seed_004_keeps_its_semver_and_highest_is_production(store, tmp_path):
    # Given registry.db whose file_path values point at another machine
    folder = write_seed_004(tmp_path)
    # When imported with one command, mapping its model name and routing a ticker
    code, report = import_seed(
        store, str(folder), "--map", "xgboost_tuned=stocks/universal", "--route", "AAPL"
    )
    # Then every row keeps its version, files are found by name beside registry.db
    assert (code, report["layout"], report["skipped"]) == (0, "004", [])
    assert sorted(m["version"] for m in report["models"]) == ["1.0.0", "1.0.1", "2.0.0"]
    reg = registry(store)
    assert reg.models["stocks/universal"].aliases["production"].version == "2.0.0"
    assert reg.tickers["AAPL"].model == "stocks/universal"
    meta = read_metadata(LocalStore(store), "stocks/universal", "1.0.1")[0]
    assert meta.metrics == {"f1": 0.76, "roc_auc": 0.85}
    assert meta.hyperparameters == {"max_depth": 3, "learning_rate": 0.3}
    assert (meta.created_at, meta.source["registry_version"]) == ("2025-11-15T10:00:00", "1.0.1")
    # And each version answers what its joblib file answers
    api = serving(store, tmp_path)
    registry_models = originals().registry
    for row in request_rows(6, len(FEATURES)):
        for extra, version in (({}, "2.0.0"), ({"version": "1.0.0"}, "1.0.0")):
            answer = ask(api, "AAPL", list(FEATURES), row, **extra)
            want = registry_models[version].predict_proba(row.reshape(1, -1))[0]
            assert np.allclose(probabilities(answer, ["0", "1", "2"]), want, atol=1e-7)


def test_seed_004_refuses_unmapped_names(store, tmp_path):
    folder = write_seed_004(tmp_path)
    result = cli("--store", str(store), "import-seed", str(folder / "registry.db"))
    assert (result.exit_code, result.stderr) == (
        2,
        "error: registry.db holds models named xgboost_tuned; map each to a tickerserve model "
        "with --map NAME=MODEL (unmapped: xgboost_tuned)\n",
    )
    assert not store.exists()


def test_seed_004_existing_versions_are_refused_unless_skip_existing(store, tmp_path):
    # Given stocks/universal 1.0.0 already in the store, with other content (seed 002's model)
    other = write_seed_002(tmp_path) / "AAPL_h1_20250121.pkl"
    published = cli("--store", str(store), "publish", str(other), "--model", "stocks/universal")
    assert published.exit_code == 0, published.stderr
    folder = write_seed_004(tmp_path)
    args = ("--map", "xgboost_tuned=stocks/universal")
    # When imported / Then refused as a whole, naming the version
    result = cli("--store", str(store), "import-seed", str(folder), *args)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: already in the store with other content: stocks/universal 1.0.0 (registry.db "
        "model_id 1 (xgboost_tuned 1.0.0)); versions are immutable: give --skip-existing to "
        "leave those out\n",
    )
    # When imported with --skip-existing / Then the other versions are, production the highest
    code, report = import_seed(store, str(folder), *args, "--skip-existing")
    assert code == 0
    assert sorted((m["version"], m["status"]) for m in report["models"]) == [
        ("1.0.0", "exists"),
        ("1.0.1", "published"),
        ("2.0.0", "published"),
    ]
    assert registry(store).models["stocks/universal"].aliases["production"].version == "2.0.0"


# -- choosing a layout ---------------------------------------------------------------------------
def test_layout_refusals(store, tmp_path):
    write_seed_002(tmp_path)
    (tmp_path / "empty").mkdir()
    cases = [
        ((str(tmp_path), "--layout", "003"), f"{tmp_path}: not a seed 003 layout (expected "
         "models/model_90pct.pkl (Model A) and model_100pct.pkl (Model B))"),
        ((str(tmp_path), "--map", "a=b"), "--map does not apply to seed layout 002 (only to 004)"),
        ((str(tmp_path / "empty"),), f"{tmp_path / 'empty'}: no seed layout recognised (expected"),
    ]  # fmt: skip
    for args, message in cases:
        result = cli("--store", str(store), "import-seed", *args)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert not store.exists()


def test_alias_renames_what_becomes_production(store, tmp_path):
    folder = write_seed_004(tmp_path)
    code, _ = import_seed(
        store, str(folder), "--map", "xgboost_tuned=stocks/universal", "--alias", "staging"
    )
    assert code == 0
    aliases = registry(store).models["stocks/universal"].aliases
    assert {a: t.version for a, t in aliases.items()} == {"staging": "2.0.0"}


# -- import-seed against a seed-style models_storage tree (moved from test_commands) --------
def test_import_seed_dry_run_writes_nothing(tmp_path, store_path):
    write_seed_tree(tmp_path)
    report = cli_json("--store", store_path, "import-seed", str(tmp_path), "--dry-run")
    assert {m["model"]: m["status"] for m in report["models"]} == {
        "etfs/QQQ": "would publish",
        "etfs/SMH": "would publish",
        "etfs/XLF": "would publish",
        "stocks/universal": "would publish",
    }
    assert list(LocalStore(store_path).list("")) == []


def test_import_seed_then_reimport_is_a_no_op(tmp_path, store_path):
    # Given a seed tree with a registry and a monitoring history
    write_seed_tree(tmp_path)
    # When imported with an extra stock
    first = cli_json(
        "--store",
        store_path,
        "import-seed",
        str(tmp_path / "models_storage"),
        "--stocks",
        "NVDA,TSLA",
    )
    # Then every model is published as 1.0.0 with production, and routes follow the registry
    assert {m["model"]: (m["status"], m["version"]) for m in first["models"]} == {
        "etfs/QQQ": ("published", "1.0.0"),
        "etfs/SMH": ("published", "1.0.0"),
        "etfs/XLF": ("published", "1.0.0"),
        "stocks/universal": ("published", "1.0.0"),
    }
    assert {r["ticker"]: r["model"] for r in first["routes"]} == {
        "AAPL": "stocks/universal",
        "MSFT": "stocks/universal",
        "NVDA": "stocks/universal",
        "TSLA": "stocks/universal",
        "QQQ": "etfs/QQQ",
        "SMH": "etfs/SMH",
        "XLF": "etfs/XLF",
    }
    assert first["notes"] == ["skipped etfs/OLD: no production/ folder"]
    assert first["revision"] == 1
    assert len(cli_json("--store", store_path, "history", "monitoring")) == 2
    # When imported again
    second = cli_json("--store", store_path, "import-seed", str(tmp_path), "--stocks", "NVDA,TSLA")
    # Then nothing is re-published and the registry is not rewritten
    assert {m["status"] for m in second["models"]} == {"unchanged"}
    assert second["revision"] == 1
    assert len(cli_json("--store", store_path, "history", "monitoring")) == 2
    assert len(read_records(LocalStore(store_path), TRAINING_HISTORY_KEY).records) == 4


def test_import_seed_skips_a_model_that_fails_and_imports_the_rest(tmp_path, store_path):
    # Given a tree where one of four models has an unreadable pickle
    storage = write_seed_tree(tmp_path)
    bad = storage / "etfs/XLF/production/model.joblib"
    bad.write_bytes(b"garbage")
    # When imported
    result = ts(store_path, "import-seed", str(storage))
    # Then it exits 2, says what was skipped and why, and imports the other three
    assert result.exit_code == 2
    assert f"skipped etfs/XLF/production: cannot unpickle {bad}: " in result.stdout
    assert (
        "not routed XLF: etfs/XLF has no production version "
        "(the version that would have been production was skipped)"
    ) in result.stdout
    registry = registry_of(store_path)
    assert sorted(registry.models) == ["etfs/QQQ", "etfs/SMH", "stocks/universal"]
    assert "XLF" not in registry.tickers
    assert list(LocalStore(store_path).list("etfs/XLF/")) == []


def test_import_seed_stock_fallback(tmp_path, store_path):
    write_seed_tree(tmp_path, registry=None)
    assert ts(store_path, "import-seed", str(tmp_path), "--stock-fallback").exit_code == 0
    registry = registry_of(store_path)
    assert registry.fallbacks == {"stock": "stocks/universal"}
    assert registry.route("ZZZZ", "stock").model == "stocks/universal"
    assert set(registry.tickers) == {"QQQ", "SMH", "XLF"}


def test_reimport_replaces_a_corrupt_production_version(tmp_path, store_path):
    # Given an imported tree whose SMH production metadata.json was altered in the store
    write_seed_tree(tmp_path)
    assert ts(store_path, "import-seed", str(tmp_path)).exit_code == 0
    path = LocalStore(store_path).root / "etfs/SMH/versions/1.0.0/metadata.json"
    path.write_bytes(path.read_bytes().replace(b'"lightgbm"', b'"LightGBM"'))
    # When imported again
    report = cli_json("--store", store_path, "import-seed", str(tmp_path))
    # Then only SMH is published again (1.0.1) and production moves to it
    assert {m["model"]: (m["status"], m["version"]) for m in report["models"]}["etfs/SMH"] == (
        "published",
        "1.0.1",
    )
    assert {m["status"] for m in report["models"] if m["model"] != "etfs/SMH"} == {"unchanged"}
    assert registry_of(store_path).models["etfs/SMH"].aliases["production"].version == "1.0.1"


def test_import_seed_failed_registry_update_leaves_no_history_claim(
    tmp_path, store_path, monkeypatch
):
    # Given a seed tree and a store whose registry cannot be written
    write_seed_tree(tmp_path)

    def fail(key: str) -> None:
        if key == REGISTRY:
            raise StorageUnavailable("storage error on it: InternalError")

    monkeypatch.setattr(
        "tickerserve.cli.store_option.open_store",
        lambda **kw: FaultyStore(LocalStore(store_path), fail),
    )
    # When importing it
    result = ts(store_path, "import-seed", str(tmp_path))
    # Then the import fails and no training record claims production moved
    assert result.exit_code == 1
    assert read_records(LocalStore(store_path), TRAINING_HISTORY_KEY).records == []


def test_import_seed_whose_history_append_fails_says_what_is_live(
    tmp_path, store_path, monkeypatch
):
    write_seed_tree(tmp_path)

    def fail(key: str) -> None:
        if key == TRAINING_HISTORY_KEY:
            raise StorageUnavailable("storage error on it: SlowDown")

    monkeypatch.setattr(
        "tickerserve.cli.store_option.open_store",
        lambda **kw: FaultyStore(LocalStore(store_path), fail),
    )
    result = ts(store_path, "import-seed", str(tmp_path))
    # Then the usual report is printed (it is live), and the exit says what is missing
    assert result.exit_code == 1
    assert "registry revision 1" in result.stdout
    assert result.stderr.startswith("error: imported ")
    assert (
        "routes and aliases are live (registry revision 1), but the histories were not "
        "updated: storage error on it: SlowDown" in result.stderr
    )
    assert registry_of(store_path).tickers


@pytest.mark.parametrize("output", ["text", "json"])
def test_import_seed_shows_each_conversion_on_a_terminal_only(tmp_path, store_path, output: str):
    # Given a seed tree of four models
    storage = write_seed_tree(tmp_path)
    argv = [*TICKERSERVE, "--store", store_path, "import-seed", str(storage), "--dry-run"]
    # When it is imported with stderr on a terminal
    run = run_on_terminal([*argv, "--json"] if output == "json" else argv)
    assert run.code == 0, run.terminal + run.stdout
    if output == "json":
        # Then --json prints the report alone and the terminal sees no progress
        assert len(json.loads(run.stdout)["models"]) == 4
        assert "converting" not in run.terminal
    else:
        # Then the terminal showed the tree being read and the four conversions counted
        assert f"reading {storage}" in run.terminal
        assert "converted 4 models" in run.terminal and "4/4" in run.terminal
