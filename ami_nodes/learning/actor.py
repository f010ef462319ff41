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
  'epsilon_greedy' acts with the `branching_q` algorithm's Q network (learning/branching_q.py):
  one decision every `decision_s`, each the network's greedy action or, with the probability
  epsilon that came with the weights (1 before any), the start of a held random action
  (holds.EpsilonHolds). Each decision is one step of experience, with log-prob and value 0:
  the Q learner is off-policy and reads neither.
- **Sticky time is frame time** (learning/holds.py): holds and decisions are measured on the
  stamps of the frames the actor is given.
- **Behaviour log-prob of the random modes** is the uniform log-prob. For 'sticky' that is the
  marginal probability of any action (the held action is uniform at every tick); the process
  is not Markov in the features, so no per-step conditional log-prob exists to report.
- **Weights are adopted without initialisation**: a model is built on the meta device and
  every tensor is taken from the decoded blob (`load_state_dict(assign=True)`). Building runs
  on a worker thread; `adopt` is a reference swap on the acting thread.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.learning.branching_q import BranchingQNetwork
from ami_nodes.learning.holds import EpsilonHolds, Hold, StickyRandom, hold_bounds_ns, uniform_action
from ami_nodes.learning.place_novelty import PlaceBandit

ACTION_MODES = ('sample', 'greedy', 'uniform', 'sticky', 'held_sample', 'held_bandit', 'epsilon_greedy')
#: What the learner trains and ships, and so what network the actor acts with.
ALGORITHMS = ('ppo', 'branching_q')
#: The action modes each algorithm acts in: PPO's actor-critic in every mode but the Q
#: network's, the Q network only in its own (a per-tick random mode would feed its learner
#: steps of another length than its decisions).
MODES_OF = {'ppo': tuple(m for m in ACTION_MODES if m != 'epsilon_greedy'), 'branching_q': ('epsilon_greedy',)}
#: Log-prob of one joint action under the uniform distribution over all of them.
UNIFORM_LOG_PROB = -float(np.log(np.prod(ACTION_DIMS)))


@dataclass(frozen=True)
class Decision:
    """One action and what the learner needs about the behaviour that chose it."""

    action: tuple[int, ...]
    log_prob: float
    value: float
    fresh: bool = True   # chosen at this tick; False while an earlier choice is held


class Actor:
    """The current policy and the action mode: features (and their stamp) in, a Decision out.

    Seeding: `seed` seeds torch (the initial weights and the policy's sampling; the actor owns
    its process's torch RNG) and a numpy Generator for the random modes.
    """

    def __init__(self, feature_dim: int, hidden_size: int, action_mode: str, seed: int,
                 device: torch.device | str = 'cpu', sticky_min_s: float = 0.25,
                 sticky_max_s: float = 2.0, algorithm: str = 'ppo', decision_s: float = 0.25) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f'algorithm {algorithm!r} is not one of {ALGORITHMS}')
        self.feature_dim, self.hidden_size = int(feature_dim), int(hidden_size)
        self.algorithm = algorithm
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self._rng = np.random.default_rng(seed)
        self.model = self._network().to(self.device).eval()
        self.action_mode = ''
        self.set_action_mode(action_mode)
        self._sticky = StickyRandom(self._rng, sticky_min_s, sticky_max_s)
        self._held_sample = Hold(self._rng, sticky_min_s, sticky_max_s)
        self._held_bandit = Hold(self._rng, sticky_min_s, sticky_max_s)
        self._decision = Hold(self._rng, decision_s, decision_s)
        self._explore = EpsilonHolds(self._rng, sticky_min_s, sticky_max_s)
        self.epsilon = 1.0   # the Q network's exploration rate; the learner ships it with each version
        self.place_bandit = PlaceBandit(self._rng)

    def _network(self) -> ActorCritic | BranchingQNetwork:
        if self.algorithm == 'branching_q':
            return BranchingQNetwork(self.feature_dim, ACTION_DIMS, self.hidden_size)
        return ActorCritic(self.feature_dim, ACTION_DIMS, self.hidden_size)

    def set_action_mode(self, mode: str) -> None:
        if mode not in MODES_OF[self.algorithm]:
            raise ValueError(f'action_mode {mode!r} is not one of {MODES_OF[self.algorithm]}, '
                             f'the modes of algorithm {self.algorithm!r}')
        self.action_mode = mode

    def set_sticky_range(self, min_s: float, max_s: float) -> None:
        """Bounds of a sticky, held_sample, held_bandit or exploring hold; the hold under way
        keeps the duration it drew."""
        for hold in (self._sticky.hold, self._held_sample, self._held_bandit, self._explore.hold):
            hold.min_ns, hold.max_ns = hold_bounds_ns(min_s, max_s)

    def set_decision_period(self, seconds: float) -> None:
        """The time between two epsilon_greedy decisions, from the next decision on."""
        self._decision.min_ns, self._decision.max_ns = hold_bounds_ns(seconds, seconds)

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
        if self.action_mode == 'epsilon_greedy':
            action, fresh = self._decision(stamp_ns, lambda: self._explore(
                stamp_ns, self.epsilon, lambda: self.model.best(features)[0])[0])
            return Decision(action, 0.0, 0.0, fresh)
        return self._from_model(features, self.action_mode == 'greedy')

    def _from_model(self, features: np.ndarray, deterministic: bool) -> Decision:
        result = self.model.act(features, deterministic=deterministic)
        return Decision(tuple(int(a) for a in result.action), result.log_prob, result.value)

    def build(self, tensors: Mapping[str, torch.Tensor]) -> ActorCritic | BranchingQNetwork:
        """A ready network holding exactly `tensors` (checked against the current model's
        tensor spec by the caller): no initialisation is paid for weights overwritten at once.
        ValueError when a tensor holds NaN or infinite values: such weights never act."""
        bad = [name for name, tensor in tensors.items() if not torch.isfinite(tensor).all()]
        if bad:
            raise ValueError(f'NaN or infinite values in {bad}')
        with torch.device('meta'):
            model = self._network()
        model.load_state_dict({k: v.to(self.device) for k, v in tensors.items()}, assign=True)
        return model.eval()

    def adopt(self, model: ActorCritic | BranchingQNetwork, epsilon: float | None = None) -> None:
        """Act with `model` (and a Q network's `epsilon`) from the next decision on (call
        between decisions)."""
        self.model = model
        if epsilon is not None:
            self.epsilon = epsilon

    def state(self) -> dict[str, torch.Tensor]:
        """The current weights, detached CPU copies (safe to save from another thread)."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def load_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self.model.load_state_dict(tensors)
