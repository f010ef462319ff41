"""A stateless preference over each action head's choices, learnt from one reward per decision.

PPO on a few hundred held decisions does not find even a perfect exploration reward
(docs/learning.md, "Why learning adds so little"). A bandit per head asks much less: which
choice of each head pays more on average, whatever the view; 13 running means instead of a
network, and every decision informs every head.

Thompson sampling with a Gaussian posterior per choice (Agrawal and Goyal 2013), on rewards
standardised by their running statistics: a choice is preferred as far as the evidence for it
goes. It still commits under rewards that ignore the action (after 500 decisions of pure
noise some heads sit at 0.7-0.99 on one choice, as they would for a gradient bandit), so a
head whose choice matters only in some places (turning) can lock onto a choice that is
wrong elsewhere. `plausible_z` replaces it with a confidence set (successive elimination,
Even-Dar et al. 2006): uniformly among the choices whose mean is within z standard errors of
the best, so choices the evidence cannot tell apart (left and right) stay mixed.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.novelty import standardised
from ami_nodes.learning.running_stats import RunningMeanStd


class HeadBandit:
    """Per head and choice: the mean standardised reward and its count, with a prior of one
    observation of 0 (so an untried choice samples from N(0, 1))."""

    def __init__(self, rng: np.random.Generator, dims: Sequence[int] = ACTION_DIMS,
                 plausible_z: float | None = None) -> None:
        self._rng = rng
        self.plausible_z = plausible_z
        self.counts = [np.zeros(size) for size in dims]
        self.means = [np.zeros(size) for size in dims]
        self.stats = RunningMeanStd()

    def act(self) -> tuple[int, ...]:
        """Each head's choice whose posterior sample is highest, or (plausible_z) one of its
        plausibly best choices."""
        if self.plausible_z is not None:
            return tuple(int(self._rng.choice(np.flatnonzero(plausible)))
                         for plausible in self._plausible())
        return tuple(int(np.argmax(self._rng.normal(mean, 1.0 / np.sqrt(count + 1.0))))
                     for mean, count in zip(self.means, self.counts))

    def _plausible(self) -> list[np.ndarray]:
        """Per head, the choices whose upper bound reaches the best lower bound."""
        out = []
        for mean, count in zip(self.means, self.counts):
            margin = self.plausible_z / np.sqrt(count + 1.0)
            out.append(mean + margin >= np.max(mean - margin))
        return out

    def probabilities(self, samples: int = 2000) -> list[np.ndarray]:
        """How often each choice would be taken now (Monte Carlo over the posteriors, or the
        uniform share of the plausible set)."""
        if self.plausible_z is not None:
            return [plausible / plausible.sum() for plausible in self._plausible()]
        out = []
        for mean, count in zip(self.means, self.counts):
            draws = self._rng.normal(mean, 1.0 / np.sqrt(count + 1.0), size=(samples, len(mean)))
            out.append(np.bincount(draws.argmax(axis=1), minlength=len(mean)) / samples)
        return out

    def update(self, action: Sequence[int], reward: float) -> None:
        """Fold one decision's reward into the taken choice of every head."""
        value = float(standardised(np.array([reward]), self.stats)[0])
        for mean, count, choice in zip(self.means, self.counts, action):
            count[choice] += 1.0
            mean[choice] += (value - mean[choice]) / (count[choice] + 1.0)   # the prior counts once
