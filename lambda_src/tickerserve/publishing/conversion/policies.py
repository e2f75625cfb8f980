"""A stable-baselines3 actor-critic policy as an exportable torch module.

As stable-baselines3's documentation exports a policy ("Exporting models", ``OnnxableSB3Policy``
around ``policy(observation, deterministic=True)``), with the post-processing its
``predict(deterministic=True)`` does (which that example leaves out) and the distribution the
answer reports:

- ``Discrete``: the action probabilities (the softmax of the action logits; the
  deterministic action is their argmax, as ``CategoricalDistribution.mode`` takes it);
- ``Box``: the distribution's mean, clipped to the space's bounds (``predict`` clips), or
  squashed and unscaled for a policy that squashes its output;
- the critic's value (``value_net`` on the critic's latent).

The path is ``ActorCriticPolicy.forward``'s own: ``extract_features`` (the observation's
preprocessing and the features extractor), ``mlp_extractor``, ``action_net``, ``value_net``.
Needs torch and stable-baselines3 (the ``networks`` extra).
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from tickerserve.publishing.conversion import NotConvertible


class PolicyGraph(nn.Module):
    """``observation -> (output, value)``: probabilities or the clipped action, and the value."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        self.policy = policy
        space = policy.action_space
        self.discrete = isinstance(space, spaces.Discrete)
        self.squash = bool(getattr(policy, "squash_output", False))
        if not self.discrete:
            self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(space.high, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        policy = self.policy
        features = policy.extract_features(obs)
        if policy.share_features_extractor:
            latent_pi, latent_vf = policy.mlp_extractor(features)
        else:
            pi_features, vf_features = features
            latent_pi = policy.mlp_extractor.forward_actor(pi_features)
            latent_vf = policy.mlp_extractor.forward_critic(vf_features)
        value = policy.value_net(latent_vf)
        mean = policy.action_net(latent_pi)
        if self.discrete:
            return torch.softmax(mean, dim=1), value
        low, high = self.get_buffer("low"), self.get_buffer("high")
        if self.squash:  # unscale_action(tanh(mean)), as predict() does for squashed output
            action = low + 0.5 * (torch.tanh(mean) + 1.0) * (high - low)
        else:
            action = torch.minimum(torch.maximum(mean, low), high)
        return action, value


def check_policy(policy: Any, label: object) -> None:
    """What the export covers: an actor-critic policy over a Box observation (one or two
    axes), with a Discrete or Box action space; anything else is refused, named."""
    from stable_baselines3.common.policies import ActorCriticPolicy

    if not isinstance(policy, ActorCriticPolicy):
        raise NotConvertible(f"{label}: the policy is a {type(policy).__name__}, not actor-critic")
    observation = policy.observation_space
    if not isinstance(observation, spaces.Box) or not 1 <= len(observation.shape) <= 2:
        raise NotConvertible(
            f"{label}: the observation space is {observation}; a Box of one or two axes is "
            "converted"
        )
    action = policy.action_space
    if not isinstance(action, spaces.Discrete | spaces.Box):
        raise NotConvertible(f"{label}: the action space is {action}; Discrete or Box is converted")
    if isinstance(action, spaces.Box) and len(action.shape) != 1:
        raise NotConvertible(f"{label}: a Box action of shape {action.shape} is not converted")
