"""Rolling latency and rate statistics, cheap enough for every tick of a hot path."""
from __future__ import annotations

import time
from collections import deque

import numpy as np


class RollingStats:
    """The last `window` samples of a quantity, with percentiles on demand."""

    def __init__(self, window: int = 500) -> None:
        self._samples: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, value: float) -> None:
        self._samples.append(value)
        self.count += 1

    def __len__(self) -> int:
        return len(self._samples)

    def percentile(self, q: float) -> float:
        """The q-th percentile of the window, NaN when empty."""
        if not self._samples:
            return float('nan')
        return float(np.percentile(np.fromiter(self._samples, dtype=np.float64), q))

    @property
    def mean(self) -> float:
        return float(np.mean(self._samples)) if self._samples else float('nan')

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)


class RateMeter:
    """Events per second over the last `window_s` seconds of a monotonic clock."""

    def __init__(self, window_s: float = 5.0) -> None:
        self._window_s = window_s
        self._stamps: deque[float] = deque()
        self.count = 0

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._stamps.append(now)
        self.count += 1
        self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        if len(self._stamps) < 2:
            return 0.0
        span = now - self._stamps[0]
        return (len(self._stamps) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._stamps and now - self._stamps[0] > self._window_s:
            self._stamps.popleft()
