"""Running mean and variance of a stream, for normalising rewards whose scale drifts."""
from __future__ import annotations

import numpy as np


class RunningMeanStd:
    """Mean and variance of a stream, merged batch by batch.

    Batches are merged with the parallel-variance formula (Chan et al.), so the estimate is
    exact whatever the batch sizes. With `horizon` set, the count stops growing there and older
    samples fade geometrically: a learner that runs for hours should compare today's values with
    the recent past, not with its clumsy first minutes.
    """

    def __init__(self, epsilon: float = 1e-4, horizon: float | None = None) -> None:
        self.mean = 0.0
        self.var = 1.0
        self.count = epsilon  # a tiny prior so the first batch is not divided by zero
        self.horizon = horizon

    @property
    def std(self) -> float:
        return float(np.sqrt(self.var))

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size == 0:
            return
        batch_mean = float(values.mean())
        batch_var = float(values.var())
        batch_count = values.size
        total = self.count + batch_count
        delta = batch_mean - self.mean
        self.mean += delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta ** 2 * self.count * batch_count / total
        self.var = m2 / total
        self.count = total if self.horizon is None else min(total, self.horizon)

    def state_dict(self) -> dict[str, float]:
        return {'mean': self.mean, 'var': self.var, 'count': self.count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.mean = float(state['mean'])
        self.var = float(state['var'])
        self.count = float(state['count'])
