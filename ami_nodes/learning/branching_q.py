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
By default the observations are the features themselves. It is a ring of decisions, oldest
overwritten first, each observation kept once (the n-step successor of a decision is the
decision n slots on), so at 84x84 a decision costs 21 KB.

It explores as the sticky walker does: with probability epsilon a decision starts a uniformly
random action held for 0.25-2 s (`holds.EpsilonHolds`); live, policy_node explores so, with the
epsilon the learner ships beside the network's weights.
"""
from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from ami_nodes.learning.holds import EpsilonHolds
from ami_nodes.settings import setting


@dataclass
class BranchingQConfig:
    """One decision is one transition; `q_gamma` discounts per decision. Settings are
    learner_node parameters of the same name (ami_nodes.settings)."""

    q_hidden_size: int = setting(128, 'branching_q: hidden units of the Q network (must match '
                                 'policy_node hidden_size)', 1, 65536)
    q_learning_rate: float = setting(5e-4, 'branching_q: Adam learning rate', 0.0, 1.0, live=True)
    q_gamma: float = setting(0.95, 'branching_q: discount per decision', 0.0, 1.0, live=True)
    q_n_step: int = setting(3, 'branching_q: decisions summed into one return before bootstrapping',
                            1, 1000)
    q_batch_size: int = setting(64, 'branching_q: transitions per update', 1, 65536)
    q_capacity: int = setting(20_000, 'branching_q: decisions the replay keeps, oldest overwritten '
                              'first (84x84 frames: 21 KB each, in memory and in checkpoints; '
                              '20,000 = 83 min at 4 Hz)', 16, 10**8)
    q_updates_per_decision: int = setting(2, 'branching_q: updates per decision that arrives',
                                          1, 1000, live=True)
    q_warmup_decisions: int = setting(200, 'branching_q: no training before this many decisions',
                                      0, 10**9)
    q_target_sync: int = setting(250, 'branching_q: updates between target-network copies', 1, 10**9)
    epsilon_final: float = setting(0.1, 'branching_q: exploration rate after epsilon_decisions',
                                   0.0, 1.0, live=True)
    epsilon_decisions: int = setting(720, 'branching_q: decisions over which the exploration rate '
                                     'falls linearly from 1 to epsilon_final (720 = 3 min at 4 Hz)',
                                     1, 10**9, live=True)
    explore_min_s: float = 0.25          # an exploring decision holds its random action this long
    explore_max_s: float = 2.0           # (uniform in between), as the sticky walker does
    max_grad_norm: float = 10.0


def epsilon_at(config: BranchingQConfig, decisions: int) -> float:
    """The exploration rate after `decisions` decisions."""
    fallen = (1.0 - config.epsilon_final) * decisions / config.epsilon_decisions
    return max(config.epsilon_final, 1.0 - fallen)


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

    def best(self, features: np.ndarray | torch.Tensor) -> tuple[tuple[int, ...], float]:
        """The greedy joint action for one feature vector (on this network's device), and its Q."""
        with torch.no_grad():
            value, heads = self(torch.as_tensor(features, dtype=torch.float32)[None])
            action = tuple(int(a.argmax(dim=-1)[0]) for a in heads)
            return action, float(value[0] + sum(a.max(dim=-1).values[0] for a in heads))


class BranchingQLearner:
    """Transitions in, greedy actions and an exploration rate out; trains from replay."""

    def __init__(self, feature_dim: int, action_dims: Sequence[int], config: BranchingQConfig | None = None,
                 seed: int = 0, encode: Callable[[np.ndarray], torch.Tensor] | None = None,
                 device: torch.device | str = 'cpu', cache_features: bool = False) -> None:
        """`encode` maps a batch of observations to (B, feature_dim) features without gradients,
        on any device; None: the observations are features. `cache_features`: keep each slot's
        features until `encoder_changed` (for an encoder that changes now and then, not at every
        update): a slot drawn again is not encoded again."""
        self.config = cfg = config or BranchingQConfig()
        self.device = torch.device(device)
        self._encode = encode or (lambda observations: torch.as_tensor(observations, dtype=torch.float32))
        torch.manual_seed(seed)
        self._rng = np.random.default_rng(seed)
        self.network = BranchingQNetwork(feature_dim, action_dims, cfg.q_hidden_size).to(self.device)
        self.target = copy.deepcopy(self.network).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=cfg.q_learning_rate)
        # The ring of decisions: slot s holds one observation, the action taken on it and, once
        # n decisions have followed in the same chain, the n-step return (`_valid`); its successor
        # is slot s + n. Observations are shaped by the first one.
        self._observations = np.zeros((0,))
        self._actions = np.zeros((cfg.q_capacity, len(action_dims)), np.int64)
        self._returns = np.zeros(cfg.q_capacity, np.float32)
        self._valid = np.zeros(cfg.q_capacity, bool)
        self._written = 0               # slots ever written; the newest is (_written - 1) % capacity
        self._chain_open = False        # the newest slot holds the observation the next decision starts from
        self._pending: deque[tuple[int, float]] = deque()   # (slot, reward) of decisions awaiting n successors
        self.size = self.decisions = self.updates = 0
        self._explore = EpsilonHolds(self._rng, cfg.explore_min_s, cfg.explore_max_s)
        self._cache = torch.zeros((cfg.q_capacity, feature_dim), device=self.device) if cache_features else None
        self._cached_with = np.full(cfg.q_capacity, -1, np.int64)   # the encoder version of each cached slot
        self.encoder_version = 0
        self.encoded = 0   # observations encoded in all (the cost a cache saves)

    def epsilon(self) -> float:
        """The probability of exploring at the next decision."""
        return epsilon_at(self.config, self.decisions)

    def act(self, features: np.ndarray, stamp_ns: int) -> tuple[int, ...]:
        """The action for a decision at `stamp_ns`: an exploring hold's, or greedy."""
        return self._explore(stamp_ns, self.epsilon(), lambda: self.greedy(features))[0]

    def greedy(self, features: np.ndarray) -> tuple[int, ...]:
        return self.network.best(torch.as_tensor(features, dtype=torch.float32, device=self.device))[0]

    def observe(self, observation: np.ndarray, action: Sequence[int], reward: float,
                next_observation: np.ndarray) -> None:
        """One decision's transition; it enters the replay as an n-step return once n have followed.
        `observation` is the previous call's `next_observation` unless `break_chain` came between."""
        self.decisions += 1
        if not self._chain_open:
            self._write(observation)
        slot = (self._written - 1) % self.config.q_capacity
        self._actions[slot] = np.asarray(action, np.int64)
        self._pending.append((slot, float(reward)))
        self._write(next_observation)
        self._chain_open = True
        if len(self._pending) < self.config.q_n_step:
            return
        first = self._pending[0][0]
        self._returns[first] = sum(self.config.q_gamma ** i * r for i, (_, r) in enumerate(self._pending))
        self._valid[first] = True
        self.size += 1
        self._pending.popleft()

    def break_chain(self) -> None:
        """The next decision does not follow the last one (a lost message, a restart): decisions
        still waiting for n successors never get them and are not trained on."""
        self._pending.clear()
        self._chain_open = False

    def _write(self, observation: np.ndarray) -> None:
        """Put `observation` in the next slot, giving up the oldest decision once the ring is full."""
        observation = np.asarray(observation)
        if self._written == 0:   # np.zeros maps pages lazily: only the slots written take memory
            self._observations = np.zeros((self.config.q_capacity, *observation.shape), observation.dtype)
        slot = self._written % self.config.q_capacity
        self._cached_with[slot] = -1
        if self._valid[slot]:
            self._valid[slot] = False
            self.size -= 1
        self._observations[slot] = observation
        self._written += 1

    def train(self) -> float | None:
        """`q_updates_per_decision` updates on uniform replay batches; the mean loss, or None
        while warming up."""
        cfg = self.config
        if self.decisions < cfg.q_warmup_decisions or self.size == 0:
            return None
        return float(np.mean([self.update() for _ in range(cfg.q_updates_per_decision)]))

    def update(self) -> float:
        """One update on a uniform batch of the replay's transitions (it must hold one); the loss."""
        cfg = self.config
        valid = np.flatnonzero(self._valid)
        rows = valid[self._rng.integers(len(valid), size=cfg.q_batch_size)]
        successors = (rows + cfg.q_n_step) % cfg.q_capacity
        with torch.no_grad():
            features, next_features = self._features(np.concatenate([rows, successors])).chunk(2)
            bootstrap = self.target.q(next_features, self.network.greedy(next_features))
            target = torch.as_tensor(self._returns[rows], device=self.device) + cfg.q_gamma ** cfg.q_n_step * bootstrap
        actions = torch.as_tensor(self._actions[rows], device=self.device)
        loss = functional.smooth_l1_loss(self.network.q(features, actions), target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.network.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        if self.updates % cfg.q_target_sync == 0:
            self.target.load_state_dict(self.network.state_dict())
        return loss.item()

    def _features(self, slots: np.ndarray) -> torch.Tensor:
        """Features of the observations in `slots`, encoded now or (with the cache) since the
        encoder last changed."""
        if self._cache is None:
            self.encoded += len(slots)
            return self._encode(self._observations[slots]).to(self.device)
        stale = np.unique(slots[self._cached_with[slots] != self.encoder_version])
        if len(stale):
            self._cache[stale] = self._encode(self._observations[stale]).to(self.device)
            self._cached_with[stale] = self.encoder_version
            self.encoded += len(stale)
        return self._cache[slots]

    def encoder_changed(self) -> None:
        """The observations' features are not what they were: cached ones are encoded again."""
        self.encoder_version += 1

    def set_learning_rate(self, rate: float) -> None:
        for group in self.optimizer.param_groups:
            group['lr'] = rate

    def network_state_dict(self) -> dict[str, torch.Tensor]:
        """The online network's weights, detached CPU copies (what a policy acts with)."""
        return {k: v.detach().to('cpu', copy=True) for k, v in self.network.state_dict().items()}

    def state_dict(self) -> dict:
        """Networks, optimizer, counters and the written part of the replay (a deep copy)."""
        kept = min(self._written, self.config.q_capacity)
        return copy.deepcopy({
            'config': asdict(self.config),
            'network': self.network.state_dict(), 'target': self.target.state_dict(),
            'optimizer': self.optimizer.state_dict(),
            'counters': {'decisions': self.decisions, 'updates': self.updates, 'written': self._written},
            'replay': {'observations': torch.from_numpy(self._observations[:kept]) if kept else torch.zeros(0),
                       'actions': torch.from_numpy(self._actions[:kept]),
                       'returns': torch.from_numpy(self._returns[:kept]),
                       'valid': torch.from_numpy(self._valid[:kept])},
        })

    def load_state_dict(self, state: dict) -> None:
        """Resume from `state_dict`'s output; a replay saved with another capacity keeps its
        newest decisions that fit, one saved with another q_n_step is dropped (its returns sum
        another number of rewards). The chain restarts: the next decision follows none."""
        self.network.load_state_dict(state['network'])
        self.target.load_state_dict(state['target'])   # both stay on this learner's device
        self.optimizer.load_state_dict(state['optimizer'])
        counters, replay, saved = state['counters'], state['replay'], state['config']
        self.decisions, self.updates = int(counters['decisions']), int(counters['updates'])
        self._valid[:] = False
        self._cached_with[:] = -1
        self._written = self.size = 0
        self.break_chain()
        kept, n = len(replay['actions']), self.config.q_n_step
        if not kept or int(saved['q_n_step']) != n:
            return
        written = int(counters['written'])
        order = (np.arange(written - kept, written) % int(saved['q_capacity']))[-self.config.q_capacity:]
        observations = replay['observations'].numpy()
        self._observations = np.zeros((self.config.q_capacity, *observations.shape[1:]), observations.dtype)
        self._observations[:len(order)] = observations[order]
        self._actions[:len(order)] = replay['actions'].numpy()[order]
        self._returns[:len(order)] = replay['returns'].numpy()[order]
        # a decision is trainable only with its successor, n slots on, in the replay too
        self._valid[:len(order)] = replay['valid'].numpy()[order] & (np.arange(len(order)) + n < len(order))
        self._written = len(order)
        self.size = int(self._valid.sum())
