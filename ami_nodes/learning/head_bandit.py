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


class ContextualHeadBandit:
    """Linear Thompson sampling (Agrawal and Goyal 2013) per head and choice, on the features
    the decision was made from: a preference that can depend on the view (turn when facing a
    wall, run when the way is open), which HeadBandit cannot express.

    Per choice, a ridge regression of the standardised reward on the standardised context plus
    a bias, kept as its inverse Gram matrix (Sherman-Morrison updates); a choice is scored by
    its posterior mean at the context plus `scale` posterior standard deviations times a normal
    draw, and the best score is taken."""

    def __init__(self, rng: np.random.Generator, context_dim: int, dims: Sequence[int] = ACTION_DIMS,
                 ridge: float = 1.0, scale: float = 1.0) -> None:
        self._rng = rng
        self.scale = scale
        size = context_dim + 1
        self.inverse_gram = [np.repeat(np.eye(size)[None] / ridge, n, axis=0) for n in dims]
        self.moment = [np.zeros((n, size)) for n in dims]
        self.stats = RunningMeanStd()
        self._context_count = 0
        self._context_mean = np.zeros(context_dim)
        self._context_m2 = np.zeros(context_dim)
        self._last_context = np.append(np.zeros(context_dim), 1.0)

    def context(self, features: np.ndarray) -> np.ndarray:
        """`features` standardised by the running mean and std of every context seen, plus a bias."""
        std = np.sqrt(self._context_m2 / max(self._context_count, 1)) + 1e-6
        scaled = (np.asarray(features, np.float64) - self._context_mean) / std if self._context_count > 1 \
            else np.zeros(len(self._context_mean))
        return np.append(scaled, 1.0)

    def act(self, features: np.ndarray) -> tuple[int, ...]:
        """Each head's best choice at `features` under one posterior draw; the context is kept
        for the `update` of this decision."""
        x = self._last_context = self.context(features)
        self._observe(np.asarray(features, np.float64))
        out = []
        for inverse, moment in zip(self.inverse_gram, self.moment):
            spread = np.sqrt(np.einsum('i,cij,j->c', x, inverse, x))
            mean = np.einsum('cij,cj,i->c', inverse, moment, x)
            out.append(int(np.argmax(mean + self.scale * spread * self._rng.standard_normal(len(mean)))))
        return tuple(out)

    def update(self, action: Sequence[int], reward: float) -> None:
        """Fold the last decision's reward, at its context, into the taken choice of every head."""
        value = float(standardised(np.array([reward]), self.stats)[0])
        context = self._last_context
        for inverse, moment, choice in zip(self.inverse_gram, self.moment, action):
            a = inverse[choice]
            ax = a @ context
            inverse[choice] = a - np.outer(ax, ax) / (1.0 + context @ ax)
            moment[choice] += value * context

    def _observe(self, features: np.ndarray) -> None:
        """Welford's update of the context mean and spread."""
        self._context_count += 1
        delta = features - self._context_mean
        self._context_mean += delta / self._context_count
        self._context_m2 += delta * (features - self._context_mean)
