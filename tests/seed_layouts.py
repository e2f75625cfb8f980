"""The five seed layouts, written as their documents show them (``/shared/seeds``): the same
file and folder names, the same dict keys, the same SQLite table. Estimators are small and
trained once per process on generated data; ``Originals`` keeps them so tests can ask the
originals what the imported models must answer.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import sqlite3
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost as xgb
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import Ridge

from tests.network_support import FEATURES as NETWORK_FEATURES
from tests.network_support import networks, write_gru_run, write_ppo_run
from tests.seed_support import seed_models
from tickerserve.publishing.demo import FEATURES

TREES = 8
SELECTED = [0, 2, 5, 8, 11]  # seed 001: the run's selected feature indices
VOL_FEATURES = ["spy_ret_1d", "spy_ret_5d", "spy_ret_20d", "vix_level", "vix_change_5d",
                "realized_vol_10d", "realized_vol_20d", "term_spread"]  # fmt: skip
SIGNALS = np.array(["bearish", "bullish", "neutral"])


def _data(seed: int, n_features: int, rows: int = 240) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, n_features))
    logits = x @ rng.normal(size=(n_features, 3))
    return x, (logits + rng.normal(scale=0.5, size=logits.shape)).argmax(axis=1)


def _value(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.01 * (x[:, 0] - 0.5 * x[:, 1] + np.sin(x[:, 2])) + rng.normal(scale=0.002, size=len(x))


def quiet(fn: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


# -- the originals ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Originals:
    """The estimators behind every layout, by what the tests call them."""

    runs: dict[str, lgb.LGBMClassifier]  # 001 BTCEUR runs by run id (5 selected features)
    eth_runs: dict[str, lgb.LGBMRegressor]  # 001 ETHEUR runs (all 12 features)
    ensembles: dict[str, dict[str, Any]]  # 002 file name -> the pickled dict
    stacks: dict[str, dict[str, Any]]  # 003 file name -> the pickled dict
    registry: dict[str, xgb.XGBClassifier]  # 004 version -> estimator


@functools.cache
def originals() -> Originals:
    names = [FEATURES[i] for i in SELECTED]
    runs = {}
    for i, run_id in enumerate(("20240815_102314", "20240816_143502")):
        x, y = _data(20 + i, len(SELECTED))
        model = lgb.LGBMClassifier(n_estimators=TREES, num_leaves=7, verbose=-1, n_jobs=1)
        # The seed's trainer fits on X.iloc[:, selected_features]: the subset's names.
        runs[run_id] = model.fit(x, y, feature_name=names)
    eth_runs = {}
    for i, run_id in enumerate(("20240810_090000", "20240812_090000")):
        x, _ = _data(30 + i, len(FEATURES))
        model = lgb.LGBMRegressor(n_estimators=TREES, num_leaves=7, verbose=-1, n_jobs=1)
        eth_runs[run_id] = model.fit(x, _value(x, i), feature_name=list(FEATURES))
    ensembles = {
        name: _ensemble(seed, named)
        for seed, (name, named) in enumerate(
            [
                ("AAPL_d1_20250114.pkl", True),
                ("AAPL_d1_20250121.pkl", True),
                ("AAPL_h1_20250121.pkl", True),
                ("SPY_d1_20250121.pkl", False),
            ]
        )
    }
    stacks = {
        name: _stack(seed) for seed, name in enumerate(("model_90pct.pkl", "model_100pct.pkl"))
    }
    registry = {}
    for i, version in enumerate(("1.0.0", "1.0.1", "2.0.0")):
        x, y = _data(50 + i, len(FEATURES))
        clf = xgb.XGBClassifier(n_estimators=TREES, max_depth=3, n_jobs=1, random_state=i)
        clf.fit(x, y)
        clf.get_booster().feature_names = list(FEATURES)  # what a DataFrame fit records
        registry[version] = clf
    return Originals(runs, eth_runs, ensembles, stacks, registry)


def _ensemble(seed: int, named: bool) -> dict[str, Any]:
    """Seed 002's artifact: RandomForest + GradientBoosting classifiers and their weights."""
    x, y = _data(40 + seed, len(FEATURES))
    labels = SIGNALS[y]
    rf = RandomForestClassifier(n_estimators=TREES, max_depth=5, n_jobs=1, random_state=seed)
    gb = GradientBoostingClassifier(n_estimators=TREES, max_depth=2, random_state=seed)
    rf.fit(x, labels)
    gb.fit(x, labels)
    if named:  # fitted on a DataFrame: scikit-learn keeps the column names
        for model in (rf, gb):
            model.feature_names_in_ = np.asarray(FEATURES, dtype=object)
    return {
        "symbol": "AAPL",
        "timeframe": "d1",
        "timestamp": "20250121",
        "models": {"rf": rf, "gb": gb},
        "weights": {"rf": 0.473, "gb": 0.527},
        "ensemble_accuracy": 0.601,
        "performances": {
            "rf": {
                "train_accuracy": 0.823,
                "valid_accuracy": 0.587,
                "precision": 0.582,
                "recall": 0.587,
                "f1": 0.575,
            },
            "gb": {
                "train_accuracy": 0.794,
                "valid_accuracy": 0.592,
                "precision": 0.589,
                "recall": 0.592,
                "f1": 0.582,
            },
        },
        "model_predictions_sample": {
            "rf": [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]],
            "gb": [[0.6, 0.3, 0.1], [0.7, 0.2, 0.1]],
        },
    }


def _stack(seed: int) -> dict[str, Any]:
    """Seed 003's artifact: XGBoost + LightGBM regressors under a Ridge meta-learner."""
    rng = np.random.default_rng(60 + seed)
    x = rng.normal(size=(300, len(VOL_FEATURES)))
    y = _value(x, seed)
    booster = xgb.XGBRegressor(n_estimators=TREES, max_depth=3, n_jobs=1, random_state=seed)
    booster.fit(x, y)
    light = lgb.LGBMRegressor(n_estimators=TREES, num_leaves=7, verbose=-1, n_jobs=1)
    light.fit(x, y)
    inputs = np.column_stack([booster.predict(x), quiet(lambda: light.predict(x))])
    meta = Ridge(alpha=1.0).fit(inputs, y)
    return {"xgb_model": booster, "lgbm_model": light, "meta_model": meta,
            "feature_cols": list(VOL_FEATURES)}  # fmt: skip


def stack_predict(artifact: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Seed 003's own prediction code."""
    x_meta = np.column_stack(
        [artifact["xgb_model"].predict(x), quiet(lambda: artifact["lgbm_model"].predict(x))]
    )
    return np.asarray(artifact["meta_model"].predict(x_meta))


def ensemble_predict(artifact: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Seed 002: the weighted average of the pickled members' probabilities."""
    weights = artifact["weights"]
    total = sum(weights[k] for k in artifact["models"])
    return sum(
        weights[k] / total * quiet(lambda m=m: m.predict_proba(x))
        for k, m in artifact["models"].items()
    )


def garbled_lightgbm_pickle(data: bytes) -> bytes:
    """A LightGBM pickle whose first leaf values are letters (same length, so the pickle
    stays readable): unpickling it makes LightGBM abort the process from C++."""
    start = data.index(b"\nleaf_value=") + len(b"\nleaf_value=")
    end = data.index(b"\n", start)
    return data[:start] + b"x" * (end - start) + data[end:]


# -- writers ----------------------------------------------------------------------------------
def _json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


def _pickle(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(value, handle)


def write_seed_000(root: Path) -> Path:
    """``models_storage/`` exactly as seed 000's document draws it."""
    m = seed_models()
    storage = root / "models_storage"
    production = storage / "etfs/SMH/production"
    _pickle(production / "lightgbm_clean_model.pkl", m.smh)
    _pickle(production / "label_encoder_clean.pkl", m.smh_encoder)
    _json(production / "feature_names_clean.json", list(FEATURES))
    _json(
        production / "metadata.json",
        {"ticker": "SMH", "model_type": "lightgbm", "accuracy": 0.8421,
         "training_date": "2024-12-06T10:00:00", "n_features": len(FEATURES)},
    )  # fmt: skip
    (storage / "stocks/universal/production").mkdir(parents=True)  # "ready for universal model"
    (storage / "shared").mkdir()
    _json(
        storage / "metadata/asset_registry.json",
        {"etfs": {"SMH": {"model_path": "etfs/SMH/production/"}}, "stocks": {}},
    )
    return storage


def write_seed_001(root: Path, *, pointer: bool = False) -> Path:
    """``models/{type}/{symbol}/{run_id}/``: LightGBM runs of BTCEUR (latest: a symlink, or
    ``latest_pointer.txt`` with ``pointer``), ETHEUR runs whose pointer names the older run,
    GRU and PPO runs, and a walk-forward best artifact."""
    o = originals()
    models = root / "models"
    names = [FEATURES[i] for i in SELECTED]
    for run_id, clf in o.runs.items():
        run = models / "lightgbm/BTCEUR" / run_id
        run.mkdir(parents=True)
        created = f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:{run_id[11:13]}:00"
        joblib.dump(_run_dict(clf, names, "BTCEUR", created), run / "model.pkl")
        _json(run / "metadata.json", _run_metadata(run_id, "BTCEUR", created, SELECTED))
        importance = pa.table({"feature": names, "importance": clf.feature_importances_})
        pq.write_table(importance, run / "feature_importance.parquet")
    _latest(models / "lightgbm/BTCEUR", "20240816_143502", pointer=pointer)
    for run_id, reg in o.eth_runs.items():
        run = models / "lightgbm/ETHEUR" / run_id
        run.mkdir(parents=True)
        created = f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T09:00:00"
        joblib.dump(_run_dict(reg, list(FEATURES), "ETHEUR", created, selected=None),
                    run / "model.pkl")  # fmt: skip
        _json(run / "metadata.json", _run_metadata(run_id, "ETHEUR", created, None))
    # Written on Windows: the pointer holds the full path, and names the older run.
    (models / "lightgbm/ETHEUR/latest_pointer.txt").write_text(
        "C:\\Bot_kilo\\models\\lightgbm\\ETHEUR\\20240810_090000"
    )
    # A GRU and a PPO policy, trained (once per session) and saved as the seed saves its runs.
    trained = networks()
    gru = write_gru_run(models / "gru/BTCEUR/20240816_142301", trained["gru"].original,
                        trained["gru"].extra, feature_names=NETWORK_FEATURES,
                        selected=[0, 2, 5, 8, 11])  # fmt: skip
    _latest(models / "gru/BTCEUR", gru.name, pointer=pointer)
    ppo = write_ppo_run(models / "ppo/BTCEUR/20240816_144023", trained["ppo"].original,
                        trained["ppo"].extra,
                        action_space_info={"type": "discrete", "n": 3,
                                           "actions": ["hold", "buy", "sell"]})  # fmt: skip
    _latest(models / "ppo/BTCEUR", ppo.name, pointer=pointer)
    best = models / "metadata"
    best.mkdir()
    # The walk-forward best is the older BTCEUR run.
    (best / "best_wf_lightgbm_BTCEUR.pkl").write_bytes(
        (models / "lightgbm/BTCEUR/20240815_102314/model.pkl").read_bytes()
    )
    # ... and the GRU's walk-forward best is its (only) run's checkpoint.
    (best / "best_wf_gru_BTCEUR.pth").write_bytes((gru / "model.pth").read_bytes())
    return models


def _run_dict(
    model: Any, names: list[str], symbol: str, created: str, selected: list[int] | None = SELECTED
) -> dict[str, Any]:
    """What seed 001's LightGBM trainer joblib-dumps: ``feature_names`` is the selected subset."""
    return {
        "model": model,
        "feature_names": names,
        "selected_features": selected,
        "feature_count": len(FEATURES),
        "input_size_actual": len(names),
        "symbol": symbol,
        "created_at": created,
        "model_type": "lightgbm",
    }


def _run_metadata(
    run_id: str, symbol: str, created: str, selected: list[int] | None
) -> dict[str, Any]:
    """The run's metadata.json: the full feature list and the selected indices."""
    return {
        "model_type": "lightgbm",
        "run_id": run_id,
        "symbol": symbol,
        "created_at": created,
        "config": {"num_leaves": 7},
        "is_fitted": True,
        "feature_names": list(FEATURES),
        "selected_features": selected,
        "feature_count": len(FEATURES),
        "input_size_actual": len(selected) if selected else len(FEATURES),
        "training_config": {"epochs": 1},
    }


def _latest(symbol_dir: Path, run_id: str, *, pointer: bool) -> None:
    if pointer:
        (symbol_dir / "latest_pointer.txt").write_text(str(symbol_dir / run_id))
    else:
        os.symlink(run_id, symbol_dir / "latest")


def write_seed_002(root: Path, *, unnamed: bool = False) -> Path:
    """``trained_models/{SYMBOL}_{timeframe}_{YYYYMMDD}.pkl``; ``unnamed`` adds SPY's file,
    whose estimators were fitted on bare arrays (no feature names)."""
    folder = root / "trained_models"
    for name, artifact in originals().ensembles.items():
        if name.startswith("SPY") and not unnamed:
            continue
        symbol, timeframe, date = name.removesuffix(".pkl").split("_")
        _pickle(folder / name, {**artifact, "symbol": symbol, "timeframe": timeframe,
                                "timestamp": date})  # fmt: skip
    return folder


def write_seed_003(root: Path) -> Path:
    """``models/`` with Model A, Model B, the latest copy, baselines and histories."""
    folder = root / "models"
    stacks = originals().stacks
    for name, artifact in stacks.items():
        _pickle(folder / name, artifact)
    (folder / "latest_ensemble.pkl").write_bytes((folder / "model_90pct.pkl").read_bytes())
    _json(folder / "validation_baseline.json", VALIDATION_BASELINE)
    _json(folder / "dual_model_baseline.json", DUAL_BASELINE)
    training = {"timestamp": "2026-01-08T22:09:13.586357", "training_date": "2026-01-08",
                **{k: DUAL_BASELINE[k] for k in ("model_a", "model_b")}}  # fmt: skip
    (folder / "training_history.jsonl").write_text(json.dumps(training) + "\n")
    (folder / "monitoring_history.jsonl").write_text(json.dumps(MONITORING_LINE) + "\n")
    return folder


VALIDATION_BASELINE = {
    "validation_rmse": 0.011402,
    "validation_mae": 0.006778,
    "validation_r2": 0.434352,
    "timestamp": "2026-01-08T22:09:13.586357",
    "train_val_split": 0.9,
    "date_range": {"train_start": "2010-03-31", "train_end": "2024-05-31",
                   "val_start": "2024-06-03", "val_end": "2025-12-31"},
}  # fmt: skip
DUAL_BASELINE = {
    "timestamp": "2026-01-08T22:09:13.586357",
    "model_a": {"training_samples": 3566, "training_date_start": "2010-03-31",
                "training_date_end": "2024-05-31", "validation_rmse": 0.011402,
                "validation_mae": 0.006778, "validation_r2": 0.434352,
                "validation_samples": 397},
    "model_b": {"training_samples": 3933, "training_date_start": "2010-03-31",
                "training_date_end": "2025-11-17", "test_samples": 30,
                "test_date_start": "2025-11-18", "test_date_end": "2025-12-31",
                "test_rmse": 0.005797, "test_mae": 0.004760, "test_r2": -0.122300,
                "note": "Model B held out last 30 samples for testing"},
}  # fmt: skip
MONITORING_LINE = {
    "timestamp": "2026-01-08T22:03:39.666322",
    "monitoring_date": "2026-01-08",
    "model_a": {"training_samples": 3566, "training_date_start": "2010-03-31",
                "training_date_end": "2024-05-31"},
    "model_b": {"training_samples": 3933, "training_date_start": "2010-03-31",
                "training_date_end": "2025-11-17"},
    "test_window": {"n_samples": 30, "date_start": "2025-11-18", "date_end": "2025-12-31"},
    "drift": {"model_a_drift_pct": 0.0},
    "comparison": {"model_a_rmse": 0.005765, "model_b_rmse": 0.005768, "winner": "Model A",
                   "model_b_win_rate": 0.0},
    "recommendation": "USE MODEL A (90%)",
    "windows": [{"name": "All new data (30 samples)", "n_samples": 30,
                 "model_a_rmse": 0.005765, "model_b_rmse": 0.005768, "winner": "Model A"}],
}  # fmt: skip


REGISTRY_SCHEMA = """CREATE TABLE models (
    model_id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name TEXT NOT NULL,
    model_type TEXT NOT NULL,
    version TEXT NOT NULL,
    metrics TEXT NOT NULL,
    hyperparameters TEXT,
    file_path TEXT NOT NULL,
    created_at TEXT NOT NULL,
    description TEXT
)"""


def write_seed_004(root: Path) -> Path:
    """``data/models/registry/``: registry.db and ``XGBClassifier_{version}.pkl`` joblib files,
    the recorded paths from the machine that trained them (they do not exist here)."""
    folder = root / "data/models/registry"
    folder.mkdir(parents=True)
    trained_on = "/Users/srijan/Desktop/aksh/data/models/registry"
    rows = []
    for i, (version, clf) in enumerate(originals().registry.items()):
        file = f"XGBClassifier_{version.replace('.', '_')}.pkl"
        joblib.dump(clf, folder / file)
        rows.append(
            ("xgboost_tuned", "XGBClassifier", version,
             json.dumps({"f1": 0.75 + i / 100, "roc_auc": 0.85}),
             json.dumps({"max_depth": 3, "learning_rate": 0.3}), f"{trained_on}/{file}",
             f"2025-11-1{4 + i}T10:00:00", "Tuned XGBoost model")
        )  # fmt: skip
    with sqlite3.connect(folder / "registry.db") as db:
        db.execute(REGISTRY_SCHEMA)
        db.executemany(
            "INSERT INTO models (model_name, model_type, version, metrics, hyperparameters, "
            "file_path, created_at, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    db.close()
    return folder
