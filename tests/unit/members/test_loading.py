"""Loading a member as its spec's kind: the right kind answers, an unknown kind is an invalid
model naming the artifact, and a LightGBM-only function never imports Treelite (nor the
tree engines' onnxruntime)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.family_support import families, rows
from tests.support import DemoModels
from tickerserve.errors import InvalidModel
from tickerserve.members.kinds import MemberSpec
from tickerserve.members.lightgbm import LightGBMMember
from tickerserve.members.loading import load_member
from tickerserve.members.treelite import TreeliteMember


def test_a_lightgbm_spec_loads_a_lightgbm_member(models: DemoModels):
    member = load_member(
        MemberSpec("model.txt"), models.spy.files, task="classification", n_classes=4
    )
    assert isinstance(member, LightGBMMember)
    assert member.predict(np.zeros((2, 12))).shape == (2, 4)


def test_a_treelite_spec_loads_a_treelite_member():
    bundle = families()["xgboost_regressor"].bundle("families/xgb")
    spec = bundle.metadata.members[0]
    member = load_member(spec, bundle.files, task="regression", n_classes=0)
    assert isinstance(member, TreeliteMember)
    assert member.predict(rows(3, missing=True)).shape == (3, 1)


def test_an_unknown_kind_is_an_invalid_model(models: DemoModels):
    with pytest.raises(InvalidModel) as caught:
        load_member(
            MemberSpec("net.tflite", kind="tflite"),
            {"net.tflite": b"bytes"},
            task="classification",
            n_classes=2,
        )
    assert caught.value.message == "net.tflite: unknown member kind 'tflite'"
    assert (caught.value.status, caught.value.code) == (503, "invalid_model")


def test_a_kind_that_does_not_fit_the_bytes_is_refused(models: DemoModels):
    with pytest.raises(InvalidModel, match=r"^model\.txt is not a Treelite model: "):
        load_member(
            MemberSpec("model.txt", kind="treelite", options={"margin": "native"}),
            models.spy.files,
            task="classification",
            n_classes=4,
        )


def test_loading_a_lightgbm_member_imports_neither_treelite_nor_onnxruntime(
    models: DemoModels, tmp_path
):
    path = tmp_path / "model.txt"
    path.write_bytes(models.spy.files["model.txt"])
    script = (
        "import sys\n"
        "from tickerserve.members.kinds import MemberSpec\n"
        "from tickerserve.members.loading import load_member\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "files = {'model.txt': data}\n"
        "load_member(MemberSpec('model.txt'), files, task='classification', n_classes=4)\n"
        "print(sorted(m for m in sys.modules if 'treelite' in m or 'onnxruntime' in m))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
