"""The agent's discrete action and what it means as a robot velocity.

Five heads, as in the roadmap slides: move forward/back, strafe left/right, turn left/right,
jump, run. Index 0 of every head means "do nothing", so an all-zero action is a safe stop.
Velocities follow REP 103 (x forward, y left, z up; positive yaw turns left).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HEAD_NAMES: tuple[str, ...] = ('move', 'strafe', 'turn', 'jump', 'run')
ACTION_DIMS: tuple[int, ...] = (3, 3, 3, 2, 2)
HEAD_CHOICES: dict[str, tuple[str, ...]] = {
    'move': ('none', 'forward', 'back'),
    'strafe': ('none', 'left', 'right'),
    'turn': ('none', 'left', 'right'),
    'jump': ('none', 'jump'),
    'run': ('none', 'run'),
}
NOOP: tuple[int, ...] = (0, 0, 0, 0, 0)


@dataclass(frozen=True)
class VelocityLimits:
    """Speeds a discrete action maps to; `run_speed` replaces `walk_speed` while running."""

    walk_speed: float = 0.5
    run_speed: float = 1.0
    turn_rate: float = 1.0
    jump_speed: float = 1.0


@dataclass(frozen=True)
class Velocity:
    """The parts of a geometry_msgs/Twist the agent uses."""

    linear_x: float = 0.0
    linear_y: float = 0.0
    linear_z: float = 0.0
    angular_z: float = 0.0


def validate_action(action: Sequence[int]) -> tuple[int, ...]:
    """Return the action as a tuple of ints, or raise ValueError naming the bad head."""
    if len(action) != len(ACTION_DIMS):
        raise ValueError(f'action has {len(action)} heads, expected {len(ACTION_DIMS)} {HEAD_NAMES}')
    out = []
    for name, size, value in zip(HEAD_NAMES, ACTION_DIMS, action):
        index = int(value)
        if index != value or not 0 <= index < size:
            raise ValueError(f'action head {name!r} is {value}, expected an integer in [0, {size - 1}]')
        out.append(index)
    return tuple(out)


def action_to_velocity(action: Sequence[int], limits: VelocityLimits = VelocityLimits()) -> Velocity:
    """Map a discrete action to a REP 103 velocity."""
    move, strafe, turn, jump, run = validate_action(action)
    speed = limits.run_speed if run else limits.walk_speed
    sign = {0: 0.0, 1: 1.0, 2: -1.0}
    return Velocity(
        linear_x=sign[move] * speed,
        linear_y=sign[strafe] * speed,
        linear_z=limits.jump_speed if jump else 0.0,
        angular_z=sign[turn] * limits.turn_rate,
    )


def action_magnitude(action: Sequence[int]) -> float:
    """How much the agent did: the number of heads not at their no-op choice."""
    return float(np.count_nonzero(np.asarray(action)))


def one_hot(action: Sequence[int]) -> np.ndarray:
    """Concatenated one-hot encoding of every head (length sum(ACTION_DIMS))."""
    out = np.zeros(sum(ACTION_DIMS), dtype=np.float32)
    offset = 0
    for size, index in zip(ACTION_DIMS, validate_action(action)):
        out[offset + index] = 1.0
        offset += size
    return out
