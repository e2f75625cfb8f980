"""Which seed layout a path holds: each layout recognised by its own file names (at the path or
the folder right under it), ``--layout`` to pick one, and a refusal that says what each layout
expects when none or several match."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.seed_layouts import (
    write_seed_000,
    write_seed_001,
    write_seed_002,
    write_seed_003,
    write_seed_004,
)
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers import IMPORTERS, detect


@pytest.mark.parametrize(
    ("write", "layout", "root"),
    [
        (write_seed_000, "000", "models_storage"),
        (write_seed_001, "001", "models"),
        (write_seed_002, "002", "trained_models"),
        (write_seed_003, "003", "models"),
        (write_seed_004, "004", "data/models/registry"),
    ],
)
def test_each_layout_is_recognised_at_its_folder_and_above_it(tmp_path, write, layout, root):
    folder = write(tmp_path)
    assert folder == tmp_path / root
    importer, found = detect(folder)
    assert (importer.LAYOUT, found) == (layout, folder)
    if root.count("/") == 0:  # the folder right under the given path is found too
        importer, found = detect(tmp_path)
        assert (importer.LAYOUT, found) == (layout, folder)
    assert detect(folder, layout)[0] is importer


def test_a_layout_that_does_not_match_says_what_it_expected(tmp_path: Path):
    folder = write_seed_002(tmp_path)
    with pytest.raises(Refused) as caught:
        detect(folder, "003")
    assert caught.value.message == (
        f"{folder}: not a seed 003 layout (expected models/model_90pct.pkl (Model A) and "
        "model_100pct.pkl (Model B))"
    )


def test_an_unknown_layout_name_lists_the_known_ones(tmp_path: Path):
    with pytest.raises(Refused, match=r"^--layout '005': one of 000, 001, 002, 003, 004$"):
        detect(tmp_path, "005")


def test_a_missing_path_or_a_folder_of_nothing_is_refused(tmp_path: Path):
    with pytest.raises(Refused, match=f"^{re.escape(str(tmp_path / 'nope'))}: no such file"):
        detect(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Refused) as caught:
        detect(tmp_path / "empty")
    assert caught.value.message.startswith(f"{tmp_path / 'empty'}: no seed layout recognised")
    for importer in IMPORTERS.values():
        assert f"{importer.LAYOUT}: {importer.DESCRIPTION}" in caught.value.message


def test_a_folder_holding_two_layouts_asks_which(tmp_path: Path):
    write_seed_002(tmp_path)
    write_seed_003(tmp_path)
    with pytest.raises(Refused) as caught:
        detect(tmp_path)
    assert caught.value.message == (
        f"{tmp_path} looks like several seed layouts: 002 ({tmp_path / 'trained_models'}), "
        f"003 ({tmp_path / 'models'}); pick one with --layout"
    )
