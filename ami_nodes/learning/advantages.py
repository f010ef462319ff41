"""Advantage and value targets for trajectory segments: GAE and V-trace.

Both take per-step `next_values`, the value of the state each step led to, instead of a single
bootstrap value: inside a segment it equals the next step's value, at the segment's end it is
the bootstrap, and at a time-limit truncation it is the value of the final observation (which
an auto-resetting environment does not hand back as the next step's state). `terminated`
means the episode truly ended (no value after it); `truncated` means it was cut (bootstrap,
but do not carry credit into the next episode). Tensors are (T, ...) with time first.
"""
from __future__ import annotations

import torch


def _backward_sum(terms: torch.Tensor, carry: torch.Tensor) -> torch.Tensor:
    """acc_t = terms_t + carry_t * acc_{t+1}, with acc_T = 0."""
    out = torch.empty_like(terms)
    acc = torch.zeros_like(terms[0])
    for t in range(terms.shape[0] - 1, -1, -1):
        acc = terms[t] + carry[t] * acc
        out[t] = acc
    return out


def _masks(terminated: torch.Tensor, truncated: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    alive = 1.0 - terminated.float()
    carry_on = alive * (1.0 - truncated.float())
    return alive, carry_on


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
                terminated: torch.Tensor, truncated: torch.Tensor,
                gamma: float, gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016). Returns (advantages, returns),
    where returns = advantages + values are the critic's targets."""
    alive, carry_on = _masks(terminated, truncated)
    deltas = rewards + gamma * alive * next_values - values
    advantages = _backward_sum(deltas, gamma * gae_lambda * carry_on)
    return advantages, advantages + values


def vtrace(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
           terminated: torch.Tensor, truncated: torch.Tensor, log_ratios: torch.Tensor,
           gamma: float, gae_lambda: float, rho_bar: float, c_bar: float) -> tuple[torch.Tensor, torch.Tensor]:
    """V-trace targets (Espeholt et al. 2018) for experience from an older policy.

    `log_ratios` = log pi(a|s) - log mu(a|s), current against behaviour policy. Each TD error is
    weighted by rho = min(rho_bar, pi/mu) and credit is carried back through
    c = lambda * min(c_bar, pi/mu), so a stale action's consequences count for less. Returns
    (value_targets, advantages) with advantages = r + gamma * v_{t+1} - V(s_t), IMPALA's
    policy-gradient advantage without its leading rho: PPO's clipped ratio pi/mu already is that
    importance weight. With pi = mu and rho_bar, c_bar >= 1 the value targets equal GAE's returns.
    """
    alive, carry_on = _masks(terminated, truncated)
    ratios = log_ratios.exp()
    rho = ratios.clamp(max=rho_bar)
    c = gae_lambda * ratios.clamp(max=c_bar)
    deltas = rewards + gamma * alive * next_values - values
    corrections = _backward_sum(rho * deltas, gamma * c * carry_on)
    value_targets = values + corrections
    following = torch.cat([corrections[1:], torch.zeros_like(corrections[:1])]) * carry_on
    advantages = rewards + gamma * alive * (next_values + following) - values
    return value_targets, advantages
