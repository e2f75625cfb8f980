"""Seed 001's PPO runs become checked ONNX policies: stable-baselines3 loads them, VecNormalize's
statistics become steps, action_space_info names the actions, and what cannot be served as the
seed served it is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.network_support import networks, ppo_answers, train_ppo, write_ppo_run
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.ppo_runs import convert_ppo
from tickerserve.serving.model import LoadedModel


@pytest.fixture(scope="module")
def discrete():
    return train_ppo(6, steps=64, seed=3)


def test_a_run_becomes_a_policy_checked_against_stable_baselines3():
    converted = networks()["ppo"].converted
    meta = converted.bundle.metadata
    assert (meta.task, meta.classes, meta.model_type) == (
        "classification",
        ["hold", "buy", "sell"],
        "ppo",
    )
    assert meta.network.to_dict() == {
        "input": "observation",
        "shape": [6],
        "value": True,
        "policy": {"action_space": "discrete", "labelled": True},
    }
    assert meta.source["probe"]["rows"] == 256 and meta.source["probe"]["max_relative_diff"] < 1e-5
    assert set(meta.source["files"]) == {
        "model.zip",
        "model_metadata.json",
        "model_vecnormalize.pkl",
        "metadata.json",
    }
    assert meta.accepts_missing is False
    steps = json.loads(converted.bundle.files["preprocessing.json"])
    assert [s["op"] for s in steps["steps"]] == ["subtract", "divide", "clip"]
    assert steps["steps"][2] == {"op": "clip", "low": -10.0, "high": 10.0}


def test_observations_far_past_the_clip_answer_as_stable_baselines3():
    network = networks()["ppo_box"]
    loaded = LoadedModel(network.converted.bundle.metadata, network.converted.bundle.files)
    obs = np.random.default_rng(2).normal(scale=500, size=(64, 6)).astype(np.float32)
    actions, _, values = ppo_answers(network, obs.astype(np.float64))
    result = loaded.predict(obs.astype(np.float64))
    np.testing.assert_allclose(result.outputs, actions[:, 0], atol=1e-6)
    assert result.value is not None
    np.testing.assert_allclose(result.value, values, atol=1e-5 * max(1, abs(values).max()))


@pytest.mark.parametrize(
    ("info", "classes", "labelled"),
    [
        (
            {"type": "discrete", "n": 3, "action_names": {"0": "hold", "1": "buy", "2": "sell"}},
            ["hold", "buy", "sell"],
            True,
        ),
        ({"type": "discrete", "n": 3, "labels": ["short", "flat"]}, ["0", "1", "2"], False),
        ("Discrete(3)", ["0", "1", "2"], False),
    ],
)
def test_actions_are_named_where_action_space_info_names_them(
    tmp_path, discrete, info, classes, labelled
):
    model, venv = discrete
    folder = write_ppo_run(tmp_path / "run", model, venv, action_space_info=info)
    converted = convert_ppo(folder, model="x/ppo")
    assert converted.bundle.metadata.classes == classes
    network = converted.bundle.metadata.network
    assert network is not None and network.policy is not None
    assert network.policy.labelled is labelled


def test_action_space_info_that_counts_other_actions_is_refused(tmp_path, discrete):
    model, venv = discrete
    folder = write_ppo_run(tmp_path / "run", model, venv, action_space_info={"n": 5})
    with pytest.raises(NotConvertible, match="action_space_info says 5 actions, the policy has 3"):
        convert_ppo(folder, model="x/ppo")


def test_observations_wider_than_feature_names_are_named_by_column(tmp_path, discrete):
    # Seed 001's trading environment appends balance, position and PnL to the features
    model, venv = discrete
    folder = write_ppo_run(tmp_path / "run", model, venv, feature_names=["a", "b", "c"])
    converted = convert_ppo(folder, model="x/ppo")
    assert converted.bundle.metadata.feature_names == [f"feature_{i}" for i in range(6)]
    assert converted.warnings[0] == (
        "the observation's 6 columns are named feature_0 ... feature_5 (feature_names lists 3); "
        "send observations as lists in column order or by those names"
    )


def test_a_recorded_observation_shape_the_policy_does_not_take_is_refused(tmp_path, discrete):
    model, venv = discrete
    folder = write_ppo_run(tmp_path / "run", model, venv)
    info = json.loads((folder / "model_metadata.json").read_text())
    (folder / "model_metadata.json").write_text(json.dumps(info | {"observation_shape": [20, 9]}))
    with pytest.raises(
        NotConvertible, match=r"observation_shape \[20, 9\], the policy takes \[6\]"
    ):
        convert_ppo(folder, model="x/ppo")


def test_a_run_without_vecnormalize_sends_observations_as_they_are(tmp_path):
    model, _ = train_ppo(4, normalize=False, steps=64)
    folder = write_ppo_run(tmp_path / "run", model, None)
    converted = convert_ppo(folder, model="x/ppo")
    assert "preprocessing.json" not in converted.bundle.files
    assert converted.warnings == [
        "no model_vecnormalize.pkl: observations reach the policy as they are sent"
    ]


def test_a_zip_stable_baselines3_cannot_read_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(NotConvertible) as caught:
        convert_ppo(folder, model="x/ppo")
    assert caught.value.message.startswith(f"{folder}: stable-baselines3 cannot load model.zip: ")
