"""The extrinsic task: a target of a fixed colour that jumps to another cell when touched.

A VRChat world tells an avatar it touched something through an avatar parameter, which VRChat
sends out over OSC (UDP 9001, `/avatar/parameters/<name>`). `TouchReporter` does the same for
the built-in world: the parameter goes True on a touch and False on the next tick (a contact
that ended, because the target moved away), so a reward node works unchanged on either.
"""
from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from ami_nodes.actuation.avatar_parameters import AVATAR_PARAMETER_PREFIX, TOUCH_PARAMETER, velocity_parameters
from ami_nodes.actuation.osc_sender import OscSender
from ami_nodes.world.layout import Cell, Layout
from ami_nodes.world.movers import MoverState

TARGET_NAME = 'target'
TARGET_COLOUR = (250, 250, 250)   # white: no wall or mover has it
TARGET_RADIUS = 0.25              # metres
TARGET_HEIGHT = 0.7               # metres
#: A touched target reappears at most this many cells (either axis) from the agent, so a
#: random explorer meets it often enough for the task to be learnable (bench.target_touch_rate).
REAPPEAR_WITHIN = 3
#: Seed offset of the target's own random stream, so turning it on changes nothing else.
_SEED_OFFSET = 7919
#: Apart from the first, each target of a world has its own stream this far along.
_INDEX_STRIDE = 1_000_003


@dataclass
class Target:
    """One target on a free cell centre; `touch` moves it to another free cell."""

    entity_id: int
    layout: Layout
    rng: np.random.Generator
    cell: Cell = (0, 0)
    touches: int = 0

    @classmethod
    def place(cls, layout: Layout, seed: int, entity_id: int, avoid: Cell, index: int = 0,
              taken: Collection[Cell] = ()) -> Target:
        """The `index`-th target of a world (its own random stream), off the `taken` cells."""
        target = cls(entity_id, layout, np.random.default_rng(seed + _SEED_OFFSET + _INDEX_STRIDE * index))
        target._move(avoid, taken)
        return target

    @property
    def position(self) -> tuple[float, float]:
        return self.cell[0] + 0.5, self.cell[1] + 0.5

    def reached_by(self, x: float, y: float, agent_half_width: float) -> bool:
        """Whether an agent centred at (x, y) touches the target (footprints overlap)."""
        tx, ty = self.position
        return math.hypot(x - tx, y - ty) < TARGET_RADIUS + agent_half_width

    def touch(self, agent_cell: Cell, taken: Collection[Cell] = ()) -> None:
        """Count a touch and move elsewhere (never onto the agent's cell nor a `taken` one)."""
        self.touches += 1
        self._move(agent_cell, taken)

    def state(self) -> MoverState:
        """Drawn and hit-tested like a mover, standing still on the floor."""
        x, y = self.position
        return MoverState(self.entity_id, x, y, 0.0, TARGET_HEIGHT, TARGET_RADIUS, TARGET_COLOUR)

    def _move(self, avoid: Cell, taken: Collection[Cell] = ()) -> None:
        """To a free cell near `avoid` (the agent's), never `avoid` itself, where it was, nor a
        `taken` cell (another target's)."""
        free = [cell for cell in self.layout.free_cells if cell not in (avoid, self.cell) and cell not in taken]
        near = [cell for cell in free
                if max(abs(cell[0] - avoid[0]), abs(cell[1] - avoid[1])) <= REAPPEAR_WITHIN]
        choices = near or free
        self.cell = choices[int(self.rng.integers(len(choices)))]


class TouchReporter:
    """Sends the touch avatar parameter over OSC: True when touches rise, False the tick after."""

    def __init__(self, host: str, port: int, parameter: str = TOUCH_PARAMETER) -> None:
        self.address = AVATAR_PARAMETER_PREFIX + parameter
        self._sender = OscSender(host, port)
        self._reported = 0
        self._held = False

    @property
    def sent(self) -> int:
        return self._sender.sent

    def update(self, touches: int) -> None:
        """Call once per world tick with the world's touch count."""
        if touches > self._reported:
            self._reported = touches
            self._held = True
            self._sender.send([(self.address, True)])
        elif self._held:
            self._held = False
            self._sender.send([(self.address, False)])

    def close(self) -> None:
        self._sender.close()


class VelocityReporter:
    """Sends the agent's own velocity as VRChat's built-in parameters (AVATAR_VELOCITY_PARAMETERS),
    each only when its value changed, as VRChat does."""

    def __init__(self, host: str, port: int) -> None:
        self._sender = OscSender(host, port)
        self._last: dict[str, float] = {}

    @property
    def sent(self) -> int:
        return self._sender.sent

    def update(self, velocity: dict[str, float]) -> None:
        """Call once per world tick with the state's `velocity` (forward, left, yaw_rate)."""
        values = velocity_parameters(velocity['forward'], velocity['left'], velocity['yaw_rate'])
        changed = [(AVATAR_PARAMETER_PREFIX + name, value) for name, value in values.items()
                   if self._last.get(name) != value]
        if changed:
            self._sender.send(changed)
            self._last.update(values)

    def close(self) -> None:
        self._sender.close()
