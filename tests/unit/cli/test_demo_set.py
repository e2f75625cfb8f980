"""The demo models of ``make serve``: trained once, kept as publishable bundle folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickerserve.cli.demo_set import DEMO_MODELS, DemoModel, ensure_demo_folders
from tickerserve.layout import UNIVERSAL_STOCK_MODEL
from tickerserve.publishing.demo import DEMO_ETFS, DEMO_STOCKS

ONE = (DEMO_MODELS[0],)


def test_every_demo_etf_has_its_own_model_and_stocks_share_one():
    routed = {t: m.name for m in DEMO_MODELS for t in m.tickers}
    assert routed == {
        **{t: f"etfs/{t}" for t in DEMO_ETFS},
        **dict.fromkeys(DEMO_STOCKS, UNIVERSAL_STOCK_MODEL),
    }
    assert {m.asset_class for m in DEMO_MODELS if m.name == UNIVERSAL_STOCK_MODEL} == {"stock"}


def test_folders_are_trained_once_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Given a first call that trains the model into a bundle folder
    folders = ensure_demo_folders(tmp_path, ONE)
    folder = folders[ONE[0].name]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert set(metadata["artifacts"]) == {p.name for p in folder.iterdir()} - {"metadata.json"}
    # When asked again, with training made impossible
    monkeypatch.setattr(DemoModel, "bundle", lambda self: pytest.fail("trained again"))
    # Then the same folder comes back untouched
    assert ensure_demo_folders(tmp_path, ONE) == folders


def test_a_folder_without_metadata_is_trained_again(tmp_path: Path):
    # Given a folder left half-written by something else
    broken = tmp_path / ONE[0].name
    broken.mkdir(parents=True)
    (broken / "model.txt").write_text("not a model")
    # When the folders are ensured; Then it is replaced by a complete bundle
    folder = ensure_demo_folders(tmp_path, ONE)[ONE[0].name]
    assert (folder / "metadata.json").is_file()
    assert (folder / "model.txt").read_text() != "not a model"
    assert [p.name for p in tmp_path.joinpath(*ONE[0].name.split("/")[:-1]).iterdir()] == [
        ONE[0].name.split("/")[-1]
    ]  # no staging folder left behind
