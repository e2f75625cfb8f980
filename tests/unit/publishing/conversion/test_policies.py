"""Policies as torch modules for export: stable-baselines3's own forward path with predict()'s
post-processing (argmax of the probabilities, clipped box actions) and the critic's value;
policies the export does not cover are refused, named."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO

from tests.network_support import TradingEnv, train_ppo
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.policies import PolicyGraph, check_policy


@pytest.mark.parametrize("box", [False, True])
def test_the_graph_module_answers_what_predict_answers(box):
    model, _ = train_ppo(5, box=box, normalize=False, steps=64)
    if box:  # a freshly trained policy's means sit near 0: push some past the bounds
        with torch.no_grad():
            model.policy.action_net.weight *= 300.0
    graph = PolicyGraph(model.policy).eval()
    obs = np.random.default_rng(0).normal(scale=40, size=(50, 5)).astype(np.float32)
    actions, _ = model.predict(obs, deterministic=True)
    with torch.no_grad():
        tensor, _ = model.policy.obs_to_tensor(obs)
        output, value = graph(tensor)
        values = model.policy.predict_values(tensor)
    if box:
        np.testing.assert_array_equal(output.numpy(), actions)
        assert (output.abs() <= 1.0).all() and (output.abs() == 1.0).any()  # clipped
    else:
        np.testing.assert_array_equal(output.numpy().argmax(axis=1), actions)
        np.testing.assert_allclose(output.sum(dim=1).numpy(), 1.0, rtol=1e-6)
    assert torch.equal(value, values)


class DictEnv(TradingEnv):
    def __init__(self) -> None:
        super().__init__(3)
        self.observation_space = spaces.Dict({"x": spaces.Box(-1, 1, (3,))})


class MultiEnv(TradingEnv):
    def __init__(self) -> None:
        super().__init__(3)
        self.action_space = spaces.MultiDiscrete([2, 3])


@pytest.mark.parametrize(
    ("env", "policy", "message"),
    [
        (DictEnv, "MultiInputPolicy", r"the observation space is Dict\('x'"),
        (MultiEnv, "MlpPolicy", r"the action space is MultiDiscrete\(\[2 3\]\); Discrete or Box"),
    ],
)
def test_policies_the_export_does_not_cover_are_refused(env, policy, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PPO(policy, env(), n_steps=8, batch_size=8, device="cpu")
    with pytest.raises(NotConvertible, match=f"model.zip: {message}"):
        check_policy(model.policy, "model.zip")
