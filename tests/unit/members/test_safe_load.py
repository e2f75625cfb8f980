"""Crash-isolated loading: real malformed LightGBM files (whose sha256 would match their
metadata) abort LightGBM from C++; the probe in a forked child turns that into InvalidModel
and this process keeps running."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from tests.family_support import families
from tests.support import DemoModels, garbled_model_texts
from tickerserve.errors import InvalidModel
from tickerserve.members import safe_load as safe_load_module
from tickerserve.members.lightgbm import (
    lightgbm_single_threaded,
    load_booster,
    predict_probe_rows,
)
from tickerserve.members.safe_load import clear_verdicts, probe, run_isolated, safe_load
from tickerserve.serving.model import LoadedModel
from tickerserve.storage.bundle import make_bundle


@pytest.fixture(autouse=True)
def fresh_verdicts() -> Iterator[None]:
    clear_verdicts()
    yield
    clear_verdicts()


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the children the probe forks."""
    calls: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        calls.append(1)
        return real_fork()

    monkeypatch.setattr(safe_load_module.os, "fork", counting_fork)
    return calls


@pytest.mark.parametrize(
    "kind", ["truncated", "num_leaves=abc", "garbled leaf values", "flipped bytes"]
)
def test_a_malformed_lightgbm_file_is_refused_and_this_process_survives(models: DemoModels, kind):
    # Given a model.txt LightGBM aborts on (SIGABRT) when it parses it in process
    garbled = garbled_model_texts(models.smh.files["model.txt"])[kind]
    # When it is loaded through the probe
    with pytest.raises(InvalidModel) as caught:
        safe_load(load_booster, garbled, what="etfs/SMH 1.0.0 model.txt", check=predict_probe_rows)
    # Then it is an invalid model naming the file and what the library said
    assert caught.value.status == 503
    # (LightGBM aborts after a "[LightGBM] [Fatal]" line, or dies of SIGSEGV in the parser)
    assert caught.value.message.startswith(
        "etfs/SMH 1.0.0 model.txt cannot be loaded: the loader crashed (SIG"
    )


def test_a_good_file_loads_in_process_and_predicts(models: DemoModels):
    text = models.spy.files["model.txt"]
    booster = safe_load(load_booster, text, what="model.txt", check=predict_probe_rows)
    assert booster.num_feature() == len(models.spy.metadata.feature_names)
    assert np.isfinite(booster.predict(np.zeros((1, booster.num_feature())))).all()


def test_the_verdict_is_paid_once_per_artifact(models: DemoModels, forks: list[int]):
    text = models.spy.files["model.txt"]
    bad = garbled_model_texts(text)["truncated"]
    for _ in range(3):
        safe_load(load_booster, text, what="good", check=predict_probe_rows)
        with pytest.raises(InvalidModel, match=r"^bad cannot be loaded: "):
            safe_load(load_booster, bad, what="bad", check=predict_probe_rows)
    assert len(forks) == 2  # one probe for each distinct artifact


def test_the_probe_works_while_other_threads_use_openmp(models: DemoModels):
    # Given another thread predicting with an OpenMP thread pool while the probe forks
    # (GNU OpenMP's pool does not survive a fork: a child that opens a parallel region with
    # more than one thread hangs)
    booster = load_booster(models.universal.files["model.txt"])
    rows = np.random.default_rng(0).normal(size=(5000, booster.num_feature()))
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            booster.predict(rows, num_threads=2)

    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    try:
        # When another model is probed, Then the child finishes (it would time out if hung)
        for name in ("smh", "spy", "binary"):
            text = getattr(models, name).files["model.txt"]
            probe(
                load_booster,
                text,
                what=name,
                check=predict_probe_rows,
                child_setup=lightgbm_single_threaded,
                timeout=15,
            )
    finally:
        stop.set()
        worker.join()


# -- the primitive, with any loader ----------------------------------------------------------
def crash(_: bytes) -> None:
    ctypes.string_at(0)  # a NULL read: SIGSEGV in native code


def raise_error(_: bytes) -> None:
    raise ValueError("not a model of this kind")


def test_any_loader_that_crashes_is_reported_with_its_signal():
    with pytest.raises(
        InvalidModel, match=r"member\.bin cannot be loaded: the loader crashed \(SIGSEGV\)"
    ):
        safe_load(crash, b"bytes", what="member.bin")


def test_a_loader_that_raises_raises_here_as_it_would_without_the_probe(forks):
    # Given a loader that refuses some bytes the ordinary way (an exception, no crash)
    # When they are loaded, Then its own exception reaches the caller, probe or not
    with pytest.raises(ValueError, match="not a model of this kind"):
        safe_load(raise_error, b"{}", what="x.json")
    assert len(forks) == 1


def test_a_check_that_raises_makes_the_artifact_invalid():
    def refuse(_: object) -> None:
        raise RuntimeError("predicts nonsense")

    with pytest.raises(
        InvalidModel, match=r"x\.bin cannot be loaded: RuntimeError: predicts nonsense"
    ):
        safe_load(lambda data: data, b"bytes", what="x.bin", check=refuse)


def test_a_loader_that_hangs_is_stopped_at_the_timeout():
    assert run_isolated(lambda: threading.Event().wait(), timeout=0.5) == (
        "loading did not finish within 0.5 s"
    )


# -- the other member kinds get the same guarantee -------------------------------------------
def test_a_garbled_treelite_member_never_takes_the_process_down(monkeypatch):
    # Given a scikit-learn forest stored as Treelite bytes, garbled in the middle (Treelite
    # then spins on what it reads as a huge size, or dies in native code)
    monkeypatch.setattr(safe_load_module, "PROBE_TIMEOUT", 3.0)
    bundle = families()["random_forest_classifier"].bundle("families/forest")
    name = bundle.metadata.members[0].artifact
    data = bundle.files[name]
    garbled = data[:100] + b"\xff" * 200 + data[300:]
    broken = make_bundle(bundle.metadata, {name: garbled})
    # When it is loaded as a member, Then it is an invalid model and this process goes on
    with pytest.raises(InvalidModel) as caught:
        LoadedModel(broken.metadata, broken.files)
    assert f"{name} cannot be loaded:" in caught.value.message
    assert LoadedModel(bundle.metadata, bundle.files).predict(np.zeros((1, 12))) is not None
