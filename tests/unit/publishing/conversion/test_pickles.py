"""Seed pickles on the publisher's machine: joblib or plain pickle files unpickled in a
crash-proof child, torch artifacts refused with the reason, and every unreadable file a
refusal that names it."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn
from lightgbm import LGBMClassifier

from tests.seed_layouts import garbled_lightgbm_pickle, originals, write_seed_002
from tickerserve.members.safe_load import clear_verdicts
from tickerserve.publishing.conversion import NotConvertible, pickles
from tickerserve.publishing.conversion.pickles import (
    loads,
    short,
    torch_refusal,
    unpickle,
    version_advice,
    written_by,
)


def fitted() -> LGBMClassifier:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    return LGBMClassifier(n_estimators=3, verbose=-1).fit(x, (x[:, 0] > 0).astype(int))


def test_joblib_and_plain_pickle_files_are_read(tmp_path: Path):
    model = fitted()
    joblib.dump({"model": model, "features": ["a", "b", "c"]}, tmp_path / "m.joblib")
    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"weights": [0.4, 0.6]}))
    loaded = unpickle(tmp_path / "m.joblib")
    assert loaded["features"] == ["a", "b", "c"]
    x = np.zeros((1, 3))
    np.testing.assert_array_equal(loaded["model"].predict_proba(x), model.predict_proba(x))
    assert unpickle(tmp_path / "m.pkl") == {"weights": [0.4, 0.6]}
    assert loads(pickle.dumps([1, 2])) == [1, 2]


@pytest.mark.parametrize(
    ("name", "what", "named"),
    [
        ("weights.pth", "a PyTorch model (torch.save, e.g. a GRU)", "model.pth"),
        ("model.PT", "a PyTorch model (torch.save)", "model.pth"),
        ("policy.zip", "a Stable-Baselines3 model (e.g. PPO, on torch)", "model.zip"),
    ],
)
def test_torch_artifacts_are_never_unpickled_and_say_how_they_convert(
    tmp_path: Path, name: str, what: str, named: str
):
    path = tmp_path / name  # never written: it is refused by its name alone
    said = (
        f"{name} is {what}: publish the file itself, or its run folder with the file named {named}"
    )
    assert torch_refusal(path) == said
    with pytest.raises(NotConvertible) as caught:
        unpickle(path)
    assert caught.value.message == f"{tmp_path}: {said}"
    assert torch_refusal(tmp_path / "model.pkl") is None


def test_a_missing_or_unpicklable_file_is_refused_naming_it(tmp_path: Path):
    with pytest.raises(NotConvertible, match=r"^cannot read .*nope\.pkl: FileNotFoundError: "):
        unpickle(tmp_path / "nope.pkl")
    text = tmp_path / "notes.pkl"
    text.write_bytes(b"this is no pickle")
    with pytest.raises(NotConvertible, match=f"^cannot unpickle {re.escape(str(text))}: "):
        unpickle(text)


def test_a_pickle_of_a_class_that_is_not_installed_says_which(tmp_path: Path):
    path = tmp_path / "custom.pkl"
    # A pickle naming a module nobody has installed (a seed's own training package).
    path.write_bytes(b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x0bseed_models\x94"
                     b"\x8c\x05Model\x94\x93\x94)\x81\x94.")  # fmt: skip
    with pytest.raises(NotConvertible) as caught:
        unpickle(path)
    assert caught.value.message == (
        f"cannot unpickle {path}: ModuleNotFoundError: No module named 'seed_models'"
    )


def test_a_garbled_lightgbm_pickle_that_crashes_lightgbm_is_refused_and_we_survive(
    tmp_path: Path,
):
    clear_verdicts()
    path = tmp_path / "lightgbm_clean_model.pkl"
    path.write_bytes(garbled_lightgbm_pickle(pickle.dumps(fitted())))
    with pytest.raises(NotConvertible, match=f"^cannot unpickle {re.escape(str(path))}: "):
        unpickle(path)
    assert np.asarray(fitted().predict(np.zeros((1, 3)))).shape == (1,)  # this process still runs


def test_short_errors_are_one_line_with_their_type():
    assert short(ValueError("bad\n  value   here")) == "ValueError: bad value here"
    assert short(KeyError()) == "KeyError"
    assert len(short(RuntimeError("x" * 500))) == len("RuntimeError: ") + 160


# -- a pickle another library version wrote ------------------------------------------------
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
