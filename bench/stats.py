"""Small summaries shared by every part, so all figures are computed the same way."""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def summary(values: Iterable[float]) -> dict[str, float]:
    """n, p50, p90, p99, mean and max of a sample (NaN when empty, so the JSON stays honest)."""
    data = np.asarray(list(values), dtype=np.float64)
    if data.size == 0:
        return {'n': 0, 'p50': math.nan, 'p90': math.nan, 'p99': math.nan, 'mean': math.nan,
                'max': math.nan}
    return {'n': int(data.size), 'p50': float(np.percentile(data, 50)),
            'p90': float(np.percentile(data, 90)), 'p99': float(np.percentile(data, 99)),
            'mean': float(data.mean()), 'max': float(data.max())}


def loglog_exponent(x: Iterable[float], y: Iterable[float]) -> float:
    """Slope of log(y) against log(x): 1 is linear growth, 2 quadratic."""
    slope, _ = np.polyfit(np.log(np.asarray(list(x), float)), np.log(np.asarray(list(y), float)), 1)
    return float(slope)


def growth_word(exponent: float) -> str:
    """The nearest simple name for a log-log exponent."""
    if exponent < 0.25:
        return 'flat'
    if exponent < 0.75:
        return 'sublinear'
    if exponent < 1.5:
        return 'linear'
    if exponent < 2.5:
        return 'quadratic'
    return 'worse than quadratic'


def time_calls(fn, repeats: int, warmup: int) -> np.ndarray:
    """Milliseconds per call of `fn()`, after `warmup` untimed calls."""
    from time import perf_counter
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        start = perf_counter()
        fn()
        times[i] = (perf_counter() - start) * 1e3
    return times
