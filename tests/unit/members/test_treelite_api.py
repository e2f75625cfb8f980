"""Treelite's C API through ctypes: a serialized model restored and run by GTIL gives the very
answers the ``treelite`` package gives, and the library's own errors come through."""

from __future__ import annotations

import numpy as np
import pytest

from tests.family_support import families, rows
from tickerserve.members import treelite_api


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


def test_bytes_of_another_format_are_refused_with_treelites_message():
    with pytest.raises(treelite_api.TreeliteError, match="Cannot load model from a different"):
        treelite_api.NativeModel.deserialize_bytes(b"garbage" * 10)


def test_a_failed_call_raises_the_librarys_last_error():
    treelite_api.check(0)  # success: nothing raised
    with pytest.raises(treelite_api.TreeliteError, match="different major Treelite version"):
        treelite_api.NativeModel.deserialize_bytes(b"\x00" * 64)
    model = treelite_api.NativeModel.deserialize_bytes(
        bundle_of("random_forest_regressor").files["model.treelite"]
    )
    with pytest.raises(treelite_api.TreeliteError, match=r"Unknown prediction type: no_such_type$"):
        treelite_api.Predictor(model, "no_such_type")


def test_a_prepared_predictor_answers_each_row_as_a_batch_does():
    bundle = bundle_of("random_forest_classifier")
    model = treelite_api.NativeModel.deserialize_bytes(bundle.files["model.treelite"])
    predictor = treelite_api.Predictor(model, "raw")
    x = np.ascontiguousarray(rows(20, missing=False), dtype=np.float64)
    batch = predictor.predict(x)
    singles = np.concatenate([predictor.predict(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(singles, batch)
    assert batch.shape[0] == 20 and model.num_tree == 12
