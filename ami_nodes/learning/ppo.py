"""PPO for experience that may come from older policy versions.

The policy node acts with whatever weights it last received, so each sample carries the
version that chose it, and the lag = trainer version - sample version. Samples with a lag
above `max_policy_lag` (or from a version newer than the trainer's, after a restore) are cut
from the loss; they still feed the advantage recursion of the steps before them, whose rewards
they are. The probability ratio in the clipped objective is against the *behaviour* log-prob,
so a lagged sample whose ratio already left [1 - clip, 1 + clip] gives no gradient. With
`vtrace=True`, advantages and value targets are V-trace's, whose truncated importance weights
discount stale actions' consequences. Values are always recomputed with the current critic:
behaviour-time values come from an older critic.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.learning.advantages import compute_gae, vtrace
from ami_nodes.settings import setting

__all__ = ['PPOConfig', 'Segment', 'PPOTrainer', 'clipped_surrogate_loss', 'compute_gae', 'vtrace']


@dataclass
class PPOConfig:
    """Defaults are for the live robot (20 Hz, 64-d features, continuing task). Settings are
    learner_node parameters of the same name (ami_nodes.settings)."""

    learning_rate: float = setting(3e-4, 'PPO Adam learning rate', 0.0, 1.0, live=True)
    gamma: float = setting(0.99, 'Discount factor of future rewards', 0.0, 1.0)
    gae_lambda: float = setting(0.95, 'GAE lambda: bias/variance trade-off of the advantages',
                                0.0, 1.0)
    clip: float = setting(0.2, 'PPO probability-ratio clip range', 0.0, 10.0)
    epochs: int = setting(4, 'PPO epochs per rollout batch', 1, 1000)
    minibatch_size: int = setting(64, 'PPO minibatch size', 1, 100000)
    entropy_coef: float = setting(0.01, 'Entropy bonus coefficient', 0.0, 10.0, live=True)
    value_coef: float = setting(0.5, 'Value loss weight', 0.0, 100.0, live=True)
    max_grad_norm: float = setting(0.5, 'Gradient clipping norm', 0.0, 1000.0, live=True)
    normalize_advantages: bool = True
    max_policy_lag: int = setting(4, 'Drop samples from policies more than N versions old',
                                  0, 1000000)
    vtrace: bool = setting(True, 'V-trace truncated importance weights on the targets')
    rho_bar: float = 1.0
    c_bar: float = 1.0
    adam_eps: float = 1e-5


@dataclass
class Segment:
    """Consecutive steps of one stream or one environment; converted to tensors on creation."""

    features: torch.Tensor  # (T, D)
    actions: torch.Tensor  # (T, heads) int64
    log_probs: torch.Tensor  # (T,) behaviour log-probs
    rewards: torch.Tensor  # (T,)
    next_features: torch.Tensor  # (T, D) the state each step led to
    terminated: torch.Tensor  # (T,) bool
    truncated: torch.Tensor  # (T,) bool
    policy_versions: torch.Tensor  # (T,) int64

    def __post_init__(self) -> None:
        for f in fields(self):
            dtype = {'actions': torch.int64, 'policy_versions': torch.int64,
                     'terminated': torch.bool, 'truncated': torch.bool}.get(f.name, torch.float32)
            value = getattr(self, f.name)
            setattr(self, f.name, torch.as_tensor(
                value if isinstance(value, torch.Tensor) else np.asarray(value), dtype=dtype))

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def to(self, device: torch.device) -> Segment:
        """The same segment with every tensor on `device` (where the networks train)."""
        return Segment(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def clipped_surrogate_loss(log_ratio: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's pessimistic objective, negated: a sample whose ratio pi/mu has already moved
    past 1 +- clip in the direction its advantage favours contributes no gradient."""
    ratio = log_ratio.exp()
    return torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)).mean()


def _explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    var = target.var(unbiased=False)
    return float('nan') if var == 0 else float(1.0 - (target - predicted).var(unbiased=False) / var)


class PPOTrainer:
    """Clipped-objective PPO over minibatches; one `update` makes one new policy version."""

    def __init__(self, actor_critic: ActorCritic, config: PPOConfig | None = None) -> None:
        config = config or PPOConfig()
        self.actor_critic = actor_critic
        self.config = config
        self.optimizer = torch.optim.Adam(actor_critic.parameters(), lr=config.learning_rate,
                                          eps=config.adam_eps)
        self.version = 0
        self.samples_trained = 0
        self.samples_dropped_lag = 0

    def set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group['lr'] = lr

    def _targets(self, seg: Segment) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(values, advantages, value targets) for one segment under the current networks."""
        cfg = self.config
        with torch.no_grad():
            values = self.actor_critic.value(seg.features)
            next_values = self.actor_critic.value(seg.next_features)
            if cfg.vtrace:
                log_ratios = self.actor_critic.distribution(seg.features).log_prob(seg.actions) - seg.log_probs
                returns, advantages = vtrace(seg.rewards, values, next_values, seg.terminated, seg.truncated,
                                             log_ratios, cfg.gamma, cfg.gae_lambda, cfg.rho_bar, cfg.c_bar)
            else:
                advantages, returns = compute_gae(seg.rewards, values, next_values, seg.terminated, seg.truncated,
                                                  cfg.gamma, cfg.gae_lambda)
        return values, advantages, returns

    def update(self, batch: Segment | Sequence[Segment]) -> dict:
        """Train on the batch and bump the version; returns diagnostics."""
        cfg = self.config
        device = next(self.actor_critic.parameters()).device
        segments = [s.to(device) for s in ([batch] if isinstance(batch, Segment) else batch) if len(s)]
        if not segments:
            return {'version': self.version, 'samples': 0, 'samples_used': 0, 'updated': False}
        parts = [self._targets(s) for s in segments]
        features = torch.cat([s.features for s in segments])
        actions = torch.cat([s.actions for s in segments])
        behaviour_lp = torch.cat([s.log_probs for s in segments])
        lag = self.version - torch.cat([s.policy_versions for s in segments])
        values = torch.cat([p[0] for p in parts])
        advantages = torch.cat([p[1] for p in parts])
        returns = torch.cat([p[2] for p in parts])

        keep = (lag >= 0) & (lag <= cfg.max_policy_lag)
        n_kept = int(keep.sum())
        stats = {
            'version': self.version,
            'samples': int(lag.numel()),
            'samples_used': n_kept,
            'samples_dropped_lag': int(lag.numel() - n_kept),
            'lag_mean': float(lag.float().mean()),
            'lag_max': int(lag.max()),
            'lag_histogram': [int((lag == k).sum()) for k in range(cfg.max_policy_lag + 1)] + [int((~keep).sum())],
            'explained_variance': _explained_variance(values[keep], returns[keep]) if n_kept else float('nan'),
            'return_mean': float(returns.mean()),
        }
        self.samples_dropped_lag += stats['samples_dropped_lag']
        if n_kept == 0:
            return {**stats, 'updated': False}
        features, actions, behaviour_lp = features[keep], actions[keep], behaviour_lp[keep]
        advantages, returns = advantages[keep], returns[keep]

        with torch.no_grad():
            start = self.actor_critic.evaluate(features, actions)[0] - behaviour_lp
            stats['behaviour_kl'] = float(((start.exp() - 1) - start).mean())
        stats.update(self._optimise(features, actions, behaviour_lp, advantages, returns))
        self.version += 1
        self.samples_trained += n_kept
        return {**stats, 'updated': True, 'new_version': self.version}

    def _optimise(self, features: torch.Tensor, actions: torch.Tensor, behaviour_lp: torch.Tensor,
                  advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        """`epochs` passes of minibatch steps; returns mean losses and the last epoch's KL."""
        cfg = self.config
        sums = {'policy_loss': 0.0, 'value_loss': 0.0, 'entropy': 0.0, 'clip_fraction': 0.0, 'grad_norm': 0.0}
        steps = 0
        for _ in range(cfg.epochs):
            kls = []
            for idx in torch.randperm(features.shape[0], device=features.device).split(cfg.minibatch_size):
                log_prob, entropy, value = self.actor_critic.evaluate(features[idx], actions[idx])
                log_ratio = log_prob - behaviour_lp[idx]
                adv = advantages[idx]
                if cfg.normalize_advantages and adv.numel() > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = clipped_surrogate_loss(log_ratio, adv, cfg.clip)
                value_loss = 0.5 * (value - returns[idx]).pow(2).mean()
                loss = policy_loss - cfg.entropy_coef * entropy.mean() + cfg.value_coef * value_loss
                self.optimizer.zero_grad()
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(self.actor_critic.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    ratio = log_ratio.exp()
                    kls.append(float(((ratio - 1) - log_ratio).mean()))
                    sums['clip_fraction'] += float(((ratio - 1).abs() > cfg.clip).float().mean())
                sums['policy_loss'] += policy_loss.item()
                sums['value_loss'] += value_loss.item()
                sums['entropy'] += entropy.mean().item()
                sums['grad_norm'] += float(grad_norm)
                steps += 1
        return {**{k: v / steps for k, v in sums.items()}, 'approx_kl': float(np.mean(kls))}

    def state_dict(self) -> dict:
        """A deep copy, so the snapshot stays as it was while training goes on (take it between updates)."""
        return copy.deepcopy({
            'model': self.actor_critic.state_dict(), 'optimizer': self.optimizer.state_dict(),
            'version': self.version, 'samples_trained': self.samples_trained,
            'samples_dropped_lag': self.samples_dropped_lag})

    def load_state_dict(self, state: dict) -> None:
        self.actor_critic.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.version = int(state['version'])
        self.samples_trained = int(state['samples_trained'])
        self.samples_dropped_lag = int(state['samples_dropped_lag'])
