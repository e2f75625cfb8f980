"""``import-seed`` on each of the five seed layouts, built as their documents show them: one
command imports each, and the imported models answer what the seeds' own code answers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import joblib
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
from tests.network_support import FEATURES as NETWORK_FEATURES
from tests.network_support import gru_answers, networks, ppo_answers
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
from tests.seed_support import (
    QQQ_SELECTED,
    original_prediction,
    seed_folder,
    seed_models,
    write_seed_tree,
)
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

ROOT = Path(__file__).resolve().parents[3]


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


def run_snippet(cwd: Path, code: str) -> str:
    """A seed document's Python snippet, run as written in ``cwd``; what it printed."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


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
def test_seed_001_runs_become_versions_gru_and_ppo_on_signals_of_their_own(
    store, tmp_path, pointer
):
    # Given models/{type}/{symbol}/{run_id}/ with LightGBM runs, a GRU run and a PPO run (real
    # networks, saved as the seed saves them), `latest` links (or latest_pointer.txt files) and
    # walk-forward best artifacts
    models = write_seed_001(tmp_path, pointer=pointer)
    # When imported with one command
    code, report = import_seed(store, str(models))
    # Then everything imports (exit 0): every run a version, in time order, run ids kept
    assert (code, report["layout"], report["skipped"]) == (0, "001", [])
    assert versions(report) == {
        ("stocks/BTCEUR/lightgbm", "lightgbm/BTCEUR/20240815_102314"): ("published", "1.0.0"),
        ("stocks/BTCEUR/lightgbm", "lightgbm/BTCEUR/20240816_143502"): ("published", "1.0.1"),
        ("stocks/BTCEUR/lightgbm", "metadata/best_wf_lightgbm_BTCEUR.pkl"): (
            "same as another",
            "1.0.0",
        ),
        ("stocks/BTCEUR/gru", "gru/BTCEUR/20240816_142301"): ("published", "1.0.0"),
        ("stocks/BTCEUR/gru", "metadata/best_wf_gru_BTCEUR.pth"): ("same as another", "1.0.0"),
        ("stocks/BTCEUR/ppo", "ppo/BTCEUR/20240816_144023"): ("published", "1.0.0"),
        ("stocks/ETHEUR", "lightgbm/ETHEUR/20240810_090000"): ("published", "1.0.0"),
        ("stocks/ETHEUR", "lightgbm/ETHEUR/20240812_090000"): ("published", "1.0.1"),
    }
    store_ = LocalStore(store)
    assert read_metadata(store_, "stocks/BTCEUR/lightgbm", "1.0.1")[0].source["run_id"] == (
        "20240816_143502"
    )
    # And the networks were checked against torch and stable-baselines3 (shown in the report)
    nets = {m["model"]: m for m in report["models"] if "network" in m}
    assert set(nets) == {"stocks/BTCEUR/gru", "stocks/BTCEUR/ppo"}
    assert all(m["probe_rows"] == 256 and m["max_relative_diff"] <= 1e-5 for m in nets.values())
    # And `latest` (symlink or pointer) is production, the walk-forward bests are `best`
    reg = registry(store)
    aliases = {
        name: {a: t.version for a, t in reg.models[name].aliases.items()}
        for name in ("stocks/BTCEUR/lightgbm", "stocks/BTCEUR/gru", "stocks/ETHEUR")
    }
    assert aliases == {
        "stocks/BTCEUR/lightgbm": {"production": "1.0.1", "best": "1.0.0"},
        "stocks/BTCEUR/gru": {"production": "1.0.0", "best": "1.0.0"},
        "stocks/ETHEUR": {"production": "1.0.0"},
    }
    # And each model type is its own signal of the symbol: lightgbm the default
    assert reg.route("BTCEUR").model == "stocks/BTCEUR/lightgbm"
    assert reg.route("BTCEUR", signal="gru").model == "stocks/BTCEUR/gru"
    assert reg.route("BTCEUR", signal="ppo").model == "stocks/BTCEUR/ppo"
    # And requests name the full feature list; the LightGBM model gets the selected features
    meta = read_metadata(store_, "stocks/BTCEUR/lightgbm", "1.0.1")[0]
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
    # And the GRU answers windows, the policy observations, as their originals do
    rng = np.random.default_rng(3)
    window = rng.normal(scale=5, size=(8, len(NETWORK_FEATURES)))
    rows = [dict(zip(NETWORK_FEATURES, r.tolist(), strict=True)) for r in window]
    answer = api.handle({"ticker": "BTCEUR", "signal": "gru", "features": rows}, None)
    want = gru_answers(networks()["gru"], window[None, :, [0, 2, 5, 8, 11]])[0, 0]
    assert (answer["signal"], answer["prediction"]) == ("gru", pytest.approx(want, rel=1e-5))
    observation = rng.normal(scale=5, size=(1, 6))
    answer = api.handle(
        {"ticker": "BTCEUR", "signal": "ppo", "features": observation[0].tolist()}, None
    )
    _, probs, values = ppo_answers(networks()["ppo"], observation)
    assert answer["label"] == ["hold", "buy", "sell"][answer["action"]]
    np.testing.assert_allclose(list(answer["probabilities"].values()), probs[0], atol=1e-5)
    assert answer["value"] == pytest.approx(values[0], rel=1e-5, abs=1e-6)


def test_seed_001_networks_without_torch_are_skipped_naming_the_install_line(
    store, tmp_path, monkeypatch
):
    # Given seed 001's tree on a machine without torch
    models = write_seed_001(tmp_path)
    monkeypatch.setitem(sys.modules, "torch", None)
    # When imported, Then the LightGBM runs are, the networks are skipped with the extra to install
    code, report = import_seed(store, str(models))
    assert code == 2
    install = (
        "is not installed here: pip install 'tickerserve[networks]' (torch's CPU build, "
        "without the CUDA libraries: pip install torch --index-url "
        "https://download.pytorch.org/whl/cpu first)"
    )
    assert [s["source"] for s in report["skipped"]] == [
        "gru/BTCEUR/20240816_142301",
        "ppo/BTCEUR/20240816_144023",
        "metadata/best_wf_gru_BTCEUR.pth",
    ]
    assert all(s["reason"].endswith(install) for s in report["skipped"])
    assert {m["model"] for m in report["models"]} == {"stocks/BTCEUR/lightgbm", "stocks/ETHEUR"}


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


def test_seed_002_without_feature_names_names_them_by_position(store, tmp_path):
    # Given SPY's ensemble fitted on bare arrays: no feature names anywhere
    write_seed_002(tmp_path, unnamed=True)
    # When imported / Then SPY is published with feature_0 ... feature_11, said in one note
    result = cli("--store", str(store), "import-seed", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert (
        "note: SPY_d1_20250121.pkl: no feature names (the seed lists none and the estimator "
        "was fitted on arrays): named feature_0 ... feature_11; requests send them by those "
        "names or as a list of 12 values in training order (--features FILE names them)"
    ) in result.stdout.splitlines()
    meta, _ = read_metadata(LocalStore(store), "stocks/SPY/d1", "1.0.0")
    assert meta.feature_names == [f"feature_{i}" for i in range(12)]
    # And it answers like the pickle, by those names or by a list in that order
    api = serving(store, tmp_path)
    row = request_rows(1, len(FEATURES), missing=False)[0]
    want = ensemble_predict(originals().ensembles["SPY_d1_20250121.pkl"], row.reshape(1, -1))
    by_name = ask(api, "SPY", meta.feature_names, row)
    by_list = dict(api.handle({"ticker": "SPY", "features": row.tolist()}, None))
    for answer in (by_name, by_list):
        assert answer["model"]["name"] == "stocks/SPY/d1"
        assert np.allclose(list(answer["probabilities"].values()), want[0], atol=1e-12)
    # When imported again with --features / Then SPY gets a version named by the file
    names = tmp_path / "features.json"
    names.write_text(json.dumps(list(FEATURES)))
    code, again = import_seed(store, str(tmp_path), "--features", str(names))
    assert (code, again["skipped"]) == (0, [])
    assert {m["model"]: (m["status"], m["version"]) for m in again["models"]} == {
        "stocks/AAPL/d1": ("unchanged", "1.0.1"),
        "stocks/AAPL/h1": ("unchanged", "1.0.0"),
        "stocks/SPY/d1": ("published", "1.0.1"),
    }
    answer = ask(serving(store, tmp_path / "2"), "SPY", list(FEATURES), row)
    assert (answer["model"]["version"], answer["signal"]) == ("1.0.1", "direction")
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
    assert text.stdout.splitlines()[-4:] == [
        "would route AAPL direction d1: (none) → stocks/AAPL/d1",
        "would route AAPL direction: (none) → stocks/AAPL/d1",
        "would route AAPL direction h1: (none) → stocks/AAPL/h1",
        f"dry run: would publish 3; 0 unchanged, 0 skipped; routes: 3 added; nothing written "
        f"to {store}",
    ]


def test_corrupted_pickle_is_skipped_and_the_rest_imported(store, tmp_path):
    folder = write_seed_002(tmp_path)
    (folder / "QQQ_d1_20250121.pkl").write_bytes(b"\x80\x04 truncated")
    result = cli("--store", str(store), "import-seed", str(folder))
    assert result.exit_code == 2
    assert "skipped QQQ_d1_20250121.pkl: cannot unpickle " in result.stdout
    assert result.stdout.splitlines()[-1].startswith(
        f"published 3; 0 unchanged, 1 skipped; routes: 3 added; registry revision 1 in {store} ("
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
    # The seed's training line is kept as it was, in time order with tickerserve's own lines
    assert [r.get("event") for r in training] == [None, "published", "published"]
    seed_line = json.loads((tmp_path / "models/training_history.jsonl").read_text())
    assert training[0] == seed_line
    # And the seed's own analysis snippets (its models/README.md) run on the store's history
    models = tmp_path / "analysis/models"
    models.mkdir(parents=True)
    history = store_.get(TRAINING_HISTORY_KEY)
    assert history is not None
    (models / "training_history.jsonl").write_bytes(history.data)
    printed = run_snippet(
        tmp_path / "analysis",
        """
import json

with open('models/training_history.jsonl') as f:
    runs = [json.loads(line) for line in f]

# Compare first and last run
print(f"First run RMSE: {runs[0]['model_a']['validation_rmse']:.6f}")
print(f"Latest run RMSE: {runs[-1]['model_a']['validation_rmse']:.6f}")
print(f"Change: {((runs[-1]['model_a']['validation_rmse'] / runs[0]['model_a']['validation_rmse']) - 1) * 100:.2f}%")
model_a_rmse = [r['model_a']['validation_rmse'] for r in runs]
best_run = min(runs, key=lambda x: x['model_a']['validation_rmse'])
print(f"Best Model A RMSE: {best_run['model_a']['validation_rmse']}")
""",  # noqa: E501 (the seed's snippet, as written)
    )
    assert printed.splitlines() == [
        "First run RMSE: 0.011402",
        "Latest run RMSE: 0.011402",
        "Change: 0.00%",
        "Best Model A RMSE: 0.011402",
    ]
    # And both answer what seed 003's own code computes from each pickle
    api = serving(store, tmp_path)
    stacks = originals().stacks
    for row in request_rows(10, len(VOL_FEATURES)):
        for extra, name in (({}, "model_90pct.pkl"), ({"alias": "challenger"}, "model_100pct.pkl")):
            answer = ask(api, "SPY", VOL_FEATURES, row, **extra)
            assert set(answer) == {"request_id", "ticker", "signal", "model", "prediction"}
            assert answer["signal"] == "volatility"  # seed 003's default signal
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


# -- routes are never moved silently ---------------------------------------------------------
@pytest.fixture
def live(store: Path, tmp_path: Path) -> Path:
    """A store serving AAPL, NVDA and SPY from stocks/universal (the README's example)."""
    m = seed_models()
    universal = seed_folder(tmp_path / "out/universal", m.universal, m.universal_encoder)
    published = cli(
        "--store", str(store), "publish", str(universal), "--model", "stocks/universal",
        "--alias", "production", "--route", "AAPL", "--route", "NVDA", "--route", "SPY",
    )  # fmt: skip
    assert published.exit_code == 0, published.stderr
    return store


def test_an_import_on_its_own_signal_sits_beside_live_routes(live, tmp_path):
    # Given AAPL served by stocks/universal, and seed 002's trained_models/ for AAPL
    folder = write_seed_002(tmp_path)
    # When imported as it comes (seed 002's signal is direction)
    result = cli("--store", str(live), "import-seed", str(folder))
    # Then AAPL gets its direction models beside its strategy model, which still answers
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-4:-1] == [
        "route AAPL direction d1: (none) → stocks/AAPL/d1",
        "route AAPL direction: (none) → stocks/AAPL/d1",
        "route AAPL direction h1: (none) → stocks/AAPL/h1",
    ]
    reg = registry(live)
    assert reg.route("AAPL").model == "stocks/universal"
    assert reg.route("AAPL", signal="direction", timeframe="h1").model == "stocks/AAPL/h1"
    api = serving(live, tmp_path)
    row = request_rows(1, len(FEATURES), missing=False)[0]
    assert ask(api, "AAPL", list(FEATURES), row)["model"]["name"] == "stocks/universal"
    answer = ask(api, "AAPL", list(FEATURES), row, signal="direction")
    assert (answer["signal"], answer["model"]["name"]) == ("direction", "stocks/AAPL/d1")


def test_an_import_never_moves_a_live_route_and_a_rerun_leaves_the_registry_alone(live, tmp_path):
    # Given AAPL served by stocks/universal on its strategy signal
    folder = write_seed_002(tmp_path)
    revision = registry(live).revision
    # When seed 002 is imported onto that same signal
    result = cli("--store", str(live), "import-seed", str(folder), "--signal", "strategy")
    # Then AAPL keeps its model, and the summary says so and how to move it; the timeframes
    # AAPL had no route for are added
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-4:-1] == [
        "route AAPL strategy d1: (none) → stocks/AAPL/d1",
        "AAPL strategy keeps stocks/universal; --take-routes moves it to stocks/AAPL/d1",
        "route AAPL strategy h1: (none) → stocks/AAPL/h1",
    ]
    assert lines[-1].startswith(
        f"published 3; 0 unchanged, 0 skipped; routes: 2 added, 1 kept; registry revision "
        f"{revision + 1} in {live} ("
    )
    assert registry(live).route("AAPL").model == "stocks/universal"
    # When the same tree is imported again (a nightly job would)
    rerun = cli("--store", str(live), "import-seed", str(folder), "--signal", "strategy")
    # Then nothing is published, the route stays, and the registry keeps its revision
    assert rerun.exit_code == 0, rerun.stderr
    assert rerun.stdout.splitlines()[-2] == (
        "AAPL strategy keeps stocks/universal; --take-routes moves it to stocks/AAPL/d1"
    )
    assert registry(live).revision == revision + 1
    assert registry(live).route("AAPL").model == "stocks/universal"
    # When a dry run asks what --take-routes would do, Then it lists old → new, writes nothing
    dry = cli("--store", str(live), "import-seed", str(folder), "--signal", "strategy",
              "--take-routes", "--dry-run")  # fmt: skip
    assert "would route AAPL strategy: stocks/universal → stocks/AAPL/d1" in dry.stdout
    assert registry(live).route("AAPL").model == "stocks/universal"
    # When imported with --take-routes, Then the route moves and the summary says from where
    code, taken = import_seed(live, str(folder), "--signal", "strategy", "--take-routes")
    assert code == 0
    [moved] = [r for r in taken["routes"] if r["action"] == "move"]
    assert (moved["ticker"], moved["old"], moved["model"]) == (
        "AAPL", "stocks/universal", "stocks/AAPL/d1",
    )  # fmt: skip
    assert taken["revision"] == revision + 2
    assert registry(live).route("AAPL").model == "stocks/AAPL/d1"
    # When the user routes AAPL back by hand and the nightly import runs again
    assert cli("--store", str(live), "route", "AAPL", "-m", "stocks/universal").exit_code == 0
    back = registry(live).revision
    code, report = import_seed(live, str(folder), "--signal", "strategy")
    # Then AAPL stays where the user put it, and the registry is untouched
    assert (code, report["revision"]) == (0, back)
    assert registry(live).revision == back
    assert registry(live).route("AAPL").model == "stocks/universal"


def test_seed_002_rollback_right_after_an_import_goes_to_the_previous_date(store, tmp_path):
    # Given trained_models/ with AAPL d1 of 2025-01-14 and 2025-01-21
    folder = write_seed_002(tmp_path)
    assert import_seed(store, str(folder))[0] == 0
    entry = registry(store).models["stocks/AAPL/d1"]
    assert entry.aliases["production"].version == "1.0.1"  # 20250121
    assert [t.version for t in entry.history["production"]] == ["1.0.0"]  # 20250114
    # When rolled back right after the import
    rolled = cli("--store", str(store), "rollback", "stocks/AAPL/d1")
    # Then production is the previous date's version
    assert rolled.exit_code == 0, rolled.stderr
    assert rolled.stdout.startswith("stocks/AAPL/d1 production: 1.0.1 -> 1.0.0")
    meta, _ = read_metadata(LocalStore(store), "stocks/AAPL/d1", "1.0.0")
    assert meta.source["date"] == "20250114"


# -- seed 000's own bucket ---------------------------------------------------------------------
def upload_like_seed_000(storage: Path, bucket) -> dict[str, bytes]:
    """What seed 000's scripts/upload_models_to_s3.py does: every file of models_storage/ at
    the same relative key, its registry at metadata/asset_registry.json."""
    uploaded = {}
    for file in sorted(p for p in storage.rglob("*") if p.is_file()):
        key = file.relative_to(storage).as_posix()
        bucket.put(key, file.read_bytes())
        uploaded[key] = file.read_bytes()
    return uploaded


def test_seed_000_s_own_bucket_answers_one_clear_line_until_import_seed_converts_it(
    s3_store, tmp_path
):
    # Given a bucket filled by seed 000's upload script (its registry at tickerserve's key)
    uploaded = upload_like_seed_000(write_seed_000(tmp_path), s3_store)
    bucket = ["--bucket", s3_store.bucket]
    command = f"tickerserve --bucket {s3_store.bucket} import-seed"
    # When listing, Then one line names the command that converts it
    listed = cli(*bucket, "list")
    assert listed.exit_code == 2
    assert listed.stderr.count("\n") == 1
    assert listed.stderr.startswith(
        f"error: the registry in s3://{s3_store.bucket} is seed 000's own asset_registry.json"
    )
    assert f"run `{command}` once" in listed.stderr
    # And sync from the seed's own folder says the same of that folder
    synced = cli(*bucket, "sync", str(tmp_path / "models_storage"))
    assert synced.exit_code == 2
    assert f"run `tickerserve --store {tmp_path / 'models_storage'} import-seed` once" in (
        synced.stderr
    )
    # And the function answers 503 registry_needs_import, naming the command
    api = Api(ModelService(Settings(bucket=s3_store.bucket, cache_dir=str(tmp_path / "c"))))
    answer = api.handle({"ticker": "SMH", "features": [0.0] * 12}, None)
    assert answer["error"]["code"] == "registry_needs_import"
    assert command in answer["error"]["message"]
    health = api.handle({"action": "health"}, None)
    assert (health["status"], health["error"]["code"]) == ("unavailable", "registry_needs_import")
    # When import-seed runs with no path
    code, report = import_seed_to(bucket)
    # Then SMH's production folder is published as a version, where it is
    assert (code, report["in_place"], report["root"]) == (0, True, f"s3://{s3_store.bucket}")
    assert versions(report) == {("etfs/SMH", "etfs/SMH/production"): ("published", "1.0.0")}
    assert report["seed_registry_kept_as"] == "metadata/asset_registry.seed-000.json"
    # And the seed's files stay, its registry kept beside tickerserve's
    for key, data in uploaded.items():
        if key != REGISTRY:
            assert s3_store.get(key).data == data
    kept = s3_store.get("metadata/asset_registry.seed-000.json").data
    assert kept == uploaded[REGISTRY]
    reg = read_registry(s3_store, REGISTRY).registry
    assert (reg.revision, reg.route("SMH").model) == (1, "etfs/SMH")
    # And SMH answers what the seed's pickles answer
    api = Api(ModelService(Settings(bucket=s3_store.bucket, cache_dir=str(tmp_path / "c2"))))
    m = seed_models()
    for row in request_rows(5, len(FEATURES)):
        label, expected = original_prediction(m.smh, m.smh_encoder, row)
        answer = ask(api, "SMH", list(FEATURES), row)
        assert answer["prediction"] == label
        assert answer["probabilities"] == pytest.approx(expected, abs=1e-12)
    assert cli(*bucket, "list").exit_code == 0
    # When run again (nothing changed), Then nothing is written
    code, again = import_seed_to(bucket)
    assert (code, again["revision"], again["seed_registry_kept_as"]) == (0, 1, None)
    assert {m["status"] for m in again["models"]} == {"unchanged"}


def import_seed_to(target: list[str], *args: str) -> tuple[int, dict[str, Any]]:
    result = cli(*target, "import-seed", *args, "--json")
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_seed_000_s_own_folder_is_converted_in_place_too(tmp_path):
    # Given models_storage/ as seed 000 keeps it, served as a --store folder
    storage = write_seed_000(tmp_path)
    seed_registry = (storage / REGISTRY).read_bytes()
    served = cli("--store", str(storage), "list")
    assert f"run `tickerserve --store {storage} import-seed` once" in served.stderr
    # When import-seed is pointed at the folder it serves
    code, report = import_seed_to(["--store", str(storage)], str(storage))
    # Then it is converted where it is
    assert (code, report["in_place"]) == (0, True)
    assert (storage / "metadata/asset_registry.seed-000.json").read_bytes() == seed_registry
    assert (storage / "etfs/SMH/production/lightgbm_clean_model.pkl").is_file()
    assert registry(storage).route("SMH").model == "etfs/SMH"
    assert (storage / "etfs/SMH/versions/1.0.0/metadata.json").is_file()


def test_seed_000_phase_3_universal_copy_without_names_imports_by_position(store, tmp_path):
    # Given Phase 3's copy: `cp models/universal_stock_model.pkl
    # models_storage/stocks/universal/production/lightgbm_model.pkl`, a classifier fitted on
    # bare arrays, and nothing else in that folder
    storage = write_seed_000(tmp_path)
    m = seed_models()
    joblib.dump(m.qqq, storage / "stocks/universal/production/lightgbm_model.pkl")
    # When imported
    code, report = import_seed(store, str(storage), "--stocks", "AAPL")
    # Then the universal model is published with positional names, and AAPL answers by them
    assert code == 0, report["skipped"]
    [universal] = [x for x in report["models"] if x["model"] == "stocks/universal"]
    assert universal["status"] == "published"
    assert any("named feature_0 ... feature_5" in w for w in universal["warnings"])
    row = request_rows(1, len(QQQ_SELECTED), missing=False)[0]
    answer = ask(serving(store, tmp_path), "AAPL", [f"feature_{i}" for i in range(6)], row)
    want = quiet(lambda: m.qqq.predict_proba(row.reshape(1, -1)))[0]
    assert np.allclose(list(answer["probabilities"].values()), want, atol=1e-12)


def test_one_extra_installs_everything_any_seed_import_needs():
    # Given the package's extras, as pip reads them (a self-reference pulls another extra in)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        out = set()
        for requirement in requirements:
            name = re.split(r"[<>=;\[ ]", requirement, maxsplit=1)[0].strip()
            if name == "tickerserve":
                for extra in requirement[requirement.index("[") + 1 : requirement.index("]")]\
                        .split(","):  # fmt: skip
                    out |= names(extras[extra.strip()])
            else:
                out.add(name)
        return out

    # When the seeds extra is installed, Then every library a seed's pickles need comes along
    installed = names(extras["seeds"]) | names(project["dependencies"])
    for needed in ("scikit-learn", "joblib", "lightgbm", "pyarrow"):
        assert needed in installed
    assert {"xgboost", "xgboost-cpu"} <= installed  # the CPU build, plain xgboost on macOS
    # And the README's Bring your models says to install it
    assert 'pip install "tickerserve[seeds]"' in (ROOT / "README.md").read_text()


def test_seed_001_crypto_symbols_keep_their_configs_and_feature_importance(store, tmp_path):
    # Given seed 001's run folders of BTCEUR and ETHEUR (crypto pairs)
    models = write_seed_001(tmp_path)
    # When imported as crypto
    code, report = import_seed(store, str(models), "--asset-class", "crypto")
    # Then they are filed under crypto/ and served, on the lightgbm signal
    assert code == 0
    assert {m["model"] for m in report["models"]} == {
        "crypto/BTCEUR/lightgbm",
        "crypto/BTCEUR/gru",
        "crypto/BTCEUR/ppo",
        "crypto/ETHEUR",
    }
    reg = registry(store)
    route = reg.route("BTCEUR")
    assert (route.model, route.asset_class, route.signal) == (
        "crypto/BTCEUR/lightgbm",
        "crypto",
        "lightgbm",
    )
    row = request_rows(1, len(FEATURES), missing=False)[0]
    answer = ask(serving(store, tmp_path), "BTCEUR", list(FEATURES), row)
    assert (answer["model"]["name"], answer["signal"]) == ("crypto/BTCEUR/lightgbm", "lightgbm")
    # And each run's config and training_config are kept in its version's metadata and shown
    meta, _ = read_metadata(LocalStore(store), "crypto/BTCEUR/lightgbm", "1.0.1")
    assert (meta.source["config"], meta.source["training_config"]) == (
        {"num_leaves": 7}, {"epochs": 1},
    )  # fmt: skip
    shown = cli("--store", str(store), "show", "crypto/BTCEUR/lightgbm", "--importance")
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert 'config: {"num_leaves": 7}' in lines
    assert 'training_config: {"epochs": 1}' in lines
    # And its feature_importance.parquet is kept beside the version, shown by --importance
    clf = originals().runs["20240816_143502"]
    names = [FEATURES[i] for i in SELECTED]
    ranked = sorted(zip(names, clf.feature_importances_, strict=True), key=lambda x: -x[1])
    at = lines.index("importance:")
    assert lines[at + 1 : at + 1 + len(names)] == [
        f"  feature={name}  importance={value}" for name, value in ranked
    ]
    assert "feature_importance.parquet" in meta.artifacts
    # And a re-import changes nothing
    code, again = import_seed(store, str(models), "--asset-class", "crypto")
    assert again["revision"] == report["revision"]


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
