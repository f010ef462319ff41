"""Curiosity: a forward model in feature space whose surprise is the intrinsic reward.

The reward for step t is how badly the model, *before* it trains on step t, predicted
f_{t+1} from (f_t, a_t). What it learns to predict stops paying, so the policy is pushed
towards what it cannot yet predict.

Normalisation: the raw error is standardised with the running mean and std of the error
itself, (e - mean) / std, over roughly the last `norm_horizon` samples (see RunningMeanStd).
Why a horizon: the untrained model's first errors are huge; remembered forever they would
inflate the mean and std and squash every later reward towards one value. Why the reward and not
the return (as RND does): the robot's task never ends, so adding a constant to every reward
changes no preference between policies, and removing the mean keeps the critic's targets
near zero instead of at mean/(1 - gamma), which a slowly drifting error level would turn into
a moving target. Dividing by the reward's own std makes the intrinsic reward one "standard
deviation of surprise" per step, a unit in which its weight against an extrinsic reward is
easy to set, and it needs no running discounted sum that a gap in the stream would corrupt.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.running_stats import RunningMeanStd


def one_hot_actions(actions: torch.Tensor, action_dims: Sequence[int]) -> torch.Tensor:
    """Batched form of `action_space.one_hot`: (B, heads) indices to (B, sum(dims)) floats."""
    parts = [nn.functional.one_hot(actions[..., i].long(), size) for i, size in enumerate(action_dims)]
    return torch.cat(parts, dim=-1).float()


class ForwardDynamics(nn.Module):
    """Predicts f_{t+1} from (f_t, one_hot(a_t)) as f_t plus a learnt change: staying put is
    the easy default, and the network spends its capacity on what the action changes."""

    def __init__(self, feature_dim: int = 64, action_dims: Sequence[int] = ACTION_DIMS, hidden: int = 256) -> None:
        super().__init__()
        self.action_dims = tuple(int(d) for d in action_dims)
        self.net = nn.Sequential(
            nn.Linear(feature_dim + sum(self.action_dims), hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, feature_dim),
        )

    def forward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, one_hot_actions(actions, self.action_dims)], dim=-1)
        return features + self.net(x)

    def errors(self, features: torch.Tensor, actions: torch.Tensor, next_features: torch.Tensor) -> torch.Tensor:
        """Per-sample squared error, averaged over feature dimensions: (B,)."""
        return (self(features, actions) - next_features).pow(2).mean(dim=-1)


class Curiosity:
    """Forward model, its optimiser and the reward normaliser, trained online."""

    def __init__(self, feature_dim: int = 64, action_dims: Sequence[int] = ACTION_DIMS, hidden: int = 256,
                 lr: float = 1e-3, epochs: int = 1, minibatch_size: int = 64, norm_horizon: int = 10_000,
                 device: torch.device | str = 'cpu') -> None:
        self.model = ForwardDynamics(feature_dim, action_dims, hidden).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.epochs = epochs
        self.minibatch_size = minibatch_size
        self.error_stats = RunningMeanStd(horizon=norm_horizon)

    def rewards(self, features: torch.Tensor, actions: torch.Tensor,
                next_features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Raw errors and normalised intrinsic rewards, with the model as it is now; updates the
        normaliser with these errors first, so the first batch is already on a unit scale."""
        with torch.no_grad():
            raw = self.model.errors(features, actions, next_features).cpu().numpy().astype(np.float64)
        self.error_stats.update(raw)
        normalised = (raw - self.error_stats.mean) / (self.error_stats.std + 1e-8)
        return raw.astype(np.float32), normalised.astype(np.float32)

    def update(self, features: torch.Tensor, actions: torch.Tensor, next_features: torch.Tensor) -> float:
        """Minibatch MSE steps on these transitions; returns the mean loss."""
        n = features.shape[0]
        losses = []
        for _ in range(self.epochs):
            for idx in torch.randperm(n, device=features.device).split(self.minibatch_size):
                loss = self.model.errors(features[idx], actions[idx], next_features[idx]).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                losses.append(loss.item())
        return float(np.mean(losses)) if losses else 0.0

    def state_dict(self) -> dict:
        """A deep copy, so the snapshot stays as it was while training goes on (take it between updates)."""
        return copy.deepcopy({'model': self.model.state_dict(), 'optimizer': self.optimizer.state_dict(),
                              'error_stats': self.error_stats.state_dict()})

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.error_stats.load_state_dict(state['error_stats'])
