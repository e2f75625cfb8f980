"""XGBoost's own library through ctypes: XGBoost's answers without the xgboost package, and
its own words when it refuses a file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.family_support import families, rows
from tickerserve.members.xgboost_api import NativeBooster, XGBoostError, load_booster


@pytest.mark.parametrize("name", ["xgboost_classifier", "xgboost_binary", "xgboost_regressor"])
def test_margins_and_outputs_are_xgboosts_own(name):
    estimator = families()[name].estimators["model"]
    booster = load_booster(bytes(estimator.get_booster().save_raw("ubj")))
    x = rows(300, missing=True)
    margins = estimator.predict(x, output_margin=True)
    np.testing.assert_array_equal(booster.margins(x), margins.reshape(len(x), -1))
    values = estimator.get_booster().inplace_predict(x.astype(np.float32))
    np.testing.assert_array_equal(booster.values(x), np.asarray(values).reshape(len(x), -1))
    assert booster.n_features == x.shape[1]


def test_more_threads_answer_the_same_bits():
    estimator = families()["xgboost_classifier"].estimators["model"]
    booster = NativeBooster(bytes(estimator.get_booster().save_raw("json")))
    x = rows(1000, missing=True)
    one = booster.values(x)
    booster.set_threads(2)
    np.testing.assert_array_equal(booster.values(x), one)


def test_a_file_xgboost_cannot_read_is_refused_in_its_own_words():
    with pytest.raises(XGBoostError) as caught:
        load_booster(b"{not a model")
    assert str(caught.value)


def test_loading_the_library_imports_no_xgboost_package():
    code = (
        "import sys; from tickerserve.members import xgboost_api; xgboost_api.library(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('xgboost', 'scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
