"""Actions held for a while: the random baselines' and the explorers' unit of behaviour.

Sticky time is frame time: a hold is measured on the stamps of the frames the actor is given
(the camera's capture time), not on a tick counter or the wall clock, so a duration means the
same thing at 5 Hz and at 30 Hz, and a replayed stream repeats it exactly. A frame stamped
earlier than the hold's start (a restarted source) starts a new hold.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ami_nodes.action_space import ACTION_DIMS

Choice = TypeVar('Choice')


class Hold:
    """Keeps a choice for a duration uniform in [min_ns, max_ns] of frame-stamp time."""

    def __init__(self, rng: np.random.Generator, min_s: float, max_s: float) -> None:
        self._rng = rng
        self.min_ns, self.max_ns = hold_bounds_ns(min_s, max_s)
        self.choice = None
        self.hold_start_ns = 0
        self.hold_ns = 0

    def __call__(self, stamp_ns: int, choose: Callable[[], Choice]) -> tuple[Choice, bool]:
        """The held choice, or a new one from `choose` once the hold is over; and whether
        it is new."""
        if self.holding(stamp_ns):
            return self.choice, False
        self.choice = choose()
        self.hold_start_ns = stamp_ns
        self.hold_ns = int(self._rng.integers(self.min_ns, self.max_ns, endpoint=True))
        return self.choice, True

    def holding(self, stamp_ns: int) -> bool:
        """Whether a choice is held at `stamp_ns`."""
        return self.choice is not None and 0 <= stamp_ns - self.hold_start_ns < self.hold_ns


class StickyRandom:
    """Uniformly random actions, each held for a duration uniform in [min_ns, max_ns]."""

    def __init__(self, rng: np.random.Generator, min_s: float, max_s: float) -> None:
        self._rng = rng
        self.hold = Hold(rng, min_s, max_s)

    def __call__(self, stamp_ns: int) -> tuple[int, ...]:
        return self.hold(stamp_ns, lambda: uniform_action(self._rng))[0]


class EpsilonHolds:
    """Temporally extended epsilon-greedy (Dabney et al. 2021): with probability epsilon a
    decision starts a uniformly random action held for a duration uniform in [min_s, max_s];
    a decision during such a hold keeps it; any other takes `greedy`'s choice. A greedy policy
    that explores one decision at a time walks back into the wall it left."""

    def __init__(self, rng: np.random.Generator, min_s: float, max_s: float) -> None:
        self._rng = rng
        self.hold = Hold(rng, min_s, max_s)

    def __call__(self, stamp_ns: int, epsilon: float, greedy: Callable[[], tuple[int, ...]]
                 ) -> tuple[tuple[int, ...], bool]:
        """The decision's action, and whether it explores."""
        if self.hold.holding(stamp_ns) or self._rng.random() < epsilon:
            return self.hold(stamp_ns, lambda: uniform_action(self._rng))[0], True
        return greedy(), False


def hold_bounds_ns(min_s: float, max_s: float) -> tuple[int, int]:
    """A sticky hold's bounds in nanoseconds, or ValueError when they are not 0 < min <= max."""
    min_ns, max_ns = round(min_s * 1e9), round(max_s * 1e9)
    if not 0 < min_ns <= max_ns:
        raise ValueError(f'sticky_min_s ({min_s}) must be > 0 and <= sticky_max_s ({max_s})')
    return min_ns, max_ns


def uniform_action(rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(rng.integers(0, n)) for n in ACTION_DIMS)
