"""Bundles: metadata validation and its format versions, immutable version folders,
verification, ensembles."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest

from tests.family_support import families
from tickerserve.errors import IntegrityError, InvalidModel
from tickerserve.layout import artifact_key
from tickerserve.publishing.demo import booster_bundle, train_booster, training_data
from tickerserve.serving.model import LoadedModel
from tickerserve.storage.bundle import (
    BundleMetadata,
    Stacking,
    make_bundle,
    read_bundle,
    write_bundle,
)
from tickerserve.storage.store import LocalStore, PreconditionFailed


def test_write_then_read_round_trip(tmp_path, models):
    store = LocalStore(tmp_path)
    digest = write_bundle(store, models.smh)
    bundle = read_bundle(store, "etfs/SMH", "1.0.0", expected_sha256=digest)
    assert bundle.files == models.smh.files
    assert bundle.metadata.to_dict() == models.smh.metadata.to_dict()


def test_version_folder_is_written_once(tmp_path, models):
    store = LocalStore(tmp_path)
    write_bundle(store, models.smh)
    with pytest.raises(PreconditionFailed, match="already exists"):
        write_bundle(store, models.smh)


def test_tampered_artifact_fails_verification(tmp_path, models):
    store = LocalStore(tmp_path)
    digest = write_bundle(store, models.spy)
    key = artifact_key("etfs/SPY", "1.0.0", "model.txt")
    original = store.get(key)
    assert original is not None
    store.put(key, original.data + b"\n")
    with pytest.raises(IntegrityError, match="sha256"):
        read_bundle(store, "etfs/SPY", "1.0.0", expected_sha256=digest)


def test_metadata_must_match_its_registry_digest(tmp_path, models):
    store = LocalStore(tmp_path)
    write_bundle(store, models.spy)
    with pytest.raises(IntegrityError, match="does not match"):
        read_bundle(store, "etfs/SPY", "1.0.0", expected_sha256="0" * 64)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"feature_names": ["a", "a"]}, "duplicates"),
        ({"feature_names": []}, "feature_names"),
        ({"selected_features": [0, 99]}, "selected_features"),
        ({"classes": ["ONLY"]}, "classes"),
        ({"method": "median"}, "ensemble method"),
    ],
)
def test_invalid_metadata_is_refused(models, change, message):
    raw = models.spy.metadata.to_dict()
    meta = BundleMetadata.from_dict(raw)
    for key, value in change.items():
        setattr(meta, key, value)
    with pytest.raises(InvalidModel, match=message):
        make_bundle(meta, models.spy.files)


def test_feature_count_mismatch_is_caught_at_load(models):
    meta = BundleMetadata.from_dict(models.spy.metadata.to_dict())
    meta.feature_names = meta.feature_names[:-1]
    with pytest.raises(InvalidModel, match="expects 12 features"):
        LoadedModel(meta, models.spy.files)


def test_class_count_mismatch_is_caught_at_load(models):
    meta = BundleMetadata.from_dict(models.spy.metadata.to_dict())
    meta.classes = [*meta.classes, "EXTRA"]
    with pytest.raises(InvalidModel, match="classes"):
        LoadedModel(meta, models.spy.files)


def test_weighted_average_and_stacking_ensembles():
    x, y = training_data(11, 300, 5, 3)
    first = train_booster(x, y, 3, seed=1)
    second = train_booster(x, y, 3, rounds=5, seed=2)
    names = [f"f{i}" for i in range(5)]
    classes = ["A", "B", "C"]
    bundle = booster_bundle(
        "ens/avg", "1.0.0", [first, second], feature_names=names, classes=classes, weights=[3, 1]
    )
    model = LoadedModel(bundle.metadata, bundle.files)
    expected = 0.75 * np.asarray(first.predict(x[:5])) + 0.25 * np.asarray(second.predict(x[:5]))
    np.testing.assert_allclose(model.predict_proba(x[:5]), expected)

    meta = BundleMetadata.from_dict(bundle.metadata.to_dict())
    meta.method = "stacking"
    meta.stacking = Stacking(np.eye(3, 6).tolist(), [0.0, 0.0, 0.0])
    stacked = LoadedModel(meta, bundle.files).predict_proba(x[:5])
    logits = first.predict(x[:5])
    expected_stack = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(stacked, expected_stack)


def test_named_features_in_another_order_than_trained_are_refused():
    # Given a booster trained on named features and metadata listing them sorted differently
    x, y = training_data(5, 200, 4, 3)
    names = ["rsi_14", "iv_rank", "hv_20", "ret_5d"]
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1},
        lgb.Dataset(x, label=y, feature_name=names),
        num_boost_round=3,
    )
    bundle = booster_bundle(
        "etfs/X", "1.0.0", [booster], feature_names=sorted(names), classes=["A", "B", "C"]
    )
    # Then loading it refuses, naming the problem
    with pytest.raises(InvalidModel, match="names or order differ"):
        LoadedModel(bundle.metadata, bundle.files)
    same = booster_bundle(
        "etfs/X", "1.0.0", [booster], feature_names=names, classes=["A", "B", "C"]
    )
    assert LoadedModel(same.metadata, same.files).used_features == names


def test_a_regression_booster_cannot_serve_as_a_classifier():
    x, y = training_data(6, 200, 4, 2)
    booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, label=y), 3)
    bundle = booster_bundle(
        "etfs/X",
        "1.0.0",
        [booster],
        feature_names=list("abcd"),
        classes=["NO_TRADE", "IRON_CONDOR"],
    )
    with pytest.raises(InvalidModel, match="objective 'regression'"):
        LoadedModel(bundle.metadata, bundle.files)


def test_metadata_with_nan_is_refused(models):
    raw = models.spy.metadata.to_json().replace(b'"training": {', b'"training": {"loss": NaN, ', 1)
    assert b"NaN" in raw
    with pytest.raises(InvalidModel, match="NaN is not allowed"):
        BundleMetadata.from_json(raw)


# -- metadata format versions ------------------------------------------------------------
def _raw_metadata(name: str) -> dict:
    return json.loads(families()[name].bundle(f"families/{name}").metadata.to_json())


def test_newer_bundle_format_is_refused_with_advice():
    raw = _raw_metadata("lightgbm_classifier") | {"format": 3}
    with pytest.raises(InvalidModel, match=r"unsupported bundle format 3 .*upgrade the function"):
        BundleMetadata.from_json(json.dumps(raw).encode())


def test_unknown_member_kind_is_refused():
    raw = _raw_metadata("lightgbm_classifier")
    raw["ensemble"]["members"][0]["kind"] = "tflite"
    with pytest.raises(
        InvalidModel,
        match=r"unknown kind 'tflite' \(this tickerserve serves "
        r"lightgbm, treelite, onnx\)",
    ):
        BundleMetadata.from_json(json.dumps(raw).encode())


def test_fields_a_newer_writer_added_are_kept():
    raw = _raw_metadata("stack_regressor") | {"baseline": {"features": {}}}
    again = json.loads(BundleMetadata.from_json(json.dumps(raw).encode()).to_json())
    assert again["baseline"] == {"features": {}}


def test_format_1_metadata_reads_as_a_lightgbm_classifier(models):
    raw = json.loads(models.spy.metadata.to_json())
    raw["format"] = 1
    for key in ("task", "accepts_missing"):
        raw.pop(key)
    for member in raw["ensemble"]["members"]:
        member.pop("kind")
    meta = BundleMetadata.from_json(json.dumps(raw).encode())
    assert (meta.task, meta.member_kinds, meta.accepts_missing) == (
        "classification",
        ["lightgbm"],
        True,
    )
    assert LoadedModel(meta, models.spy.files).predict_proba(np.zeros((1, 12))).shape == (1, 4)


def test_regression_bundle_with_classes_is_refused():
    raw = _raw_metadata("xgboost_regressor") | {"classes": ["A", "B"]}
    with pytest.raises(InvalidModel, match="a regression model has no classes"):
        BundleMetadata.from_json(json.dumps(raw).encode())


def test_an_xgboost_model_file_the_artifacts_do_not_list_is_refused():
    # Given an XGBoost version whose metadata names its own model file
    from tests.family_support import families

    bundle = families()["xgboost_regressor"].bundle("families/xgb")
    own = bundle.metadata.members[0].options["xgboost_model"]
    files = {n: d for n, d in bundle.files.items() if n != own}
    # Then the file is part of the sha256-listed version: without it the metadata is invalid
    with pytest.raises(InvalidModel, match=f"{own} is not listed in artifacts"):
        make_bundle(bundle.metadata, files)
