"""The acting side of the policy: how one decision is made, and how new weights are adopted.

policy_node only wires this to topics. Three things live here so that no ROS module needs
torch internals:

- **Action modes.** 'sample' from the policy, 'greedy' (its most likely action), 'uniform'
  (a new uniformly random action every tick) and 'sticky' (a uniformly random action held for
  a random duration, drawn uniformly from [sticky_min_s, sticky_max_s]). The two random modes
  are the baselines curiosity is measured against; a held random action explores far more
  than one that changes every tick. 'held_sample' samples from the policy and holds what it
  drew for a sticky duration (temporally extended exploration, as ez-greedy does for random
  actions): each hold is one decision, and only decisions are experience (`Decision.fresh`),
  so the learner sees a semi-MDP whose steps are holds. 'held_bandit' holds as 'held_sample'
  does, but each hold is chosen by a PlaceBandit (a preference per action head, paid the
  novelty of the places the hold reached on a dead-reckoned position; `observe_velocity`
  feeds it), not by the network: PPO does not learn from a few hundred holds
  (docs/learning.md). Its experience carries the uniform log-prob, as 'sticky' does.
- **Sticky time is frame time.** A hold is measured on the stamps of the frames the actor is
  given (the camera's capture time), not on a tick counter or the wall clock: the duration
  then means the same thing at 5 Hz and at 30 Hz, and a replayed stream repeats it exactly.
  A frame stamped earlier than the hold's start (a restarted source) starts a new hold.
- **Behaviour log-prob of the random modes** is the uniform log-prob. For 'sticky' that is the
  marginal probability of any action (the held action is uniform at every tick); the process
  is not Markov in the features, so no per-step conditional log-prob exists to report.
- **Weights are adopted without initialisation**: a model is built on the meta device and
  every tensor is taken from the decoded blob (`load_state_dict(assign=True)`). Building runs
  on a worker thread; `adopt` is a reference swap on the acting thread.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.learning.place_novelty import PlaceBandit

ACTION_MODES = ('sample', 'greedy', 'uniform', 'sticky', 'held_sample', 'held_bandit')
#: Log-prob of one joint action under the uniform distribution over all of them.
UNIFORM_LOG_PROB = -float(np.log(np.prod(ACTION_DIMS)))


@dataclass(frozen=True)
class Decision:
    """One action and what the learner needs about the behaviour that chose it."""

    action: tuple[int, ...]
    log_prob: float
    value: float
    fresh: bool = True   # chosen at this tick; False while an earlier choice is held


Choice = TypeVar('Choice')


class Hold:
    """Keeps a choice for a duration uniform in [min_ns, max_ns] of frame-stamp time."""

    def __init__(self, rng: np.random.Generator, min_s: float, max_s: float) -> None:
        self._rng = rng
        self.min_ns, self.max_ns = hold_bounds_ns(min_s, max_s)
        self.choice = None
        self.hold_start_ns = 0
        self.hold_ns = 0

    def __call__(self, stamp_ns: int, choose: Callable[[], Choice]) -> tuple[Choice, bool]:
        """The held choice, or a new one from `choose` once the hold is over; and whether
        it is new."""
        if self.holding(stamp_ns):
            return self.choice, False
        self.choice = choose()
        self.hold_start_ns = stamp_ns
        self.hold_ns = int(self._rng.integers(self.min_ns, self.max_ns, endpoint=True))
        return self.choice, True

    def holding(self, stamp_ns: int) -> bool:
        """Whether a choice is held at `stamp_ns`."""
        return self.choice is not None and 0 <= stamp_ns - self.hold_start_ns < self.hold_ns


class StickyRandom:
    """Uniformly random actions, each held for a duration uniform in [min_ns, max_ns]."""

    def __init__(self, rng: np.random.Generator, min_s: float, max_s: float) -> None:
        self._rng = rng
        self.hold = Hold(rng, min_s, max_s)

    def __call__(self, stamp_ns: int) -> tuple[int, ...]:
        return self.hold(stamp_ns, lambda: uniform_action(self._rng))[0]


def hold_bounds_ns(min_s: float, max_s: float) -> tuple[int, int]:
    """A sticky hold's bounds in nanoseconds, or ValueError when they are not 0 < min <= max."""
    min_ns, max_ns = round(min_s * 1e9), round(max_s * 1e9)
    if not 0 < min_ns <= max_ns:
        raise ValueError(f'sticky_min_s ({min_s}) must be > 0 and <= sticky_max_s ({max_s})')
    return min_ns, max_ns


def uniform_action(rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(rng.integers(0, n)) for n in ACTION_DIMS)


class Actor:
    """The current policy and the action mode: features (and their stamp) in, a Decision out.

    Seeding: `seed` seeds torch (the initial weights and the policy's sampling; the actor owns
    its process's torch RNG) and a numpy Generator for the random modes.
    """

    def __init__(self, feature_dim: int, hidden_size: int, action_mode: str, seed: int,
                 device: torch.device | str = 'cpu', sticky_min_s: float = 0.25,
                 sticky_max_s: float = 2.0) -> None:
        self.feature_dim, self.hidden_size = int(feature_dim), int(hidden_size)
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self._rng = np.random.default_rng(seed)
        self.model = ActorCritic(self.feature_dim, ACTION_DIMS, self.hidden_size).to(
            self.device).eval()
        self.action_mode = ''
        self.set_action_mode(action_mode)
        self._sticky = StickyRandom(self._rng, sticky_min_s, sticky_max_s)
        self._held_sample = Hold(self._rng, sticky_min_s, sticky_max_s)
        self._held_bandit = Hold(self._rng, sticky_min_s, sticky_max_s)
        self.place_bandit = PlaceBandit(self._rng)

    def set_action_mode(self, mode: str) -> None:
        if mode not in ACTION_MODES:
            raise ValueError(f'action_mode {mode!r} is not one of {ACTION_MODES}')
        self.action_mode = mode

    def set_sticky_range(self, min_s: float, max_s: float) -> None:
        """Bounds of a sticky, held_sample or held_bandit hold; the hold under way keeps the duration
        it drew."""
        for hold in (self._sticky.hold, self._held_sample, self._held_bandit):
            hold.min_ns, hold.max_ns = hold_bounds_ns(min_s, max_s)

    def decide(self, features: np.ndarray, stamp_ns: int) -> Decision:
        """One decision for the frame captured at `stamp_ns`."""
        if self.action_mode == 'uniform':
            return Decision(uniform_action(self._rng), UNIFORM_LOG_PROB, 0.0)
        if self.action_mode == 'sticky':
            return Decision(self._sticky(stamp_ns), UNIFORM_LOG_PROB, 0.0)
        if self.action_mode == 'held_sample':
            decision, fresh = self._held_sample(stamp_ns, lambda: self._from_model(features, False))
            return replace(decision, fresh=fresh)
        if self.action_mode == 'held_bandit':
            action, fresh = self._held_bandit(stamp_ns, self.place_bandit.choose)
            return Decision(action, UNIFORM_LOG_PROB, 0.0, fresh)
        return self._from_model(features, self.action_mode == 'greedy')

    def _from_model(self, features: np.ndarray, deterministic: bool) -> Decision:
        result = self.model.act(features, deterministic=deterministic)
        return Decision(tuple(int(a) for a in result.action), result.log_prob, result.value)

    def build(self, tensors: Mapping[str, torch.Tensor]) -> ActorCritic:
        """A ready model holding exactly `tensors` (checked against the current model's
        tensor spec by the caller): no initialisation is paid for weights overwritten at once.
        ValueError when a tensor holds NaN or infinite values: such weights never act."""
        bad = [name for name, tensor in tensors.items() if not torch.isfinite(tensor).all()]
        if bad:
            raise ValueError(f'NaN or infinite values in {bad}')
        with torch.device('meta'):
            model = ActorCritic(self.feature_dim, ACTION_DIMS, self.hidden_size)
        model.load_state_dict({k: v.to(self.device) for k, v in tensors.items()}, assign=True)
        return model.eval()

    def adopt(self, model: ActorCritic) -> None:
        """Act with `model` from the next decision on (call between decisions)."""
        self.model = model

    def state(self) -> dict[str, torch.Tensor]:
        """The current weights, detached CPU copies (safe to save from another thread)."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def load_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self.model.load_state_dict(tensors)
