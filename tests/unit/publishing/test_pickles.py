"""A pickle another library version wrote: which library and version, and the pip line."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import sklearn

from tests.seed_layouts import originals, write_seed_002
from tickerserve.publishing.conversion import NotConvertible, pickles
from tickerserve.publishing.conversion.pickles import unpickle, version_advice, written_by


def from_another_version(data: bytes) -> bytes:
    """The same pickle as scikit-learn 1.5.2 would have written it, its tree module at a path
    this scikit-learn no longer has (same lengths, so the pickle stays well-formed)."""
    here = sklearn.__version__.encode()
    assert len(here) == len(b"1.5.2")
    key = b"_sklearn_version\x94\x8c\x05"
    older = data.replace(key + here, key + b"1.5.2")
    return older.replace(b"sklearn.tree._classes", b"sklearn.tree._classez")


def test_a_seed_002_pickle_from_another_scikit_learn_says_which_and_how_to_read_it(tmp_path):
    # Given seed 002's AAPL_d1_20250121.pkl as scikit-learn 1.5.2 wrote it
    folder = write_seed_002(tmp_path)
    file = folder / "AAPL_d1_20250121.pkl"
    file.write_bytes(from_another_version(file.read_bytes()))
    # When it is read for conversion
    with pytest.raises(NotConvertible) as err:
        unpickle(file)
    # Then the message names the library, both versions and the exact pip line
    assert err.value.message == (
        f"cannot unpickle {file}: ModuleNotFoundError: No module named 'sklearn.tree._classez'; "
        f"it was written by scikit-learn 1.5.2 (this machine has {sklearn.__version__}): read "
        'it with `pip install "scikit-learn==1.5.2"` (e.g. in a separate virtualenv), or load '
        "and save it again with this machine's versions"
    )


def test_versions_are_found_for_scikit_learn_xgboost_and_lightgbm_wrappers():
    o = originals()
    assert written_by(pickle.dumps(o.ensembles["AAPL_d1_20250121.pkl"])) == {
        "scikit-learn": sklearn.__version__
    }
    import xgboost

    assert written_by(pickle.dumps(o.registry["1.0.0"])) == {"xgboost": xgboost.__version__}
    # LightGBM keeps only its model format; its wrapper's scikit-learn version is what there is
    found = written_by(pickle.dumps(o.runs["20240815_102314"]))
    assert found == {"lightgbm": None, "scikit-learn": sklearn.__version__}


def test_a_library_that_is_not_installed_gets_its_pip_line(monkeypatch):
    # Given an XGBoost pickle on a machine without xgboost
    data = pickle.dumps(originals().registry["1.0.0"])
    monkeypatch.setattr(pickles, "installed", lambda library: None)
    advice = version_advice(data, ModuleNotFoundError("No module named 'xgboost'"))
    import xgboost

    assert advice.startswith(
        f"; it was written by xgboost {xgboost.__version__} (not installed here): read it with "
        f'`pip install "xgboost=={xgboost.__version__}"`'
    )
    # And versions that agree add nothing: the failure is something else
    monkeypatch.setattr(pickles, "installed", lambda library: xgboost.__version__)
    assert version_advice(data, ValueError("truncated")) == ""


def test_unreadable_bytes_name_no_library(tmp_path: Path):
    file = tmp_path / "model.pkl"
    file.write_bytes(b"\x80\x04 truncated")
    with pytest.raises(NotConvertible) as err:
        unpickle(file)
    assert err.value.message.startswith(f"cannot unpickle {file}: ")
    assert "written by" not in err.value.message
