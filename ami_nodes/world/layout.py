"""The map: a walled grid with a seed-generated interior, each wall cell tagged by colour.

Distinct colours per border side and for interior segments give the view enough landmarks
that a probe can tell where the agent is from what it sees.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

FREE = 0
# Wall colour ids start at 1; ids 1-4 are the border sides, the rest interior segments.
WALL_COLOURS: dict[int, tuple[str, tuple[int, int, int]]] = {
    1: ('red', (200, 50, 45)),
    2: ('green', (60, 170, 70)),
    3: ('blue', (55, 85, 210)),
    4: ('yellow', (225, 200, 60)),
    5: ('orange', (235, 130, 35)),
    6: ('cyan', (60, 195, 205)),
    7: ('purple', (140, 70, 180)),
    8: ('grey', (175, 175, 175)),
}
BORDER_COLOURS = (1, 2, 3, 4)
INTERIOR_COLOURS = (5, 6, 7, 8)

Cell = tuple[int, int]


@dataclass(frozen=True)
class Layout:
    """`walls[ix, iy]` is FREE or a wall colour id for the 1 m cell [ix, ix+1) x [iy, iy+1)."""

    walls: np.ndarray
    start: Cell

    @property
    def size(self) -> int:
        return int(self.walls.shape[0])

    @property
    def free_cells(self) -> list[Cell]:
        return [(int(ix), int(iy)) for ix, iy in np.argwhere(self.walls == FREE)]

    def is_wall(self, ix: int, iy: int) -> bool:
        """True for wall cells and for anything outside the map."""
        inside = 0 <= ix < self.size and 0 <= iy < self.size
        return not inside or bool(self.walls[ix, iy] != FREE)

    def require_free(self, x: float, y: float) -> None:
        """Raise ValueError if the point (x, y) in metres lies in a wall or off the map."""
        if self.is_wall(math.floor(x), math.floor(y)):
            raise ValueError(f'position ({x:.3f}, {y:.3f}) is inside a wall or off the map')


def _connected(walls: np.ndarray, start: Cell) -> bool:
    """Whether every free cell can be reached from `start` (4-neighbour moves)."""
    free_total = int(np.count_nonzero(walls == FREE))
    seen = {start}
    queue = deque([start])
    while queue:
        ix, iy = queue.popleft()
        for nx, ny in ((ix + 1, iy), (ix - 1, iy), (ix, iy + 1), (ix, iy - 1)):
            if (nx, ny) not in seen and walls[nx, ny] == FREE:
                seen.add((nx, ny))
                queue.append((nx, ny))
    return len(seen) == free_total


def generate_layout(rng: np.random.Generator, size: int = 12, wall_fraction: float = 0.3) -> Layout:
    """Border walls plus straight interior segments, added only where all free cells stay connected."""
    if size < 5:
        raise ValueError(f'map size is {size}; it needs at least 5 cells a side')
    walls = np.zeros((size, size), dtype=np.int16)
    south, north, west, east = BORDER_COLOURS
    walls[:, 0], walls[:, -1], walls[0, :], walls[-1, :] = south, north, west, east
    start = (int(rng.integers(1, size - 1)), int(rng.integers(1, size - 1)))
    target = int(wall_fraction * (size - 2) ** 2)
    placed = 0
    for _ in range(50 * target):
        if placed >= target:
            break
        ix, iy = (int(v) for v in rng.integers(1, size - 1, size=2))
        dx, dy = ((1, 0), (-1, 0), (0, 1), (0, -1))[int(rng.integers(4))]
        colour = int(rng.choice(INTERIOR_COLOURS))
        for _ in range(int(rng.integers(2, 5))):
            if not (0 < ix < size - 1 and 0 < iy < size - 1) or (ix, iy) == start:
                break
            if walls[ix, iy] == FREE:
                walls[ix, iy] = colour
                if not _connected(walls, start):
                    walls[ix, iy] = FREE
                    break
                placed += 1
            ix, iy = ix + dx, iy + dy
    return Layout(walls=walls, start=start)
