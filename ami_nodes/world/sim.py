"""The simulated world: layout, movers, an agent driven by VRChat inputs, and its ground truth.

Deterministic under a seed: the same inputs and the same step sizes give the same frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ami_nodes.actuation.vrchat_osc import OscValue
from ami_nodes.world.inputs import HeldInputs
from ami_nodes.world.layout import NOISY_TV_ID, WALL_COLOURS, Layout, make_layout
from ami_nodes.world.movers import Mover, MoverState, place_movers
from ami_nodes.world.render import CameraPose, Raycaster
from ami_nodes.world.target import TARGET_NAME, Target

Pose = CameraPose
AGENT_HALF_WIDTH = 0.2    # metres; the agent's footprint is a square this far each side of centre
_MAX_SUBSTEP = 0.02       # seconds; keeps each collision step shorter than the agent's half width
NOISY_TV_IN_VIEW = 0.1    # the noisy TV counts as in view when it fills at least this share of columns


class BodyVelocity(NamedTuple):
    """Velocity in the agent's frame (REP 103): forward and left in m/s, yaw rate in rad/s
    (positive turns left)."""

    forward: float
    left: float
    yaw_rate: float


def _body_velocity(dx: float, dy: float, yaw_before: float, yaw_after: float, dt: float) -> BodyVelocity:
    """The mean body-frame velocity of a step that moved by (dx, dy) and turned from
    `yaw_before` to `yaw_after` in `dt` seconds, taken along the mid-step heading."""
    if dt <= 0.0:
        return BodyVelocity(0.0, 0.0, 0.0)
    turned = math.atan2(math.sin(yaw_after - yaw_before), math.cos(yaw_after - yaw_before))
    heading = yaw_before + 0.5 * turned
    cos_h, sin_h = math.cos(heading), math.sin(heading)
    return BodyVelocity((dx * cos_h + dy * sin_h) / dt, (-dx * sin_h + dy * cos_h) / dt, turned / dt)


@dataclass(frozen=True)
class WorldConfig:
    """Everything that shapes a world; two worlds with equal configs behave identically."""

    seed: int = 0
    layout: str = 'classic'    # one of layout.LAYOUTS
    noisy_tv: bool = False
    map_size: int = 12         # cells a side of the `classic` layout
    width: int = 160
    height: int = 120
    fps: float = 20.0
    walk_speed: float = 1.5
    run_multiplier: float = 2.0
    turn_rate_deg: float = 90.0
    moving_objects: int = 4
    fov_deg: float = 66.0
    jump_height: float = 0.3
    jump_duration: float = 0.5
    target: bool = False      # the extrinsic task (ami_nodes/world/target.py); off by default
    targets: int = 1          # how many targets at once when the task is on (more: a denser task)


class World:
    """A first-person agent in a walled grid; inputs arrive as VRChat OSC address/value pairs."""

    def __init__(self, config: WorldConfig = WorldConfig()) -> None:
        self.config = config
        rng = np.random.default_rng(config.seed)
        self.layout: Layout = make_layout(config.layout, rng, config.map_size, config.noisy_tv)
        self.movers: list[Mover] = place_movers(
            self.layout, rng, config.moving_objects, first_id=max(WALL_COLOURS) + 1)
        self._raycaster = Raycaster(self.layout, config.width, config.height, config.fov_deg,
                                    noise_seed=config.seed)
        self._inputs = HeldInputs()
        start_x, start_y = self.layout.start
        self._x, self._y = start_x + 0.5, start_y + 0.5
        self._yaw = float(rng.uniform(-math.pi, math.pi))
        self._hop_elapsed: float | None = None
        self._time = 0.0
        self._velocity = BodyVelocity(0.0, 0.0, 0.0)
        self._jumps = 0
        self._visited = {self.layout.start}
        self._free_count = len(self.layout.free_cells)
        if config.target and config.targets < 1:
            raise ValueError(f'targets must be at least 1 when the task is on, got {config.targets}')
        self.targets: list[Target] = []
        first_id = max([m.entity_id for m in self.movers], default=max(WALL_COLOURS)) + 1
        for index in range(config.targets if config.target else 0):
            self.targets.append(Target.place(self.layout, config.seed, entity_id=first_id + index,
                                             avoid=self.layout.start, index=index,
                                             taken=[t.cell for t in self.targets]))

    # ---- inputs -------------------------------------------------------------------------
    def apply_input(self, address: str, value: OscValue) -> None:
        """Apply one VRChat OSC input; ValueError for an unknown address or invalid value."""
        self._inputs.apply(address, value)

    def held_inputs(self) -> dict[str, OscValue]:
        return self._inputs.held()

    def place_agent(self, pose: Pose) -> None:
        """Put the agent at `pose` (its z is ignored: it lands); for evaluations and tests."""
        self.layout.require_free(pose.x, pose.y)
        self._x, self._y, self._yaw = float(pose.x), float(pose.y), float(pose.yaw)
        self._hop_elapsed = None
        self._visited.add((math.floor(self._x), math.floor(self._y)))

    # ---- dynamics -----------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """Advance time by `dt` seconds: turn, move with wall collision, hop, move the movers."""
        if dt < 0.0:
            raise ValueError(f'dt is {dt}; time only runs forward')
        if self._inputs.take_jump() and self._hop_elapsed is None:
            self._hop_elapsed = 0.0
            self._jumps += 1
        substeps = max(1, math.ceil(dt / _MAX_SUBSTEP))
        x, y, yaw = self._x, self._y, self._yaw
        for _ in range(substeps):
            self._substep(dt / substeps)
        self._velocity = _body_velocity(self._x - x, self._y - y, yaw, self._yaw, dt)

    def _substep(self, dt: float) -> None:
        cfg = self.config
        self._yaw -= self._inputs.turn_right() * math.radians(cfg.turn_rate_deg) * dt
        self._yaw = math.atan2(math.sin(self._yaw), math.cos(self._yaw))
        forward, right = self._inputs.forward(), self._inputs.right()
        magnitude = math.hypot(forward, right)
        if magnitude > 1.0:
            forward, right = forward / magnitude, right / magnitude
        speed = cfg.walk_speed * (cfg.run_multiplier if self._inputs.running() else 1.0)
        cos_yaw, sin_yaw = math.cos(self._yaw), math.sin(self._yaw)
        # right of heading (cos, sin) is (sin, -cos): +yaw turns left, as in REP 103
        self._x = self._slide(self._x, speed * dt * (forward * cos_yaw + right * sin_yaw), self._y, axis=0)
        self._y = self._slide(self._y, speed * dt * (forward * sin_yaw - right * cos_yaw), self._x, axis=1)
        self._visited.add((math.floor(self._x), math.floor(self._y)))
        for target in self.targets:
            if target.reached_by(self._x, self._y, AGENT_HALF_WIDTH):
                target.touch((math.floor(self._x), math.floor(self._y)),
                             taken=[other.cell for other in self.targets if other is not target])
        if self._hop_elapsed is not None:
            self._hop_elapsed += dt
            if self._hop_elapsed >= cfg.jump_duration:
                self._hop_elapsed = None
        self._time += dt

    def _slide(self, position: float, delta: float, other: float, axis: int) -> float:
        """Move along one axis, stopping flush against a wall cell (the other axis then slides on)."""
        target = position + delta
        if delta == 0.0:
            return position
        lead = target + math.copysign(AGENT_HALF_WIDTH, delta)
        lead_cell = math.floor(lead)
        span = range(math.floor(other - AGENT_HALF_WIDTH + 1e-9), math.floor(other + AGENT_HALF_WIDTH - 1e-9) + 1)
        blocked = any(self.layout.is_wall(*((lead_cell, c) if axis == 0 else (c, lead_cell))) for c in span)
        if not blocked:
            return target
        flush = lead_cell - AGENT_HALF_WIDTH - 1e-6 if delta > 0 else lead_cell + 1 + AGENT_HALF_WIDTH + 1e-6
        return min(target, flush) if delta > 0 else max(target, flush)

    # ---- ground truth -------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated seconds since the world began."""
        return self._time

    @property
    def pose(self) -> Pose:
        return Pose(self._x, self._y, self._yaw, self._hop_height())

    @property
    def velocity(self) -> BodyVelocity:
        """The agent's mean velocity over the last step, in its own frame and after collisions:
        what a robot's odometry or VRChat's VelocityZ, VelocityX and AngularY report."""
        return self._velocity

    @property
    def jumps(self) -> int:
        """How many hops have started; a Jump edge while in the air starts none."""
        return self._jumps

    @property
    def cells_visited(self) -> frozenset[tuple[int, int]]:
        return frozenset(self._visited)

    @property
    def free_cell_count(self) -> int:
        return self._free_count

    @property
    def touches(self) -> int:
        """How many times the agent has touched a target (0 when the task is off)."""
        return sum(target.touches for target in self.targets)

    def coverage(self) -> float:
        """Fraction of free cells the agent has entered."""
        return len(self._visited) / self._free_count

    def _hop_height(self) -> float:
        if self._hop_elapsed is None:
            return 0.0
        phase = self._hop_elapsed / self.config.jump_duration
        return 4.0 * self.config.jump_height * phase * (1.0 - phase)

    def mover_states(self, time: float | None = None) -> list[MoverState]:
        t = self._time if time is None else time
        states = [mover.at(t) for mover in self.movers]
        return [*states, *(target.state() for target in self.targets)]

    def render(self, pose: Pose | None = None, time: float | None = None) -> np.ndarray:
        """RGB view (height, width, 3) uint8 from `pose` (default: the agent's) at `time` (default: now)."""
        t = self._time if time is None else time
        return self._raycaster.render(self.pose if pose is None else pose, self.mover_states(t), t)

    def noisy_tv_in_view(self, pose: Pose | None = None) -> bool:
        """Whether the noisy TV fills at least NOISY_TV_IN_VIEW of the view's columns (False without one)."""
        if not self.config.noisy_tv:
            return False
        return self._raycaster.noisy_tv_fraction(self.pose if pose is None else pose) >= NOISY_TV_IN_VIEW

    def in_view(self, pose: Pose | None = None) -> int:
        """Entity id (wall colour or mover) at the image's centre column."""
        return self._raycaster.centre_entity(self.pose if pose is None else pose, self.mover_states())

    def entity_name(self, entity_id: int) -> str:
        """'wall:<colour>' or 'mover:<name>' for an id from `in_view`."""
        if entity_id in WALL_COLOURS:
            return f'wall:{WALL_COLOURS[entity_id][0]}'
        if any(entity_id == target.entity_id for target in self.targets):
            return TARGET_NAME
        if entity_id == NOISY_TV_ID:
            return 'wall:noisy_tv'
        for mover in self.movers:
            if mover.entity_id == entity_id:
                return f'mover:{mover.name}'
        raise ValueError(f'no entity has id {entity_id}')
