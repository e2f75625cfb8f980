"""``publish`` takes every family the seeds bring from a folder or one pickle file: XGBoost and
scikit-learn pickles, seed 002's and seed 003's dicts; each checked on probe rows and served
answering what the original answers."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from tests.cli_support import cli, cli_json
from tests.seed_layouts import VOL_FEATURES, ensemble_predict, originals, stack_predict
from tickerserve.http.api import Api
from tickerserve.publishing.demo import FEATURES
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store")


def publish(store: str, src: Path, model: str, *extra: str) -> dict[str, Any]:
    return cli_json("--store", store, "publish", str(src), "--model", model, "-a", "production",
                    *extra)  # fmt: skip


def answer(store: str, tmp_path: Path, model: str, names: list[str], row: np.ndarray) -> Any:
    api = Api(ModelService(Settings(store_path=store, cache_dir=str(tmp_path / "cache"))))
    route = cli("--store", store, "route", "ZZZ", "--model", model, "--asset-class", "stock")
    assert route.exit_code == 0, route.stderr
    body = {"ticker": "ZZZ", "features": dict(zip(names, map(float, row), strict=True))}
    return api.handle(body, None)


def rows(n: int, width: int) -> np.ndarray:
    return np.random.default_rng(8).normal(scale=1.5, size=(n, width))


def test_xgboost_pickle_in_a_folder(store, tmp_path):
    # Given a folder with a joblib XGBClassifier (fitted with feature names)
    clf = originals().registry["1.0.1"]
    folder = tmp_path / "xgb"
    folder.mkdir()
    joblib.dump(clf, folder / "model.joblib")
    # When published / Then it is a Treelite member checked on probe rows
    out = publish(store, folder, "stocks/universal")
    assert out["source"]["estimator"] == "XGBClassifier"
    assert out["source"]["probe_rows"] == 256 and out["source"]["max_abs_diff"] <= 1e-7
    row = rows(1, len(FEATURES))[0]
    got = answer(store, tmp_path, "stocks/universal", list(FEATURES), row)
    want = clf.predict_proba(row.reshape(1, -1))[0]
    assert np.allclose(list(got["probabilities"].values()), want, atol=1e-7)


def test_sklearn_pickle_without_names_needs_features_file(store, tmp_path):
    # Given a pickled RandomForestRegressor fitted on a bare array
    x = rows(120, 4)
    forest = RandomForestRegressor(n_estimators=6, max_depth=4, random_state=0, n_jobs=1)
    forest.fit(x, x[:, 0] - x[:, 1])
    file = tmp_path / "forest.pkl"
    file.write_bytes(pickle.dumps(forest))
    # When published without names / Then refused, saying how to name the features
    refused = cli("--store", store, "publish", str(file), "--model", "stocks/VOL")
    assert refused.exit_code == 2
    assert "give --features FILE (the 4 names in training order" in refused.stderr
    # When published with --features / Then it answers by those names, like the forest
    names = tmp_path / "names.json"
    names.write_text(json.dumps(["a", "b", "c", "d"]))
    out = publish(store, file, "stocks/VOL", "--features", str(names))
    assert out["source"]["estimator"] == "RandomForestRegressor"
    row = rows(2, 4)[1]
    got = answer(store, tmp_path, "stocks/VOL", ["a", "b", "c", "d"], row)
    assert got["prediction"] == pytest.approx(forest.predict(row.reshape(1, -1))[0], abs=1e-12)


def test_seed_002_dict_file(store, tmp_path):
    # Given one of seed 002's dated pickles
    artifact = originals().ensembles["AAPL_h1_20250121.pkl"]
    file = tmp_path / "AAPL_h1_20250121.pkl"
    file.write_bytes(pickle.dumps(artifact))
    # When published / Then a weighted ensemble with the seed's metrics and agreement
    out = publish(store, file, "stocks/AAPL/h1")
    assert out["source"]["estimator"] == "RandomForestClassifier+GradientBoostingClassifier"
    assert out["metrics"]["ensemble_accuracy"] == 0.601
    row = rows(1, len(FEATURES))[0]
    got = answer(store, tmp_path, "stocks/AAPL/h1", list(FEATURES), row)
    want = ensemble_predict(artifact, row.reshape(1, -1))[0]
    assert np.allclose(list(got["probabilities"].values()), want, atol=1e-12)
    assert "agreement" in got


def test_seed_003_dict_in_a_folder(store, tmp_path):
    # Given a folder holding seed 003's stack dict as model.pkl
    artifact = originals().stacks["model_90pct.pkl"]
    folder = tmp_path / "vol"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(artifact))
    # When published (text output) / Then a regression stack, checked on probe rows
    result = cli("--store", store, "publish", str(folder), "--model", "etfs/SPY/vol", "-a",
                 "production")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "(converted XGBRegressor+LGBMRegressor+Ridge, checked on 256 probe rows" in (
        result.stdout
    )
    assert "8 features, regression)" in result.stdout
    row = rows(1, len(VOL_FEATURES))[0]
    got = answer(store, tmp_path, "etfs/SPY/vol", VOL_FEATURES, row)
    want = stack_predict(artifact, row.reshape(1, -1))[0]
    assert got["prediction"] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_torch_folder_is_refused_with_the_reason(store, tmp_path):
    folder = tmp_path / "gru"
    folder.mkdir()
    (folder / "model.pth").write_bytes(b"PK\x03\x04")
    (folder / "preprocessor.pkl").write_bytes(pickle.dumps({"mean": 0}))
    result = cli("--store", store, "publish", str(folder), "--model", "stocks/BTC")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {folder}: model.pth is a PyTorch model (torch.save, e.g. a GRU): not "
        "imported, because the zip-packaged prediction function does not serve torch models "
        "(PyTorch alone is larger than Lambda's 250 MB unzipped limit)\n",
    )
