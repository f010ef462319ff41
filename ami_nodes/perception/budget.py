"""Choose how often to train (every K frames) so the mean perception step fits a time budget.

With a forward-only step costing `f` and a training step costing `t`, training every K frames
costs f + (t - f) / K per frame on average; the controller tracks f and t with running averages
and picks the smallest K whose predicted mean is under `headroom * budget_s`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class BudgetController:
    """Pure controller: feed it step times, read `train_every`."""

    budget_s: float
    train_every: int = 1
    min_every: int = 1
    max_every: int = 64
    headroom: float = 0.9
    smoothing: float = 0.05
    forward_s: float = field(default=0.0)
    train_s: float = field(default=0.0)

    def observe(self, step_time_s: float, trained: bool) -> int:
        """Record one step and return the (possibly new) train_every."""
        if trained:
            self.train_s = self._blend(self.train_s, step_time_s)
        else:
            self.forward_s = self._blend(self.forward_s, step_time_s)
        if self.train_s > 0.0:
            self.train_every = self._choose()
        return self.train_every

    def predicted_mean_s(self, train_every: int | None = None) -> float:
        """Mean step time expected when training every `train_every` frames."""
        k = train_every or self.train_every
        forward = self.forward_s if self.forward_s > 0.0 else self.train_s / 3.0
        return forward + max(self.train_s - forward, 0.0) / k

    def _choose(self) -> int:
        forward = self.forward_s if self.forward_s > 0.0 else self.train_s / 3.0
        room = self.headroom * self.budget_s - forward
        if room <= 0.0:
            return self.max_every
        k = math.ceil(max(self.train_s - forward, 0.0) / room)
        return int(min(max(k, self.min_every), self.max_every))

    def _blend(self, average: float, sample: float) -> float:
        return sample if average == 0.0 else (1.0 - self.smoothing) * average + self.smoothing * sample

    def state_dict(self) -> dict[str, float | int]:
        return {'budget_s': self.budget_s, 'train_every': self.train_every,
                'forward_s': self.forward_s, 'train_s': self.train_s}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.budget_s = float(state['budget_s'])
        self.train_every = int(state['train_every'])
        self.forward_s = float(state['forward_s'])
        self.train_s = float(state['train_s'])
