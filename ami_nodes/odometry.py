"""Dead reckoning: a planar pose integrated from measured body-frame velocities.

A wheeled base publishes odometry, and VRChat sends an avatar's own velocity as avatar
parameters (VelocityX, VelocityZ, AngularY), which osc_bridge_node relays on
`measured_velocity`. policy_node's `held_bandit` explorer pays for the places this pose enters;
perception_node's odometry term teaches the encoder how the robot moved between two frames.
The pose drifts, slowly next to the minutes either of them cares about.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

#: A gap in the velocity stream longer than this is integrated as this long: after a stall
#: (a restarted bridge) the robot has not been moving at its last velocity all along.
MAX_VELOCITY_GAP_S = 0.5
#: A measured speed above this (m/s or rad/s) is a broken or hostile message, not motion: one
#: such value integrated would throw the dead-reckoned position far off (or to infinity) for good.
MAX_MEASURED_SPEED = 100.0


def plausible_velocity(values: Iterable[float]) -> bool:
    """Whether every component is finite and at most MAX_MEASURED_SPEED in size."""
    return all(math.isfinite(v) and abs(v) <= MAX_MEASURED_SPEED for v in values)


class DeadReckoning:
    """A planar pose integrated from body-frame velocities (REP 103: x forward, y left, yaw
    counter-clockwise), starting at the origin facing +x."""

    def __init__(self) -> None:
        self.x = self.y = self.yaw = 0.0
        self.last_stamp_ns: int | None = None

    def step(self, forward: float, left: float, yaw_rate: float, dt: float) -> None:
        """Advance by `dt` seconds at `forward`, `left` (m/s) and `yaw_rate` (rad/s), moving
        along the mid-step heading (exact for a constant-rate arc to second order)."""
        if not all(math.isfinite(v) for v in (forward, left, yaw_rate, dt)) or dt < 0.0:
            raise ValueError(f'dead reckoning needs finite velocities and dt >= 0, got '
                             f'{forward}, {left}, {yaw_rate}, {dt}')
        heading = self.yaw + 0.5 * yaw_rate * dt
        cos_h, sin_h = math.cos(heading), math.sin(heading)
        self.x += (forward * cos_h - left * sin_h) * dt
        self.y += (forward * sin_h + left * cos_h) * dt
        self.yaw = math.atan2(math.sin(self.yaw + yaw_rate * dt), math.cos(self.yaw + yaw_rate * dt))

    def observe(self, forward: float, left: float, yaw_rate: float, stamp_ns: int) -> bool:
        """Integrate a velocity measured at `stamp_ns` over the time since the last one (at most
        MAX_VELOCITY_GAP_S); True when the pose moved on. A stamp not after the last one only
        restarts the clock."""
        advanced = self.last_stamp_ns is not None and stamp_ns > self.last_stamp_ns
        if advanced:
            self.step(forward, left, yaw_rate, min((stamp_ns - self.last_stamp_ns) / 1e9, MAX_VELOCITY_GAP_S))
        self.last_stamp_ns = stamp_ns
        return advanced

    @property
    def pose(self) -> tuple[float, float, float]:
        """(x, y, yaw)."""
        return self.x, self.y, self.yaw
