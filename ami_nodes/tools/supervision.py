"""When a process that died on its own is started again, and when the supervisor gives up.

Pure policy, no processes and no clock of its own (the caller passes `now`), so it is tested
without sleeping. The launcher restarts any child that exited without being asked to; the
launch file does the same through launch_ros's `respawn` and `respawn_delay`.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """Back-off doubling from `first_delay_s` to `max_delay_s`; at most `max_restarts`
    restarts within any `window_s`, after which the process is left down."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_restarts: int = 5
    window_s: float = 600.0


class RestartTracker:
    """The restart history of one supervised process."""

    def __init__(self, policy: RestartPolicy = RestartPolicy()) -> None:
        self.policy = policy
        self.restarts = 0
        self.given_up = False
        self._recent: deque[float] = deque()

    def delay_after_exit(self, now: float) -> float | None:
        """Seconds to wait before starting it again, or None: too many restarts, give up."""
        while self._recent and now - self._recent[0] > self.policy.window_s:
            self._recent.popleft()
        if len(self._recent) >= self.policy.max_restarts:
            self.given_up = True
            return None
        delay = min(self.policy.first_delay_s * 2 ** len(self._recent), self.policy.max_delay_s)
        self._recent.append(now + delay)
        self.restarts += 1
        return delay
