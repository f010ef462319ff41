"""Novelty of places, not of views: count-based novelty on a dead-reckoned position.

Every feature-space reward measured for issue 9 pays turning on the spot about as much as
entering a new room, because both change the view (docs/learning.md, "Why learning adds so
little"). A robot also knows how it moved: a wheeled base publishes odometry, and VRChat
sends an avatar's own velocity as avatar parameters (VelocityX, VelocityZ, AngularY). This
module takes the position dead-reckoned from them (ami_nodes/odometry.py: it drifts, but
only slowly next to the few minutes that make a place new or old) and pays for entering a
grid cell by how rarely it was entered before: 1 / sqrt(entries), MBIE-EB's and Bellemare et
al.'s count bonus on a position instead of a pseudo-count on pixels.

The robot never resets, so counts are kept over a sliding window of the last `window` cell
entries (the "episode" of episodic novelty becomes a stretch of the robot's life), which also
lets drift-displaced memories fade. Standing still or pushing into a wall enters no cell and
earns nothing; jumping, turning and a noisy TV change no position and earn nothing either.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable

import numpy as np

from ami_nodes.action_space import HEAD_NAMES
from ami_nodes.learning.head_bandit import HeadBandit
from ami_nodes.odometry import DeadReckoning

Cell = tuple[int, int]


class PlaceNovelty:
    """Pays 1 / sqrt(n) for entering a cell of side `cell_size` for the n-th time among the
    last `window` cell entries, and 0 while the position stays in its cell."""

    def __init__(self, cell_size: float = 1.0, window: int = 5000) -> None:
        if not cell_size > 0.0 or window < 1:
            raise ValueError(f'cell_size must be > 0 and window >= 1, got {cell_size}, {window}')
        self.cell_size = float(cell_size)
        self._entries: deque[Cell] = deque()
        self._window = int(window)
        self.counts: Counter[Cell] = Counter()
        self.cell: Cell | None = None

    def observe(self, x: float, y: float) -> float:
        """The reward for being at (x, y) now: the bonus of a cell just entered, else 0."""
        cell = (math.floor(x / self.cell_size), math.floor(y / self.cell_size))
        if cell == self.cell:
            return 0.0
        self.cell = cell
        self._entries.append(cell)
        self.counts[cell] += 1
        if len(self._entries) > self._window:
            old = self._entries.popleft()
            self.counts[old] -= 1
            if not self.counts[old]:
                del self.counts[old]
        return 1.0 / math.sqrt(self.counts[cell])

    @property
    def entries(self) -> tuple[Cell, ...]:
        """The cell entries in the window, oldest first."""
        return tuple(self._entries)

    def restore(self, entries: Iterable[Cell]) -> None:
        """Start again from saved `entries` (the newest `window` of them); the next position
        counts as entering its cell."""
        self._entries = deque(list(entries)[-self._window:])
        self.counts = Counter(self._entries)
        self.cell = None


#: Holds in a row without one measured velocity after which the explorer is reported blind:
#: without odometry its position never changes, so no hold pays and it chooses at random.
BLIND_HOLDS = 3


class PlaceBandit:
    """policy_node's `held_bandit` explorer: a HeadBandit chooses each hold, and is paid, when
    the next hold begins, the PlaceNovelty of the cells its hold entered on a position
    dead-reckoned from measured velocities (docs/learning.md, "Novelty of places").

    Measured in one process on world seeds 0-9 (`reward_alignment --bandit place_novelty`):
    it learns to run, to keep moving and not to jump, the preference a hand-written walker
    needs to beat sticky random holds, in a few hundred holds."""

    def __init__(self, rng: np.random.Generator, cell_size: float = 1.0, window: int = 5000) -> None:
        self.bandit = HeadBandit(rng)
        self.odometry = DeadReckoning()
        self.places = PlaceNovelty(cell_size, window)
        self.hold_reward = 0.0          # earned so far by the hold under way
        self.holds = 0                  # decisions paid so far
        self.holds_without_velocity = 0  # paid holds in a row that heard no measured velocity
        self._heard_velocity = False
        self._action: tuple[int, ...] | None = None

    def observe_velocity(self, forward: float, left: float, yaw_rate: float, stamp_ns: int) -> None:
        """Integrate a body-frame velocity measured at `stamp_ns` over the time since the last
        one (DeadReckoning.observe) and pay the hold under way for any cell entered."""
        self._heard_velocity = True
        if self.odometry.observe(forward, left, yaw_rate, stamp_ns):
            self.hold_reward += self.places.observe(self.odometry.x, self.odometry.y)

    def choose(self) -> tuple[int, ...]:
        """Pay the hold that just ended, then choose the next one."""
        if self._action is not None:
            self.bandit.update(self._action, self.hold_reward)
            self.holds += 1
            self.holds_without_velocity = 0 if self._heard_velocity else self.holds_without_velocity + 1
        self.hold_reward, self._heard_velocity = 0.0, False
        self._action = self.bandit.act()
        return self._action

    def probabilities(self) -> dict[str, list[float]]:
        """Each head's current choice probabilities, for diagnostics."""
        return {name: [round(float(p), 3) for p in probabilities]
                for name, probabilities in zip(HEAD_NAMES, self.bandit.probabilities(samples=500))}

    def state_dict(self) -> dict:
        """Plain lists and numbers (JSON), so a checkpoint keeps what was learnt."""
        return {'counts': [c.tolist() for c in self.bandit.counts], 'means': [m.tolist() for m in self.bandit.means],
                'stats': self.bandit.stats.state_dict(), 'holds': self.holds,
                'pose': [self.odometry.x, self.odometry.y, self.odometry.yaw],
                'entries': [list(cell) for cell in self.places.entries]}

    def load_state_dict(self, state: dict) -> None:
        self.bandit.counts = [np.asarray(c, np.float64) for c in state['counts']]
        self.bandit.means = [np.asarray(m, np.float64) for m in state['means']]
        self.bandit.stats.load_state_dict(state['stats'])
        self.holds = int(state['holds'])
        self.odometry.x, self.odometry.y, self.odometry.yaw = (float(v) for v in state['pose'])
        self.places.restore([(int(x), int(y)) for x, y in state['entries']])
        self._action, self.odometry.last_stamp_ns, self.hold_reward = None, None, 0.0
