"""Seed-style model folders, as the seed project wrote them: pickled LGBMClassifier trained on
LabelEncoder-encoded strategy labels, ``label_encoder.pkl``, ``feature_names*.json``,
``metadata.json``, inside a ``models_storage/`` tree with ``metadata/asset_registry.json``.
"""

from __future__ import annotations

import functools
import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np
from sklearn.preprocessing import LabelEncoder

from tickerserve.publishing.demo import FEATURES, STRATEGIES, training_data

PARAMS: dict[str, Any] = {
    "n_estimators": 15,
    "num_leaves": 7,
    "min_child_samples": 5,
    "learning_rate": 0.2,
    "verbose": -1,
    "n_jobs": 1,
    "deterministic": True,
}
QQQ_SELECTED = [0, 1, 3, 5, 8, 11]
SEED_REGISTRY: dict[str, Any] = {
    "version": "2025-01-05",
    "etfs": {
        "SMH": {"model_path": "models_storage/etfs/SMH/production/model.joblib"},
        "QQQ": {"sector": "tech"},
        "XLF": None,
    },
    "stocks": ["AAPL", "MSFT"],
}


@dataclass(frozen=True)
class SeedModels:
    """Seed estimators trained once per process."""

    smh: lgb.LGBMClassifier  # 12 named features, 4 strategies
    smh_encoder: LabelEncoder
    qqq: lgb.LGBMClassifier  # trained on 6 of the 12 features (unnamed columns)
    qqq_encoder: LabelEncoder
    xlf: lgb.Booster  # a raw Booster, 3 strategies
    xlf_encoder: LabelEncoder
    universal: lgb.LGBMClassifier  # 5 strategies
    universal_encoder: LabelEncoder
    binary: lgb.LGBMClassifier  # 2 strategies


def _classifier(seed: int, n_features: int, n_classes: int, names: list[str] | None = None):
    x, y = training_data(seed, 300, n_features, n_classes)
    encoder = LabelEncoder().fit([STRATEGIES[i] for i in range(n_classes)])
    encoded = encoder.transform([STRATEGIES[i] for i in y])
    model = lgb.LGBMClassifier(random_state=seed, **PARAMS)
    if names is None:
        model.fit(x, encoded)
    else:
        model.fit(x, encoded, feature_name=names)
    return model, encoder


@functools.cache
def seed_models() -> SeedModels:
    smh, smh_encoder = _classifier(11, 12, 4, list(FEATURES))
    qqq, qqq_encoder = _classifier(12, len(QQQ_SELECTED), 4)
    x, y = training_data(13, 300, 12, 3)
    xlf_encoder = LabelEncoder().fit(STRATEGIES[:3])
    xlf = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1, "seed": 13},
        lgb.Dataset(x, label=y),
        num_boost_round=10,
    )
    universal, universal_encoder = _classifier(14, 12, 5, list(FEATURES))
    binary, _ = _classifier(15, 12, 2, list(FEATURES))
    return SeedModels(
        smh, smh_encoder, qqq, qqq_encoder, xlf, xlf_encoder, universal, universal_encoder, binary
    )


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def write_pickle(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(value, handle)


def seed_folder(
    path: Path, model: Any, encoder: LabelEncoder | None, *, joblib_dump: bool = True
) -> Path:
    """A seed production folder with all twelve feature names and a seed metadata.json."""
    path.mkdir(parents=True, exist_ok=True)
    if joblib_dump:
        joblib.dump(model, path / "model.joblib")
    else:
        write_pickle(path / "model.pkl", model)
    if encoder is not None:
        write_pickle(path / "label_encoder.pkl", encoder)
    write_json(path / "feature_names.json", list(FEATURES))
    write_json(
        path / "metadata.json",
        {
            "model_type": "LGBMClassifier",
            "accuracy": 0.61,
            "f1_macro": 0.55,
            "train_start": "2019-01-02",
            "train_end": "2024-12-31",
            "n_samples": 300,
            "training_date": "2025-01-05T10:00:00",
            "n_features": 12,
        },
    )
    return path


def write_seed_tree(root: Path, *, registry: Any = SEED_REGISTRY) -> Path:
    """``root/models_storage`` with SMH, QQQ, XLF, the universal model and a registry."""
    m = seed_models()
    storage = root / "models_storage"
    seed_folder(storage / "etfs/SMH/production", m.smh, m.smh_encoder)
    qqq = seed_folder(storage / "etfs/QQQ/production", m.qqq, m.qqq_encoder, joblib_dump=False)
    write_json(
        qqq / "feature_names_selected.json",
        {
            "selected_features": [FEATURES[i] for i in QQQ_SELECTED],
            "selected_indices": QQQ_SELECTED,
        },
    )
    xlf = storage / "etfs/XLF/production"
    xlf.mkdir(parents=True)
    joblib.dump(m.xlf, xlf / "model.joblib")
    joblib.dump(m.xlf_encoder, xlf / "label_encoder.joblib")
    write_json(xlf / "feature_names.json", {"feature_names": list(FEATURES)})
    universal = seed_folder(
        storage / "stocks/universal/production", m.universal, m.universal_encoder
    )
    write_json(universal / "metadata.json", {"metrics": {"accuracy": 0.52, "log_loss": 1.2}})
    (storage / "etfs/OLD/archive").mkdir(parents=True)  # no production/: skipped with a note
    if registry is not None:
        write_json(storage / "metadata/asset_registry.json", registry)
    (storage / "metadata").mkdir(exist_ok=True)
    (storage / "metadata/monitoring_history.jsonl").write_text(
        '{"ticker": "SMH", "drift": 0.1, "timestamp": "2025-01-06"}\n'
        '{"ticker": "QQQ", "drift": 0.3, "timestamp": "2025-01-06"}\n'
    )
    return storage


def original_prediction(
    model: Any, encoder: LabelEncoder, row: np.ndarray
) -> tuple[str, dict[str, float]]:
    """What the seed code answered: label via the encoder, probabilities by label."""
    if isinstance(model, lgb.Booster):
        proba = np.asarray(model.predict(row.reshape(1, -1)))[0]
        labels = [str(c) for c in encoder.classes_]
        return labels[int(np.argmax(proba))], dict(zip(labels, proba.tolist(), strict=True))
    with warnings.catch_warnings():  # fitted with names, asked with a bare array: harmless
        warnings.simplefilter("ignore", UserWarning)
        proba = model.predict_proba(row.reshape(1, -1))[0]
        predicted = model.predict(row.reshape(1, -1))
    labels = [str(c) for c in encoder.inverse_transform(model.classes_)]
    label = str(encoder.inverse_transform(predicted)[0])
    return label, dict(zip(labels, proba.tolist(), strict=True))
