"""What the learner node calls: curiosity reward, then PPO, on rollouts from the robot.

Per ready batch: the forward model scores each step's surprise (before it learns from it),
trains on the batch, the chosen intrinsic reward (`intrinsic_reward`: the normalised surprise,
a novelty reward from novelty.py, or their sum) plus a weighted extrinsic reward becomes the
reward, and PPO updates the actor-critic, which is then exported as the next policy version.
The forward model trains whatever the choice, so its prediction error is always reported.
Training is gated on new data: nothing happens until `min_new_samples` steps have arrived.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.learning.curiosity import Curiosity
from ami_nodes.learning.experience import Rollout
from ami_nodes.learning.novelty import NOVELTY_KINDS, make_novelty
from ami_nodes.learning.ppo import PPOConfig, PPOTrainer, Segment
from ami_nodes.settings import assign, setting

PREDICTION_ERROR = 'prediction_error'
INTRINSIC_REWARDS: tuple[str, ...] = (PREDICTION_ERROR, *NOVELTY_KINDS,
                                      *(f'{kind}+{PREDICTION_ERROR}' for kind in NOVELTY_KINDS))


@dataclass
class LearnerConfig:
    """Settings are learner_node parameters of the same name (ami_nodes.settings)."""

    ppo: PPOConfig = field(default_factory=PPOConfig)
    hidden_size: int = setting(128, 'Hidden units of the actor-critic MLP (must match '
                               'policy_node)', 1, 65536)
    curiosity_hidden_size: int = setting(256, 'Hidden units of the forward-dynamics MLP',
                                         1, 65536)
    curiosity_learning_rate: float = setting(1e-3, 'Forward-dynamics Adam learning rate',
                                             0.0, 1.0, live=True)
    forward_epochs: int = 4  # the forward model sees each sample once per update; it needs more than one pass
    forward_minibatch_size: int = 64
    intrinsic_weight: float = setting(1.0, 'Weight of the curiosity reward', 0.0, 1000.0,
                                      live=True)
    # 0: the optional `reward` topic is logged but does not steer until a user weights it in
    extrinsic_weight: float = setting(0.0, 'Weight of the optional `reward` topic', 0.0, 1000.0,
                                      live=True)
    min_new_samples: int = setting(128, 'Train only when this many new samples arrived',
                                   1, 1000000, live=True)
    intrinsic_reward: str = setting(
        PREDICTION_ERROR, "Intrinsic reward: the forward model's prediction error, a novelty of "
        "the features ('elliptical', 'knn', 'rnd'; learning/novelty.py) or "
        "'<novelty>+prediction_error' (both standardised, summed)", choices=INTRINSIC_REWARDS)
    novelty_window: int = setting(6000, 'Steps a novelty reward remembers, its sliding "episode" '
                                  '(6000 = 5 min at 20 Hz)', 1, 10_000_000)


class CuriosityPPOLearner:
    """Forward-dynamics curiosity + PPO over rollouts of a continuing task."""

    def __init__(self, feature_dim: int = 64, action_dims: Sequence[int] = ACTION_DIMS,
                 config: LearnerConfig | None = None, device: torch.device | str = 'cpu') -> None:
        self.config = config or LearnerConfig()
        self.device = torch.device(device)
        cfg = self.config
        self.actor_critic = ActorCritic(feature_dim, action_dims, cfg.hidden_size).to(self.device)
        self.trainer = PPOTrainer(self.actor_critic, cfg.ppo)
        self.curiosity = Curiosity(feature_dim, action_dims, cfg.curiosity_hidden_size,
                                   cfg.curiosity_learning_rate,
                                   cfg.forward_epochs, cfg.forward_minibatch_size,
                                   device=self.device)
        if cfg.intrinsic_reward not in INTRINSIC_REWARDS:
            raise ValueError(f'intrinsic_reward is {cfg.intrinsic_reward!r}; expected one of {INTRINSIC_REWARDS}')
        parts = cfg.intrinsic_reward.split('+')
        self._pays_prediction_error = PREDICTION_ERROR in parts
        novelty = [part for part in parts if part != PREDICTION_ERROR]
        self.novelty = make_novelty(novelty[0], feature_dim, cfg.novelty_window) if novelty else None
        self._pending: list[Rollout] = []

    @property
    def version(self) -> int:
        """Version of the weights `policy_state_dict` returns."""
        return self.trainer.version

    @property
    def new_samples(self) -> int:
        return sum(len(r) for r in self._pending)

    def continue_above(self, version: int) -> bool:
        """Number the next weights above `version`, one a policy already acts with.

        After a restart from a checkpoint older than the weights the policy last received,
        the policy would refuse ours as stale and our trainer would drop its samples as
        coming from the future: both wait forever. Renumbering the restored weights past
        what is in use lets the policy adopt them; what was learned since the checkpoint
        is the part a crash loses. True when the version moved.
        """
        if version < self.trainer.version:
            return False
        self.trainer.version = version + 1
        return True

    def add(self, rollout: Rollout) -> None:
        if len(rollout):
            self._pending.append(rollout)

    def ready(self) -> bool:
        return self.new_samples >= self.config.min_new_samples

    def step(self) -> dict | None:
        """Train on everything added since the last step, if there is enough; else None."""
        if not self.ready():
            return None
        rollouts, self._pending = self._pending, []
        cfg = self.config
        features = torch.as_tensor(np.concatenate([r.features for r in rollouts]), device=self.device)
        actions = torch.as_tensor(np.concatenate([r.actions for r in rollouts]), device=self.device)
        next_features = torch.as_tensor(np.concatenate([r.next_features for r in rollouts]),
                                        device=self.device)
        extrinsic = np.concatenate([r.extrinsic_rewards for r in rollouts])
        raw, surprise = self.curiosity.rewards(features, actions, next_features)
        forward_loss = self.curiosity.update(features, actions, next_features)
        intrinsic = surprise if self._pays_prediction_error else np.zeros_like(surprise)
        novelty_stats = {}
        if self.novelty is not None:
            novelty_raw, novelty = self.novelty.rewards(next_features.cpu().numpy())
            novelty_stats = {'novelty_mean': float(novelty_raw.mean()),
                             'novelty_loss': self.novelty.update(next_features.cpu().numpy())}
            intrinsic = intrinsic + novelty
        rewards = cfg.intrinsic_weight * intrinsic + cfg.extrinsic_weight * extrinsic

        segments, start = [], 0
        for r in rollouts:
            end = start + len(r)
            no_end = np.zeros(len(r), dtype=bool)  # a continuing task; each segment's last step bootstraps
            segments.append(Segment(features=r.features, actions=r.actions, log_probs=r.log_probs,
                                    rewards=rewards[start:end], next_features=r.next_features,
                                    terminated=no_end, truncated=no_end, policy_versions=r.policy_versions))
            start = end
        stats = self.trainer.update(segments)
        return {
            **stats,
            'rollouts': len(rollouts),
            'rollouts_ending_at_gap': sum(r.ends_at_gap for r in rollouts),
            'forward_loss': forward_loss,
            'prediction_error_mean': float(raw.mean()),
            'intrinsic_reward_mean': float(intrinsic.mean()),
            **novelty_stats,
            'extrinsic_reward_mean': float(extrinsic.mean()),
            'reward_mean': float(rewards.mean()),
        }

    def update_setting(self, name: str, value: float | int) -> None:
        """Apply a changed live setting of LearnerConfig or PPOConfig from the next update on
        (learning rates reach the optimizers at once)."""
        if not assign(name, value, self.config, self.config.ppo):
            raise KeyError(f'{name} is not a learner setting')
        if name == 'learning_rate':
            self.trainer.set_learning_rate(value)
        elif name == 'curiosity_learning_rate':
            for group in self.curiosity.optimizer.param_groups:
                group['lr'] = value

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        """The actor-critic's weights as detached CPU copies: what goes over the wire, whatever
        device the learner trains on (each policy node moves them to its own device)."""
        return {k: v.detach().to('cpu', copy=True) for k, v in self.actor_critic.state_dict().items()}

    def state_dict(self) -> dict:
        state = {'trainer': self.trainer.state_dict(), 'curiosity': self.curiosity.state_dict(),
                 'pending': [r.state_dict() for r in self._pending]}
        if self.novelty is not None:
            state['novelty'] = self.novelty.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.trainer.load_state_dict(state['trainer'])
        self.curiosity.load_state_dict(state['curiosity'])
        if self.novelty is not None and 'novelty' in state:   # a checkpoint from another choice has none
            self.novelty.load_state_dict(state['novelty'])
        self._pending = [Rollout.from_state_dict(s) for s in state['pending']]
