"""Things that move on their own, so a curious agent has something worth looking at.

Each mover is a coloured pillar that shuttles along a straight run of free cells and bobs up
and down. Its position is a pure function of time, so any past or future view can be rendered.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ami_nodes.world.layout import Layout

MOVER_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ('magenta', (235, 40, 220)),
    ('mint', (70, 250, 170)),
    ('salmon', (255, 125, 105)),
    ('sky', (140, 200, 255)),
)


@dataclass(frozen=True)
class MoverState:
    """Where a mover is at one instant: centre (x, y), its bottom height, and how it looks."""

    entity_id: int
    x: float
    y: float
    bottom: float
    height: float
    radius: float
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class Mover:
    """A pillar shuttling between cell centres `a` and `b` at `speed` m/s, bobbing as it goes."""

    entity_id: int
    name: str
    colour: tuple[int, int, int]
    a: tuple[float, float]
    b: tuple[float, float]
    speed: float
    phase: float
    radius: float = 0.22
    height: float = 0.5

    def at(self, time: float) -> MoverState:
        length = math.dist(self.a, self.b)
        travelled = (time * self.speed / length + self.phase) % 2.0 if length > 0 else 0.0
        fraction = travelled if travelled <= 1.0 else 2.0 - travelled
        x = self.a[0] + (self.b[0] - self.a[0]) * fraction
        y = self.a[1] + (self.b[1] - self.a[1]) * fraction
        bottom = 0.15 + 0.12 * math.sin(2.0 * math.pi * (0.5 * time + self.phase))
        return MoverState(self.entity_id, x, y, bottom, self.height, self.radius, self.colour)


def _free_run(layout: Layout, cell: tuple[int, int], axis: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The two ends of the longest straight run of free cells through `cell` along `axis`."""
    step = (1, 0) if axis == 0 else (0, 1)
    ends = []
    for sign in (-1, 1):
        ix, iy = cell
        while not layout.is_wall(ix + sign * step[0], iy + sign * step[1]):
            ix, iy = ix + sign * step[0], iy + sign * step[1]
        ends.append((ix, iy))
    return ends[0], ends[1]


def place_movers(layout: Layout, rng: np.random.Generator, count: int, first_id: int) -> list[Mover]:
    """`count` movers, each on the longest of a few random straight runs no other mover uses yet.

    Ids count up from `first_id`.
    """
    free = layout.free_cells
    movers = []
    used: set[tuple[tuple[int, int], tuple[int, int]]] = set()
    for index in range(count):
        candidates = []
        for _ in range(6):
            cell = free[int(rng.integers(len(free)))]
            candidates.append(_free_run(layout, cell, int(rng.integers(2))))
        fresh = [ends for ends in candidates if ends not in used] or candidates
        a, b = max(fresh, key=lambda ends: abs(ends[1][0] - ends[0][0]) + abs(ends[1][1] - ends[0][1]))
        used.add((a, b))
        name, colour = MOVER_COLOURS[index % len(MOVER_COLOURS)]
        movers.append(Mover(
            entity_id=first_id + index, name=name, colour=colour,
            a=(a[0] + 0.5, a[1] + 0.5), b=(b[0] + 0.5, b[1] + 0.5),
            speed=float(rng.uniform(0.5, 1.0)), phase=float(rng.uniform(0.0, 2.0))))
    return movers
