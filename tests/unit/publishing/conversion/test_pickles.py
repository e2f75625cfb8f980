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
from lightgbm import LGBMClassifier

from tests.seed_layouts import garbled_lightgbm_pickle
from tickerserve.members.safe_load import clear_verdicts
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.pickles import (
    NO_TORCH,
    loads,
    short,
    torch_refusal,
    unpickle,
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
    ("name", "what"),
    [
        ("model.pth", "a PyTorch model (torch.save, e.g. a GRU)"),
        ("model.PT", "a PyTorch model (torch.save)"),
        ("model.zip", "a Stable-Baselines3 model (e.g. PPO, on torch)"),
    ],
)
def test_torch_artifacts_are_refused_without_being_opened(tmp_path: Path, name: str, what: str):
    path = tmp_path / name  # never written: it is refused by its name alone
    assert torch_refusal(path) == f"{name} is {what}: not imported, because {NO_TORCH}"
    with pytest.raises(NotConvertible) as caught:
        unpickle(path)
    assert caught.value.message == f"{tmp_path}: {name} is {what}: not imported, because {NO_TORCH}"
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
