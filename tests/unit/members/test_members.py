"""Member kinds and bundle format 2: loading from bytes, the prepared Treelite call, what is
refused at load (garbled bytes, unknown kinds, newer formats) and at conversion."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tests.family_support import families, rows
from tickerserve.errors import InvalidModel
from tickerserve.members import treelite as treelite_member
from tickerserve.members import treelite_api
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.assemble import assemble
from tickerserve.publishing.conversion.estimators import convert_estimator
from tickerserve.publishing.conversion.linear import convert_linear
from tickerserve.publishing.demo import FEATURES
from tickerserve.serving.model import LoadedModel
from tickerserve.storage.bundle import BundleMetadata, make_bundle


def bundle_of(name: str):
    return families()[name].bundle(f"families/{name}")


@pytest.mark.parametrize(
    "name", ["xgboost_classifier", "random_forest_regressor", "gradient_boosting_binary"]
)
def test_the_c_api_binding_predicts_what_the_treelite_package_predicts(name):
    # Given a Treelite member's bytes, restored by our binding and by the treelite package
    import treelite
    from treelite import gtil

    bundle = bundle_of(name)
    data = bundle.files[bundle.metadata.members[0].artifact]
    ours = treelite_api.NativeModel.deserialize_bytes(data)
    theirs = treelite.Model.deserialize_bytes(data)
    x = rows(50, missing=families()[name].missing).astype(np.float32 if theirs.input_type ==
                                                           "float32" else np.float64)  # fmt: skip
    # Then the model's facts and GTIL's outputs are the very same, one row or many
    assert (ours.num_tree, ours.num_feature, ours.input_type, ours.output_type) == (
        theirs.num_tree, theirs.num_feature, theirs.input_type, theirs.output_type,
    )  # fmt: skip
    for predict_type, public in (
        ("raw", lambda d: gtil.predict(theirs, d, nthread=1, pred_margin=True)),
        ("score_per_tree", lambda d: gtil.predict_per_tree(theirs, d, nthread=1)),
    ):
        predictor = treelite_api.Predictor(ours, predict_type)
        for data_rows in (x, x[:1]):
            mine = predictor.predict(np.ascontiguousarray(data_rows))
            np.testing.assert_array_equal(mine.reshape(public(data_rows).shape), public(data_rows))


def test_serving_a_treelite_member_imports_neither_treelite_nor_scipy(tmp_path):
    # Given an XGBoost and a GradientBoosting bundle (sigmoid link) on disk
    import pickle
    import subprocess
    import sys

    paths = []
    for name in ("xgboost_classifier", "gradient_boosting_binary"):
        bundle = bundle_of(name)
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(pickle.dumps((bundle.metadata.to_json(), bundle.files)))
        paths.append(str(path))
    # When a fresh process loads and predicts with them as the function does
    script = (
        "import pickle, sys, numpy as np\n"
        "from tickerserve.storage.bundle import BundleMetadata\n"
        "from tickerserve.serving.model import LoadedModel\n"
        "for path in sys.argv[1:]:\n"
        "    meta, files = pickle.load(open(path, 'rb'))\n"
        "    meta = BundleMetadata.from_json(meta)\n"
        "    LoadedModel(meta, files).predict(np.zeros((2, len(meta.used_features))))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('treelite', 'scipy')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True,
                         text=True, check=True)  # fmt: skip
    # Then neither package was imported: they cost a cold start hundreds of milliseconds
    assert out.stdout.strip() == "[]"


def test_links_without_scipy_are_scipy_and_scikit_learns_to_the_bit():
    from scipy.special import expit
    from sklearn.utils.extmath import softmax

    margins = np.random.default_rng(4).normal(scale=6.0, size=(2000, 3))
    margins[:5, 0] = [0.0, -709.0, 745.0, 1e-300, -36.0]  # below -709.78: test_links.py
    sigmoid = treelite_member._link64(margins[:, :1], "sigmoid")
    np.testing.assert_array_equal(sigmoid[:, 1], expit(margins[:, 0]))
    np.testing.assert_array_equal(sigmoid[:, 0], 1.0 - expit(margins[:, 0]))
    np.testing.assert_array_equal(
        treelite_member._link64(margins, "softmax"), softmax(margins.copy())
    )


@pytest.mark.parametrize("name", ["xgboost_binary", "xgboost_regressor", "xgboost_classifier"])
def test_xgboost_is_reproduced_to_the_last_float32_bit(name):
    # XGBoost adds trees in float32 from its base margin and links in float32: so do we.
    family = families()[name]
    bundle = bundle_of(name)
    x = rows(400, missing=True, seed=21)
    mine = LoadedModel(bundle.metadata, bundle.files).predict(x).outputs
    theirs = np.asarray(family.reference(x), dtype=np.float64)
    np.testing.assert_array_equal(mine, theirs)


def test_garbled_treelite_artifact_is_an_invalid_model():
    bundle = bundle_of("random_forest_classifier")
    name = bundle.metadata.members[0].artifact
    garbled = bundle.files[name][:200] + b"\x00" * 64
    broken = make_bundle(bundle.metadata, {name: garbled})
    with pytest.raises(InvalidModel, match=r"model\.treelite is not a Treelite model"):
        LoadedModel(broken.metadata, broken.files)


def test_treelite_loader_is_a_plain_bytes_function():
    bundle = bundle_of("xgboost_regressor")
    model = treelite_member.load_treelite(bundle.files["model.treelite"])
    assert model.num_feature == len(FEATURES)


def _raw_metadata(name: str) -> dict:
    return json.loads(bundle_of(name).metadata.to_json())


def test_newer_bundle_format_is_refused_with_advice():
    raw = _raw_metadata("lightgbm_classifier") | {"format": 3}
    with pytest.raises(InvalidModel, match=r"unsupported bundle format 3 .*upgrade the function"):
        BundleMetadata.from_json(json.dumps(raw).encode())


def test_unknown_member_kind_is_refused():
    raw = _raw_metadata("lightgbm_classifier")
    raw["ensemble"]["members"][0]["kind"] = "onnx"
    with pytest.raises(InvalidModel, match="unknown kind 'onnx'"):
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


# -- conversion refusals -----------------------------------------------------------------
def test_unsupported_estimator_is_refused_with_the_supported_list():
    with pytest.raises(NotConvertible, match=r"sklearn\.StandardScaler cannot be served"):
        convert_estimator(StandardScaler().fit(np.ones((3, 2))), stem="m")


def test_meta_learner_width_must_match_the_members():
    family = families()["stack_regressor"]
    members = [convert_estimator(e, stem=n, name=n) for n, e in family.estimators.items()]
    meta = LogisticRegression().fit(np.random.default_rng(0).normal(size=(20, 3)), [0, 1] * 10)
    with pytest.raises(NotConvertible, match="the meta-learner takes 3 inputs"):
        assemble(members, model="x/y", feature_names=list(FEATURES), stacking=convert_linear(meta))


def test_feature_names_must_match_the_trained_ones():
    family = families()["lightgbm_classifier"]
    member = convert_estimator(family.estimators["model"], stem="m")
    swapped = [FEATURES[1], FEATURES[0], *FEATURES[2:]]
    member.trained_names = list(FEATURES)
    with pytest.raises(NotConvertible, match="feature 0 is 'rsi_14' in the model but 'iv_rank'"):
        assemble([member], model="x/y", feature_names=swapped)


def test_a_conversion_that_changes_answers_is_refused(monkeypatch):
    # Given a Treelite member that answers 1e-5 off
    original = treelite_member.TreeliteMember.predict
    monkeypatch.setattr(
        treelite_member.TreeliteMember, "predict", lambda self, x: original(self, x) + 1e-5
    )
    family = families()["random_forest_regressor"]
    member = convert_estimator(family.estimators["model"], stem="m", name="rf")
    # When assembled / Then refused with the measured difference
    with pytest.raises(NotConvertible, match=r"member rf \(RandomForestRegressor\) does not match"):
        assemble([member], model="x/y", feature_names=list(FEATURES))
