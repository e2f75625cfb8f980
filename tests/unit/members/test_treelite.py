"""Treelite members: XGBoost and scikit-learn trees served without the ``treelite`` package or
scipy, reproducing each library's arithmetic to the bit, and every recipe or artifact that
cannot do that refused. On the fast engines: versions published before them are served
through them exactly, XGBoost's own model file is used only when it agrees, and anything the
engines cannot reproduce stays on Treelite's own walker with the same answers."""

from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np
import pytest

from tests.family_support import families, rows
from tests.tree_support import hard_rows
from tickerserve.errors import InvalidModel
from tickerserve.members import treelite as treelite_member
from tickerserve.members import xgboost_api
from tickerserve.members.kinds import MemberSpec
from tickerserve.publishing.demo import FEATURES
from tickerserve.serving.model import LoadedModel
from tickerserve.storage.bundle import Bundle, make_bundle


def bundle_of(name: str) -> Bundle:
    return families()[name].bundle(f"families/{name}")


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


@pytest.mark.parametrize(
    ("options", "task", "n_classes", "message"),
    [
        ({"margin": "x"}, "regression", 0, "treelite margin must be one of native, float32_in"),
        ({"margin": "native", "link": "tanh"}, "regression", 0, "treelite link must be one of"),
        (
            {"margin": "native", "link": "identity", "margin_width": 1, "round_inputs": "f16"},
            "regression",
            0,
            "treelite round_inputs must be float32 or absent",
        ),
        (
            {"margin": "native", "link": "identity", "margin_width": True},
            "regression",
            0,
            "treelite margin_width must be a positive integer",
        ),
        (
            {"margin": "native", "link": "softmax", "margin_width": 1},
            "regression",
            0,
            "a regression member has one margin and no softmax",
        ),
        (
            {"margin": "native", "link": "identity", "margin_width": 2},
            "classification",
            3,
            "an identity-link classifier must give 3 probabilities",
        ),
        (
            {"margin": "native", "link": "exponential", "margin_width": 1},
            "classification",
            2,
            "exponential link is for regression",
        ),
        (
            {"margin": "native", "link": "softmax", "margin_width": 3},
            "classification",
            2,
            "a softmax classifier member needs 2 margin(s), not 3",
        ),
        (
            {"margin": "float32_in_order", "link": "sigmoid", "margin_width": 1},
            "classification",
            2,
            "float32_in_order needs base_margin with 1 value(s)",
        ),
        (
            {
                "margin": "float32_in_order",
                "link": "sigmoid",
                "margin_width": 1,
                "base_margin": [float("nan")],
            },
            "classification",
            2,
            "base_margin values must be finite numbers",
        ),
    ],
)
def test_a_recipe_that_cannot_reproduce_the_original_is_refused(
    options: dict, task: str, n_classes: int, message: str
):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        treelite_member.check_options(options, task, n_classes)


def test_a_recipe_that_disagrees_with_the_model_is_an_invalid_model_naming_the_artifact():
    # Given a multi-class forest whose metadata claims a binary sigmoid output
    bundle = bundle_of("random_forest_classifier")
    n_classes = len(families()["random_forest_classifier"].labels or [])
    spec = bundle.metadata.members[0]
    wrong = MemberSpec(spec.artifact, kind=spec.kind, options={**spec.options, "margin_width": 1,
                                                                 "link": "sigmoid"})  # fmt: skip
    with pytest.raises(InvalidModel) as caught:
        treelite_member.TreeliteMember.from_bytes(
            bundle.files[spec.artifact], wrong, task="classification", n_classes=2
        )
    assert caught.value.message == (
        f"model.treelite: the model gives {n_classes} outputs, metadata 1"
    )


def test_a_member_predicts_the_originals_probabilities_row_by_row():
    family = families()["extra_trees_classifier"]
    bundle = bundle_of("extra_trees_classifier")
    spec = bundle.metadata.members[0]
    member = treelite_member.TreeliteMember.from_bytes(
        bundle.files[spec.artifact], spec, task="classification", n_classes=len(family.labels or [])
    )
    x = rows(30, missing=family.missing, seed=8)
    expected = family.reference(x)
    np.testing.assert_array_equal(member.predict(x), expected)
    np.testing.assert_array_equal(member.predict(x[:1]), expected[:1])
    assert (member.n_features, member.n_outputs) == (len(FEATURES), len(family.labels or []))


# -- the fast engines ---------------------------------------------------------------------
SIZES = (1, 5, 63, 64, 200)


def _as_published_before(bundle: Bundle) -> Bundle:
    """The same version as the publisher wrote it before XGBoost's own model file existed."""
    metadata = dataclasses.replace(bundle.metadata)
    members = []
    for spec in metadata.members:
        options = {k: v for k, v in spec.options.items() if k != "xgboost_model"}
        members.append(dataclasses.replace(spec, options=options))
    metadata.members = members
    files = {n: d for n, d in bundle.files.items() if not n.endswith(".xgboost.ubj")}
    return make_bundle(metadata, files)


def _answers_the_original(model: LoadedModel, name: str) -> None:
    family = families()[name]
    x = hard_rows(family.estimators["model"], max(SIZES), len(model.used_features),
                  missing=family.missing, seed=11)  # fmt: skip
    for size in SIZES:
        expected = np.asarray(family.reference(x[:size]), dtype=np.float64)
        got = model.member_outputs(x[:size])[0]
        np.testing.assert_array_equal(got, expected.reshape(got.shape), err_msg=f"{size} rows")


@pytest.mark.parametrize("name", ["xgboost_classifier", "xgboost_binary", "xgboost_regressor"])
def test_an_xgboost_version_published_before_is_served_exactly_by_onnxruntime(name):
    old = _as_published_before(bundle_of(name))
    assert not any(n.endswith(".xgboost.ubj") for n in old.files)
    model = LoadedModel(old.metadata, old.files)
    assert model.members[0].engine_name == "onnxruntime sums"  # type: ignore[attr-defined]
    _answers_the_original(model, name)


def test_a_new_xgboost_version_carries_xgboosts_own_model_for_batches():
    bundle = bundle_of("xgboost_classifier")
    own = bundle.metadata.members[0].options["xgboost_model"]
    assert own in bundle.files and own in bundle.metadata.artifacts  # sha256-listed
    model = LoadedModel(bundle.metadata, bundle.files)
    assert model.members[0].engine_name == "libxgboost"  # type: ignore[attr-defined]
    _answers_the_original(model, "xgboost_classifier")


def test_an_unloadable_xgboost_model_file_leaves_the_member_on_its_exact_graph(caplog):
    bundle = bundle_of("xgboost_classifier")
    own = bundle.metadata.members[0].options["xgboost_model"]
    files = {**bundle.files, own: b"{garbled"}
    broken = make_bundle(dataclasses.replace(bundle.metadata), files)
    with caplog.at_level(logging.WARNING):
        model = LoadedModel(broken.metadata, broken.files)
    assert model.members[0].engine_name == "onnxruntime sums"  # type: ignore[attr-defined]
    assert "XGBoost's model is not used" in caplog.text
    _answers_the_original(model, "xgboost_classifier")


def test_without_libxgboost_in_the_layer_batches_stay_exact(monkeypatch):
    monkeypatch.setattr(xgboost_api, "available", lambda: False)
    bundle = bundle_of("xgboost_regressor")
    model = LoadedModel(bundle.metadata, bundle.files)
    assert model.members[0].engine_name == "onnxruntime sums"  # type: ignore[attr-defined]
    _answers_the_original(model, "xgboost_regressor")


def test_an_engine_that_disagrees_with_treelite_is_not_used(monkeypatch, caplog):
    # Given an engine that is off by one part in a billion
    real = treelite_member.build_engine

    class Off:
        name = "off"

        def __init__(self, forest):
            self._engine = real(forest)

        def margins(self, rows):
            return self._engine.margins(rows) * (1 + 1e-9)

    monkeypatch.setattr(treelite_member, "build_engine", Off)
    bundle = bundle_of("random_forest_regressor")
    with caplog.at_level(logging.WARNING):
        model = LoadedModel(bundle.metadata, bundle.files)
    # Then Treelite's walker serves it, and the answers are the original's
    assert model.members[0].engine_name == "treelite gtil"  # type: ignore[attr-defined]
    assert "differs from GTIL" in caplog.text
    _answers_the_original(model, "random_forest_regressor")


def test_the_engines_memory_counts_toward_the_models_size():
    # The memory budget's LRU counts a tree member's engine arrays beside its artifact bytes
    bundle = bundle_of("random_forest_classifier")
    model = LoadedModel(bundle.metadata, bundle.files)
    (member,) = model.members
    assert member.forest is not None  # type: ignore[attr-defined]
    extra = 3 * member.forest.nbytes  # type: ignore[attr-defined]
    assert (
        model.size_bytes == bundle.metadata.artifact_bytes + extra > bundle.metadata.artifact_bytes
    )
