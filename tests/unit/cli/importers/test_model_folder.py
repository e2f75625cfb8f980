"""A model folder: seed pickles -> native bundle, exactly equivalent, or refused with a reason."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.preprocessing import LabelEncoder

from tests.seed_support import (
    QQQ_SELECTED,
    original_prediction,
    seed_folder,
    seed_models,
    write_json,
    write_pickle,
)
from tickerserve.cli.importers.model_folder import read_folder as load_source
from tickerserve.errors import TickerserveError
from tickerserve.publishing.demo import FEATURES, STRATEGIES
from tickerserve.serving.model import LoadedModel


@pytest.fixture(scope="module")
def m():
    return seed_models()


def _rows(n: int = 50, width: int = 12) -> np.ndarray:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(n, width))
    rows[rng.random(rows.shape) < 0.1] = np.nan
    return rows


def test_classifier_with_label_encoder_converts_exactly(tmp_path, m):
    # Given a seed folder: LGBMClassifier trained on encoded labels + label_encoder.pkl
    folder = seed_folder(tmp_path / "smh", m.smh, m.smh_encoder)
    # When it is converted
    converted = load_source(folder, model="etfs/SMH", asset_class="etf")
    meta = converted.bundle.metadata
    # Then labels are the encoder's strings in output order and predictions are identical
    assert meta.classes == [str(c) for c in m.smh_encoder.inverse_transform(m.smh.classes_)]
    assert meta.feature_names == FEATURES
    assert meta.metrics == {"accuracy": 0.61, "f1_macro": 0.55}
    assert meta.training == {"start": "2019-01-02", "end": "2024-12-31", "rows": 300}
    assert meta.created_at == "2025-01-05T10:00:00"
    assert converted.max_abs_diff <= 1e-12
    loaded = LoadedModel(meta, converted.bundle.files)
    for row in _rows():
        label, probabilities = original_prediction(m.smh, m.smh_encoder, row)
        mine = loaded.predict_proba(row.reshape(1, -1))[0]
        assert meta.classes[int(np.argmax(mine))] == label
        assert np.allclose(mine, [probabilities[c] for c in meta.classes], rtol=0, atol=1e-12)


def test_selected_features_by_names_and_indices(tmp_path, m):
    # Given a model trained on 6 of 12 features, with the selection given as names + indices
    folder = seed_folder(tmp_path / "qqq", m.qqq, m.qqq_encoder, joblib_dump=False)
    write_json(
        folder / "feature_names_selected.json",
        {
            "selected_features": [FEATURES[i] for i in QQQ_SELECTED],
            "selected_indices": QQQ_SELECTED,
        },
    )
    # When converted
    meta = load_source(folder, model="etfs/QQQ").bundle.metadata
    # Then the full list and the selection are kept
    assert meta.feature_names == FEATURES
    assert meta.selected_features == QQQ_SELECTED


def test_selected_features_by_names_only(tmp_path, m):
    # Given only the selected names (no indices)
    folder = seed_folder(tmp_path / "qqq", m.qqq, m.qqq_encoder)
    write_json(folder / "feature_names_selected.json", [FEATURES[i] for i in QQQ_SELECTED])
    # When converted
    meta = load_source(folder, model="etfs/QQQ").bundle.metadata
    # Then the indices are derived from the full list
    assert meta.selected_features == QQQ_SELECTED


def test_raw_booster_with_joblib_encoder(tmp_path, m):
    # Given a pickled Booster whose labels live in label_encoder.joblib
    folder = seed_folder(tmp_path / "xlf", m.xlf, None)
    write_pickle(folder / "label_encoder.joblib", m.xlf_encoder)
    # When converted
    converted = load_source(folder, model="etfs/XLF")
    # Then the labels are the encoder's classes (the Booster's outputs are 0..k-1)
    assert converted.bundle.metadata.classes == list(m.xlf_encoder.classes_)
    assert converted.estimator == "Booster"


def test_pickled_dict_bundle(tmp_path, m):
    # Given one pickle holding model, encoder and feature names
    folder = tmp_path / "dict"
    write_pickle(
        folder / "model.pkl",
        {"model": m.smh, "label_encoder": m.smh_encoder, "feature_names": list(FEATURES)},
    )
    # When converted
    meta = load_source(folder, model="etfs/SMH").bundle.metadata
    # Then everything came out of the dict
    assert meta.feature_names == FEATURES
    assert meta.classes == list(m.smh_encoder.classes_)


def test_binary_classifier(tmp_path, m):
    # Given a two-class classifier with its encoder
    encoder = LabelEncoder().fit(STRATEGIES[:2])
    folder = seed_folder(tmp_path / "bin", m.binary, encoder)
    # When converted
    converted = load_source(folder, model="etfs/TLT")
    # Then both labels are kept in output order
    assert converted.bundle.metadata.classes == sorted(STRATEGIES[:2])


def test_native_bundle_folder(tmp_path, models):
    # Given a native bundle folder as written by the publisher
    folder = tmp_path / "native"
    folder.mkdir()
    for name, data in models.smh.files.items():
        (folder / name).write_bytes(data)
    (folder / "metadata.json").write_bytes(models.smh.metadata_bytes)
    # When loaded under another model name
    converted = load_source(folder, model="etfs/SOXX")
    # Then it is taken as is (same artifacts), renamed
    assert converted.kind == "native"
    assert converted.bundle.metadata.model == "etfs/SOXX"
    assert converted.bundle.files == models.smh.files


def test_native_bundle_with_tampered_artifact_is_refused(tmp_path, models):
    # Given a native bundle whose model.txt no longer matches its recorded sha256
    folder = tmp_path / "native"
    folder.mkdir()
    (folder / "model.txt").write_bytes(models.smh.files["model.txt"] + b"\n")
    (folder / "metadata.json").write_bytes(models.smh.metadata_bytes)
    # When loaded / Then refused
    with pytest.raises(TickerserveError) as error:
        load_source(folder, model="etfs/SMH")
    assert error.value.message == (
        f"{folder}: model.txt does not match the sha256 recorded in metadata.json"
    )


# -- refusals ------------------------------------------------------------------------------
def _refusal(folder, model="etfs/SMH") -> str:
    with pytest.raises(TickerserveError) as error:
        load_source(folder, model=model)
    return error.value.message


def test_unreadable_pickle(tmp_path, m):
    folder = seed_folder(tmp_path / "bad", m.smh, m.smh_encoder)
    (folder / "model.joblib").write_bytes(b"this is not a pickle")
    assert _refusal(folder).startswith(f"cannot unpickle {folder / 'model.joblib'}: ")


def test_feature_count_disagrees_with_names(tmp_path, m):
    folder = seed_folder(tmp_path / "count", m.smh, m.smh_encoder)
    write_json(folder / "feature_names.json", FEATURES[:11])
    assert _refusal(folder) == (
        f"{folder}: LGBMClassifier expects 12 features but the feature names list 11"
    )


def test_feature_order_disagrees_with_training(tmp_path, m):
    folder = seed_folder(tmp_path / "order", m.smh, m.smh_encoder)
    write_json(folder / "feature_names.json", [FEATURES[1], FEATURES[0], *FEATURES[2:]])
    assert _refusal(folder) == (
        f"{folder}: LGBMClassifier: feature 0 is 'rsi_14' in the model but 'iv_rank' in the "
        "feature names"
    )


def test_unknown_class_labels(tmp_path, m):
    # The classifier predicts 4 encoded classes; this encoder only knows 3.
    folder = seed_folder(tmp_path / "labels", m.smh, LabelEncoder().fit(STRATEGIES[:3]))
    assert _refusal(folder) == (
        f"{folder}: unknown class label 3: the label encoder knows 3 classes"
    )


def test_booster_without_labels_answers_class_indices_with_a_warning(tmp_path, m):
    # Given a raw multiclass Booster and no encoder or listed classes
    folder = seed_folder(tmp_path / "nolabels", m.xlf, None)
    # When converted
    converted = load_source(folder, model="etfs/XLF")
    # Then its labels are the class indices it answers, and the user is told why
    assert converted.bundle.metadata.classes == ["0", "1", "2"]
    assert converted.warnings == ["no label encoder: class labels are the model's integer classes"]


def test_not_a_lightgbm_model(tmp_path, m):
    folder = seed_folder(tmp_path / "other", m.smh_encoder, None)
    assert _refusal(folder) == (
        f"{folder}: sklearn.LabelEncoder cannot be served: supported are LightGBM "
        "(LGBMClassifier, LGBMRegressor, Booster), XGBoost (XGBClassifier, XGBRegressor) and "
        "scikit-learn RandomForest, ExtraTrees, GradientBoosting and HistGradientBoosting "
        "(classifier or regressor)"
    )


def test_selected_name_not_in_feature_names(tmp_path, m):
    folder = seed_folder(tmp_path / "sel", m.qqq, m.qqq_encoder)
    write_json(folder / "feature_names_selected.json", ["rsi_14", "nope", "a", "b", "c", "d"])
    assert _refusal(folder) == f"{folder}: selected feature 'nope' is not in feature_names"


def test_missing_model_file(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    assert _refusal(folder) == (
        f"{folder}: no model found (expected model.txt with a native metadata.json, "
        "or a seed model.joblib / model.pkl)"
    )


def test_conversion_that_changes_predictions_is_refused(tmp_path, m, monkeypatch):
    # Given a conversion whose loaded model answers 1e-6 off the original
    folder = seed_folder(tmp_path / "drift", m.smh, m.smh_encoder)
    original = LoadedModel.member_outputs
    monkeypatch.setattr(
        LoadedModel, "member_outputs", lambda self, x: [o + 1e-6 for o in original(self, x)]
    )
    # When converted / Then refused, with the measured difference
    message = _refusal(folder)
    assert re.fullmatch(
        rf"{re.escape(str(folder))}: member model.txt \(LGBMClassifier\) does not match the "
        r"original \(max difference 1e-06 on 256 probe rows\)",
        message,
    )


def test_a_text_model_txt_seed_folder_converts_like_its_booster(tmp_path, models):
    # Given a seed folder holding LightGBM text (no pickle) and its feature names
    folder = tmp_path / "spy"
    folder.mkdir()
    (folder / "model.txt").write_bytes(models.spy.files["model.txt"])
    write_json(folder / "feature_names.json", models.spy.metadata.feature_names)
    # When it is converted (lightgbm's own Booster, loaded in a probe child first)
    converted = load_source(folder, model="etfs/SPY")
    # Then the bundle answers what the text model answers
    x = _rows(width=len(models.spy.metadata.feature_names))
    served = LoadedModel(converted.bundle.metadata, converted.bundle.files).predict_proba(x)
    reference = LoadedModel(models.spy.metadata, models.spy.files).predict_proba(x)
    np.testing.assert_array_equal(served, reference)
