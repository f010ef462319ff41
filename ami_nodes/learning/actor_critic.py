"""The policy and value networks for a multi-discrete action.

One independent categorical per action head (move, strafe, turn, jump, run by default), so a
joint action's log-probability is the sum over heads. Actor and critic are separate MLPs: a
shared trunk lets the value loss pull the policy's features around, which hurts PPO on small
problems, and two 64-d-input MLPs cost nothing next to the encoder.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from ami_nodes.action_space import ACTION_DIMS


class MultiCategorical:
    """Independent categoricals, one per head; log-prob and entropy are sums over heads."""

    def __init__(self, logits: torch.Tensor, action_dims: Sequence[int]) -> None:
        # validate_args=False: argument checks cost more than the sampling on the policy's hot path
        self.heads = [Categorical(logits=part, validate_args=False)
                      for part in torch.split(logits, list(action_dims), dim=-1)]

    def sample(self) -> torch.Tensor:
        return torch.stack([head.sample() for head in self.heads], dim=-1)

    def mode(self) -> torch.Tensor:
        return torch.stack([head.probs.argmax(dim=-1) for head in self.heads], dim=-1)

    def head_log_probs(self, actions: torch.Tensor) -> torch.Tensor:
        return torch.stack([head.log_prob(actions[..., i]) for i, head in enumerate(self.heads)], dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.head_log_probs(actions).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        return torch.stack([head.entropy() for head in self.heads], dim=-1).sum(dim=-1)


@dataclass(frozen=True)
class ActResult:
    """One decision: what the policy node publishes and the learner needs back."""

    action: np.ndarray  # int64, one index per head
    log_prob: float  # of the whole action under the behaviour policy
    head_log_probs: np.ndarray  # float32, per head (sums to log_prob)
    value: float


@dataclass(frozen=True)
class BatchActResult:
    """Decisions for a batch of feature vectors (vector environments, replay)."""

    actions: np.ndarray  # (B, heads) int64
    log_probs: np.ndarray  # (B,) float32
    head_log_probs: np.ndarray  # (B, heads) float32
    values: np.ndarray  # (B,) float32


def _mlp(in_dim: int, hidden: int, out_dim: int, out_gain: float) -> nn.Sequential:
    """Two tanh hidden layers with orthogonal init; a small output gain keeps the first
    policy near uniform and the first values near zero."""
    layers = [nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out_dim)]
    for layer in layers:
        if isinstance(layer, nn.Linear):
            gain = out_gain if layer is layers[-1] else float(np.sqrt(2.0))
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Maps a feature vector to a multi-discrete action distribution and a state value."""

    def __init__(self, feature_dim: int = 64, action_dims: Sequence[int] = ACTION_DIMS, hidden: int = 128) -> None:
        super().__init__()
        self.feature_dim = int(feature_dim)
        self.action_dims = tuple(int(d) for d in action_dims)
        self.actor = _mlp(self.feature_dim, hidden, sum(self.action_dims), out_gain=0.01)
        self.critic = _mlp(self.feature_dim, hidden, 1, out_gain=1.0)

    def distribution(self, features: torch.Tensor) -> MultiCategorical:
        return MultiCategorical(self.actor(features), self.action_dims)

    def value(self, features: torch.Tensor) -> torch.Tensor:
        return self.critic(features).squeeze(-1)

    def evaluate(self, features: torch.Tensor,
                 actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-prob of `actions`, entropy and value, with gradients: the PPO loss's inputs."""
        dist = self.distribution(features)
        return dist.log_prob(actions), dist.entropy(), self.value(features)

    def act_batch(self, features: np.ndarray, deterministic: bool = False) -> BatchActResult:
        """Sample (or take the most likely) actions for a (B, feature_dim) batch."""
        device = next(self.parameters()).device
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device).reshape(-1, self.feature_dim)
            dist = self.distribution(x)
            actions = dist.mode() if deterministic else dist.sample()
            head_lp = dist.head_log_probs(actions)
            return BatchActResult(
                actions=actions.cpu().numpy().astype(np.int64),
                log_probs=head_lp.sum(dim=-1).cpu().numpy(),
                head_log_probs=head_lp.cpu().numpy(),
                values=self.value(x).cpu().numpy(),
            )

    def act(self, features: np.ndarray, deterministic: bool = False) -> ActResult:
        """One decision for one feature vector: the policy node's hot path."""
        out = self.act_batch(np.asarray(features).reshape(1, self.feature_dim), deterministic)
        return ActResult(
            action=out.actions[0],
            log_prob=float(out.log_probs[0]),
            head_log_probs=out.head_log_probs[0],
            value=float(out.values[0]),
        )
