"""Novelty rewards on the features: how new is the place the last action led to?

Prediction error (curiosity.py) pays for anything the forward model predicts badly, which
includes a noisy TV and the agent's own jumps. These rewards ask another question: has the
robot seen something like f_{t+1} recently? The robot never resets, so the "episode" of
NGU/E3B becomes a sliding window of the last `window` steps.

- `EllipticalNovelty` (E3B): b = z^T C^-1 z, z the features standardised over the window and
  C = sum of z z^T over the window plus `ridge` * I. A source that keeps producing random
  features (a noisy TV) fills C in its own directions, so its bonus falls like that of any
  place seen often; a view off every direction seen so far stays expensive to explain.
- `EpisodicNovelty` (NGU's episodic memory, without its kernel): the mean squared distance
  to the k nearest neighbours in the window. A noisy TV keeps paying here: its frames stay
  far apart however often they are seen (measured in docs/learning.md).
- `FeatureRND` (RND on the features): the error of a trained predictor of a fixed random
  network's output; what has been seen often is predicted well.

Each scores every step against the memory as it was *before* that step (within a batch too),
then remembers it. Rewards are standardised like curiosity's: (raw - mean) / std over about
the last `norm_horizon` samples.
"""
from __future__ import annotations

import copy
from collections import deque

import numpy as np
import torch
from torch import nn

from ami_nodes.learning.running_stats import RunningMeanStd

NOVELTY_KINDS = ('elliptical', 'knn', 'rnd')


def standardised(raw: np.ndarray, stats: RunningMeanStd) -> np.ndarray:
    """Update `stats` with `raw`, then return (raw - mean) / std as float32."""
    stats.update(raw)
    return ((raw - stats.mean) / (stats.std + 1e-8)).astype(np.float32)


class _Window:
    """The last `size` feature vectors, oldest first."""

    def __init__(self, size: int) -> None:
        self.rows: deque[np.ndarray] = deque(maxlen=size)

    def array(self, dim: int) -> np.ndarray:
        return np.stack(self.rows) if self.rows else np.zeros((0, dim), np.float32)

    def extend(self, rows: np.ndarray) -> None:
        self.rows.extend(np.asarray(rows, np.float32))

    def state_dict(self) -> dict:
        return {'rows': torch.as_tensor(np.stack(self.rows)) if self.rows else torch.zeros(0),
                'size': self.rows.maxlen}

    def load_state_dict(self, state: dict) -> None:
        self.rows = deque(maxlen=int(state['size']))
        if state['rows'].numel():
            self.rows.extend(state['rows'].numpy())


def _scale(memory: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per dimension of the window (0 and 1 while it holds fewer than 2 rows)."""
    if memory.shape[0] < 2:
        return np.zeros(dim), np.ones(dim)
    return memory.mean(axis=0), memory.std(axis=0) + 1e-3


class _WindowNovelty:
    """A novelty whose model is the window itself: a subclass sets `memory` and `stats` and
    scores with `raw`, which also remembers what it scored."""

    memory: _Window
    stats: RunningMeanStd

    def raw(self, next_features: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def rewards(self, next_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raw = self.raw(next_features)
        return raw.astype(np.float32), standardised(raw, self.stats)

    def update(self, next_features: np.ndarray) -> float:
        return 0.0   # nothing to train: the window is the model

    def state_dict(self) -> dict:
        return {'memory': self.memory.state_dict(), 'stats': self.stats.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.memory.load_state_dict(state['memory'])
        self.stats.load_state_dict(state['stats'])


class EllipticalNovelty(_WindowNovelty):
    """E3B's elliptical bonus over a sliding window of standardised features."""

    def __init__(self, feature_dim: int, window: int = 6000, ridge: float = 0.1,
                 norm_horizon: int = 10_000) -> None:
        self.feature_dim = feature_dim
        self.ridge = ridge
        self.memory = _Window(window)
        self.stats = RunningMeanStd(horizon=norm_horizon)

    def raw(self, next_features: np.ndarray) -> np.ndarray:
        """Bonuses of each row in order, each against the window plus the rows before it; remembers them."""
        memory = self.memory.array(self.feature_dim)
        mean, std = _scale(memory, self.feature_dim)
        z_memory = (memory - mean) / std
        inverse = np.linalg.inv(z_memory.T @ z_memory + self.ridge * np.eye(self.feature_dim))
        bonuses = np.empty(len(next_features))
        for i, z in enumerate((np.asarray(next_features, np.float64) - mean) / std):
            projected = inverse @ z
            bonuses[i] = z @ projected
            inverse -= np.outer(projected, projected) / (1.0 + bonuses[i])   # Sherman-Morrison
        self.memory.extend(next_features)
        return bonuses


class EpisodicNovelty(_WindowNovelty):
    """Episodic novelty as in NGU, without its kernel: the mean squared distance (per feature
    dimension) from f_{t+1} to its `k` nearest neighbours in the window."""

    def __init__(self, feature_dim: int, window: int = 6000, k: int = 10, norm_horizon: int = 10_000) -> None:
        self.feature_dim = feature_dim
        self.k = k
        self.memory = _Window(window)
        self.stats = RunningMeanStd(horizon=norm_horizon)

    def raw(self, next_features: np.ndarray) -> np.ndarray:
        queries = torch.as_tensor(np.asarray(next_features, np.float32))
        known = torch.as_tensor(self.memory.array(self.feature_dim))
        n, remembered = queries.shape[0], known.shape[0]
        within = torch.cdist(queries, queries).pow(2)
        within.masked_fill_(~torch.ones(n, n, dtype=torch.bool).tril(-1), float('inf'))  # only earlier rows
        distances = torch.cat([torch.cdist(queries, known).pow(2), within], dim=1) / self.feature_dim
        k = min(self.k, max(remembered, 1))
        nearest = torch.topk(distances, k, dim=1, largest=False).values
        finite = torch.isfinite(nearest)
        bonuses = (nearest.where(finite, 0.0).sum(1) / finite.sum(1).clamp(min=1)).numpy().astype(np.float64)
        if remembered == 0:
            bonuses[0] = bonuses[1:].max(initial=1.0)   # the first frame ever: as new as anything seen
        self.memory.extend(next_features)
        return bonuses



def _mlp(feature_dim: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, out))


class FeatureRND:
    """Random network distillation with the features as input (standardised by a running
    per-dimension mean and std, as RND does with observations)."""

    def __init__(self, feature_dim: int, hidden: int = 128, out: int = 64, lr: float = 1e-3, epochs: int = 4,
                 minibatch_size: int = 64, norm_horizon: int = 10_000) -> None:
        self.target = _mlp(feature_dim, hidden, out).requires_grad_(False)
        self.predictor = _mlp(feature_dim, hidden, out)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=lr)
        self.epochs = epochs
        self.minibatch_size = minibatch_size
        self.input_mean = torch.zeros(feature_dim)
        self.input_var = torch.ones(feature_dim)
        self.input_count = 0.0
        self.norm_horizon = norm_horizon
        self.stats = RunningMeanStd(horizon=norm_horizon)

    def _inputs(self, next_features: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(next_features, np.float32))
        return ((x - self.input_mean) / (self.input_var.sqrt() + 1e-3)).clamp(-5.0, 5.0)

    def _errors(self, x: torch.Tensor) -> torch.Tensor:
        return (self.predictor(x) - self.target(x)).pow(2).mean(dim=-1)

    def rewards(self, next_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Errors of the predictor before it trains on these rows (the input statistics first
        take them in, so the very first batch is already on a unit scale)."""
        x = torch.as_tensor(np.asarray(next_features, np.float32))
        n = float(x.shape[0])
        total = self.input_count + n
        delta = x.mean(0) - self.input_mean
        self.input_mean = self.input_mean + delta * n / total
        self.input_var = (self.input_var * self.input_count + x.var(0, unbiased=False) * n
                          + delta.pow(2) * self.input_count * n / total) / total
        self.input_count = min(total, float(self.norm_horizon))
        with torch.no_grad():
            raw = self._errors(self._inputs(next_features)).numpy().astype(np.float64)
        return raw.astype(np.float32), standardised(raw, self.stats)

    def update(self, next_features: np.ndarray) -> float:
        x = self._inputs(next_features)
        losses = []
        for _ in range(self.epochs):
            for idx in torch.randperm(x.shape[0]).split(self.minibatch_size):
                loss = self._errors(x[idx]).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                losses.append(loss.item())
        return float(np.mean(losses)) if losses else 0.0

    def state_dict(self) -> dict:
        return copy.deepcopy({'target': self.target.state_dict(), 'predictor': self.predictor.state_dict(),
                              'optimizer': self.optimizer.state_dict(), 'input_mean': self.input_mean,
                              'input_var': self.input_var, 'input_count': self.input_count,
                              'stats': self.stats.state_dict()})

    def load_state_dict(self, state: dict) -> None:
        self.target.load_state_dict(state['target'])
        self.predictor.load_state_dict(state['predictor'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.input_mean, self.input_var = state['input_mean'], state['input_var']
        self.input_count = float(state['input_count'])
        self.stats.load_state_dict(state['stats'])


NoveltyReward = EllipticalNovelty | EpisodicNovelty | FeatureRND


def make_novelty(kind: str, feature_dim: int, window: int, norm_horizon: int = 10_000) -> NoveltyReward:
    """The novelty reward called `kind` (one of NOVELTY_KINDS); `window` steps of memory where it has one."""
    if kind == 'elliptical':
        return EllipticalNovelty(feature_dim, window, norm_horizon=norm_horizon)
    if kind == 'knn':
        return EpisodicNovelty(feature_dim, window, norm_horizon=norm_horizon)
    if kind == 'rnd':
        return FeatureRND(feature_dim, norm_horizon=norm_horizon)
    raise ValueError(f'novelty kind is {kind!r}; expected one of {NOVELTY_KINDS}')
