"""Factored Q-learning from a replay of every decision: a learner for sparse task rewards.

Per-tick PPO sees each of the target task's rare touches in one update and then drops it; in
15 minutes it does not learn the task with either encoder (docs/perception.md, "Downstream").
Q-learning from replay reuses every touch in many updates. The five action heads are branches
of one network (Tavakoli et al. 2018, "Action Branching Architectures"):
Q(f, a) = V(f) + sum_h (A_h(f, a_h) - mean A_h(f)), so the greedy joint action is each head's
argmax and the target's max splits per head. n-step returns, a target network and the
double-Q choice of the bootstrap action are DQN's standard parts. The input is layer-normed,
so encoders whose features differ in scale (trained, or frozen at init) get the same learner.

The replay keeps observations, and `encode` turns a batch of them into features when the batch
is drawn. Given frames and the current encoder, every update sees features of what the encoder
is now (DrQ and SPR re-encode their replay so): features stored as they were published go
stale while an online encoder trains, which the learner cannot tell from a change in the world.
By default the observations are the features themselves.

It explores as the sticky walker does: with probability epsilon a decision starts a uniformly
random action held for 0.25-2 s (temporally extended epsilon-greedy, Dabney et al. 2021); a
greedy policy that explores one decision at a time walks back into the wall it left.
"""
from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from ami_nodes.learning.actor import Hold, uniform_action


@dataclass
class BranchingQConfig:
    """One decision is one transition; `gamma` discounts per decision."""

    hidden_size: int = 128
    learning_rate: float = 5e-4
    gamma: float = 0.95
    n_step: int = 3
    batch_size: int = 64
    capacity: int = 100_000              # transitions; once full, each new one overwrites a random row
    updates_per_decision: int = 2
    warmup_decisions: int = 200          # no training before this many transitions
    target_sync: int = 250               # updates between target-network copies
    epsilon_final: float = 0.1
    epsilon_decisions: int = 720         # exploration falls linearly from 1 to epsilon_final
    explore_min_s: float = 0.25          # an exploring decision holds its random action this long
    explore_max_s: float = 2.0           # (uniform in between), as the sticky walker does
    max_grad_norm: float = 10.0


class BranchingQNetwork(nn.Module):
    """A shared trunk, a state value and one advantage vector per action head."""

    def __init__(self, feature_dim: int, action_dims: Sequence[int], hidden_size: int) -> None:
        super().__init__()
        self.action_dims = list(action_dims)
        self.trunk = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, hidden_size), nn.ReLU(),
                                   nn.Linear(hidden_size, hidden_size), nn.ReLU())
        self.value = nn.Linear(hidden_size, 1)
        self.advantages = nn.Linear(hidden_size, sum(self.action_dims))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B,) state values and, per head, (B, choices) advantages centred on their mean."""
        hidden = self.trunk(features)
        heads = torch.split(self.advantages(hidden), self.action_dims, dim=-1)
        return self.value(hidden).squeeze(-1), [a - a.mean(dim=-1, keepdim=True) for a in heads]

    def q(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q of the given joint actions (B, heads)."""
        value, heads = self(features)
        return value + sum(a.gather(-1, actions[:, i:i + 1]).squeeze(-1) for i, a in enumerate(heads))

    def greedy(self, features: torch.Tensor) -> torch.Tensor:
        """(B, heads) each head's best choice."""
        return torch.stack([a.argmax(dim=-1) for a in self(features)[1]], dim=-1)


class BranchingQLearner:
    """Transitions in, greedy actions and an exploration rate out; trains from replay."""

    def __init__(self, feature_dim: int, action_dims: Sequence[int], config: BranchingQConfig | None = None,
                 seed: int = 0, encode: Callable[[np.ndarray], torch.Tensor] | None = None) -> None:
        """`encode` maps a batch of observations to (B, feature_dim) features without gradients;
        None: the observations are features."""
        self.config = cfg = config or BranchingQConfig()
        self._encode = encode or (lambda observations: torch.as_tensor(observations, dtype=torch.float32))
        torch.manual_seed(seed)
        self._rng = np.random.default_rng(seed)
        self.network = BranchingQNetwork(feature_dim, action_dims, cfg.hidden_size)
        self.target = copy.deepcopy(self.network).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=cfg.learning_rate)
        self._observations = self._next_observations = np.zeros((0,))   # shaped by the first transition
        self._actions = np.zeros((cfg.capacity, len(action_dims)), np.int64)
        self._returns = np.zeros(cfg.capacity, np.float32)
        self._pending: deque[tuple[np.ndarray, np.ndarray, float]] = deque()
        self.size = self.decisions = self.updates = 0
        self._exploring = Hold(self._rng, cfg.explore_min_s, cfg.explore_max_s)

    def epsilon(self) -> float:
        """The probability of exploring at the next decision."""
        cfg = self.config
        return max(cfg.epsilon_final, 1.0 - (1.0 - cfg.epsilon_final) * self.decisions / cfg.epsilon_decisions)

    def act(self, features: np.ndarray, stamp_ns: int) -> tuple[int, ...]:
        """The action for a decision at `stamp_ns`: an exploring hold's, or greedy."""
        if self._exploring.holding(stamp_ns) or self._rng.random() < self.epsilon():
            return self._exploring(stamp_ns, lambda: uniform_action(self._rng))[0]
        return self.greedy(features)

    def greedy(self, features: np.ndarray) -> tuple[int, ...]:
        with torch.no_grad():
            return tuple(int(a) for a in self.network.greedy(torch.as_tensor(features)[None])[0])

    def observe(self, observation: np.ndarray, action: Sequence[int], reward: float,
                next_observation: np.ndarray) -> None:
        """One decision's transition; it enters the replay as an n-step return once n have followed."""
        self.decisions += 1
        self._pending.append((np.array(observation), np.asarray(action, np.int64), float(reward)))
        if len(self._pending) < self.config.n_step:
            return
        first_observation, first_action, _ = self._pending[0]
        if self.size == 0:   # np.zeros maps pages lazily: only the rows written take memory
            shape = (self.config.capacity, *first_observation.shape)
            self._observations = np.zeros(shape, first_observation.dtype)
            self._next_observations = np.zeros(shape, first_observation.dtype)
        index = (self.size if self.size < self.config.capacity
                 else int(self._rng.integers(self.config.capacity)))   # full: overwrite a random row
        self._observations[index], self._actions[index] = first_observation, first_action
        self._returns[index] = sum(self.config.gamma ** i * r for i, (_, _, r) in enumerate(self._pending))
        self._next_observations[index] = next_observation
        self.size = min(self.size + 1, self.config.capacity)
        self._pending.popleft()

    def train(self) -> float | None:
        """`updates_per_decision` updates on uniform replay batches; the mean loss, or None while warming up."""
        cfg = self.config
        if self.decisions < cfg.warmup_decisions or self.size == 0:
            return None
        losses = []
        for _ in range(cfg.updates_per_decision):
            rows = self._rng.integers(self.size, size=cfg.batch_size)
            with torch.no_grad():
                features, next_features = self._encode(
                    np.concatenate([self._observations[rows], self._next_observations[rows]])).chunk(2)
                bootstrap = self.target.q(next_features, self.network.greedy(next_features))
                target = torch.as_tensor(self._returns[rows]) + cfg.gamma ** cfg.n_step * bootstrap
            loss = functional.smooth_l1_loss(self.network.q(features, torch.as_tensor(self._actions[rows])), target)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.network.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.updates += 1
            if self.updates % cfg.target_sync == 0:
                self.target.load_state_dict(self.network.state_dict())
            losses.append(loss.item())
        return float(np.mean(losses))
