"""VRChat's input semantics on the receiving side: what the avatar does with held OSC values.

Axes hold their value until changed; move/look/run buttons act while held at 1; Jump acts
only on a 0 -> 1 edge, so a second `Jump 1` without a `0` between does nothing.
"""
from __future__ import annotations

from ami_nodes.actuation.vrchat_osc import (
    AXES,
    BUTTONS,
    HORIZONTAL,
    JUMP,
    LOOK_HORIZONTAL,
    LOOK_LEFT,
    LOOK_RIGHT,
    MOVE_BACKWARD,
    MOVE_FORWARD,
    MOVE_LEFT,
    MOVE_RIGHT,
    RUN,
    VERTICAL,
    OscValue,
    _clip,
    validate_input,
)


class HeldInputs:
    """The current value of every VRChat input, plus a latched jump edge until the world takes it."""

    def __init__(self) -> None:
        self._values: dict[str, OscValue] = {name: 0.0 for name in AXES}
        self._values.update({name: 0 for name in BUTTONS})
        self._jump_pending = False

    def apply(self, address: str, value: OscValue) -> None:
        """Set one input; raise ValueError for an unknown address or a value VRChat would reject."""
        try:
            validate_input(address, value)
        except TypeError as error:
            raise ValueError(f'{address} got {value!r}: {error}') from None
        new_value: OscValue = float(value) if address in AXES else int(value)
        if address == JUMP and new_value == 1 and self._values[JUMP] == 0:
            self._jump_pending = True
        self._values[address] = new_value

    def take_jump(self) -> bool:
        """True once per 0 -> 1 edge of Jump since the last call."""
        pending, self._jump_pending = self._jump_pending, False
        return pending

    def forward(self) -> float:
        """Forward command in [-1, 1] from the Vertical axis and the forward/back buttons."""
        v = self._values
        return _clip(v[VERTICAL] + v[MOVE_FORWARD] - v[MOVE_BACKWARD])

    def right(self) -> float:
        """Strafe-right command in [-1, 1] from the Horizontal axis and the left/right buttons."""
        v = self._values
        return _clip(v[HORIZONTAL] + v[MOVE_RIGHT] - v[MOVE_LEFT])

    def turn_right(self) -> float:
        """Turn-right command in [-1, 1] from LookHorizontal and the look buttons."""
        v = self._values
        return _clip(v[LOOK_HORIZONTAL] + v[LOOK_RIGHT] - v[LOOK_LEFT])

    def running(self) -> bool:
        return self._values[RUN] == 1

    def held(self) -> dict[str, OscValue]:
        """Inputs whose current value is non-zero."""
        return {name: value for name, value in self._values.items() if value}
