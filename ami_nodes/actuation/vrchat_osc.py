"""VRChat's OSC input protocol, as pure logic: which address gets which value.

VRChat listens on UDP 9000. Axes take floats in [-1, 1] and keep acting until set back to 0;
buttons take ints 1/0 and act on the 0 -> 1 edge. `InputState` sends only what changed and
knows how to release everything, as pamiq-vrchat does.
"""
from __future__ import annotations

import math
from typing import Literal

from ami_nodes.action_space import Velocity, VelocityLimits

VERTICAL = '/input/Vertical'
HORIZONTAL = '/input/Horizontal'
LOOK_HORIZONTAL = '/input/LookHorizontal'
AXES: tuple[str, ...] = (VERTICAL, HORIZONTAL, LOOK_HORIZONTAL)

MOVE_FORWARD = '/input/MoveForward'
MOVE_BACKWARD = '/input/MoveBackward'
MOVE_LEFT = '/input/MoveLeft'
MOVE_RIGHT = '/input/MoveRight'
LOOK_LEFT = '/input/LookLeft'
LOOK_RIGHT = '/input/LookRight'
JUMP = '/input/Jump'
RUN = '/input/Run'
BUTTONS: tuple[str, ...] = (
    MOVE_FORWARD, MOVE_BACKWARD, MOVE_LEFT, MOVE_RIGHT, LOOK_LEFT, LOOK_RIGHT, JUMP, RUN)

ALL_INPUTS: tuple[str, ...] = AXES + BUTTONS
OscValue = float | int
Mode = Literal['axes', 'buttons']


def _clip(value: float) -> float:
    return max(-1.0, min(1.0, value))


def velocity_to_inputs(velocity: Velocity, limits: VelocityLimits, mode: Mode = 'axes'
                       ) -> dict[str, OscValue]:
    """The full VRChat input state for a REP 103 velocity.

    VRChat's Horizontal is positive to the right and LookHorizontal positive turning right,
    the opposite of ROS's +y and +yaw, hence the sign flips. A NaN or infinite component is
    a ValueError: clipping would turn a NaN into a full axis, so it must never reach VRChat.
    """
    for name, value in vars(velocity).items():
        if not math.isfinite(value):
            raise ValueError(f'velocity {name} is {value}; only finite velocities are sent')
    forward = velocity.linear_x / limits.run_speed
    right = -velocity.linear_y / limits.run_speed
    turn_right = -velocity.angular_z / limits.turn_rate
    speed = max(abs(velocity.linear_x), abs(velocity.linear_y))
    inputs: dict[str, OscValue] = {name: 0 for name in BUTTONS}
    inputs.update({name: 0.0 for name in AXES})
    inputs[JUMP] = int(velocity.linear_z > 0.0)
    inputs[RUN] = int(speed > limits.walk_speed + 1e-6)
    if mode == 'axes':
        inputs[VERTICAL] = _clip(forward)
        inputs[HORIZONTAL] = _clip(right)
        inputs[LOOK_HORIZONTAL] = _clip(turn_right)
    elif mode == 'buttons':
        inputs[MOVE_FORWARD] = int(forward > 0.0)
        inputs[MOVE_BACKWARD] = int(forward < 0.0)
        inputs[MOVE_RIGHT] = int(right > 0.0)
        inputs[MOVE_LEFT] = int(right < 0.0)
        inputs[LOOK_RIGHT] = int(turn_right > 0.0)
        inputs[LOOK_LEFT] = int(turn_right < 0.0)
    else:
        raise ValueError(f"mode is {mode!r}, expected 'axes' or 'buttons'")
    return inputs


def validate_input(address: str, value: OscValue) -> None:
    """Raise ValueError if `value` is not valid for VRChat input `address`."""
    if address in AXES:
        if not (math.isfinite(value) and -1.0 <= value <= 1.0):
            raise ValueError(f'{address} is {value}; VRChat axes take floats in [-1, 1]')
    elif address in BUTTONS:
        if value not in (0, 1):
            raise ValueError(f'{address} is {value}; VRChat buttons take 0 or 1')
    else:
        raise ValueError(f'{address} is not a VRChat input address')


class InputState:
    """What the far side currently holds; turns a wanted state into the few messages to send."""

    def __init__(self) -> None:
        self._sent: dict[str, OscValue] = {}

    def changes(self, wanted: dict[str, OscValue]) -> list[tuple[str, OscValue]]:
        """Messages that bring the far side to `wanted`, sending only changed values."""
        out = []
        for address, value in wanted.items():
            validate_input(address, value)
            if self._sent.get(address) != value:
                out.append((address, value))
        return out

    def mark_sent(self, messages: list[tuple[str, OscValue]]) -> None:
        """Record messages that actually left, so a failed send is retried next time."""
        self._sent.update(messages)

    def release_all(self) -> list[tuple[str, OscValue]]:
        """Messages that set every axis to 0.0 and every button to 0, whatever was sent."""
        return [(name, 0.0) for name in AXES] + [(name, 0) for name in BUTTONS]

    @property
    def held(self) -> dict[str, OscValue]:
        """Inputs last sent with a non-zero value."""
        return {k: v for k, v in self._sent.items() if v}
