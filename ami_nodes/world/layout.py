"""The map: a walled grid with a seed-generated interior, each wall cell tagged by colour.

Distinct colours per border side and for interior segments give the view enough landmarks
that a probe can tell where the agent is from what it sees. Layouts (`LAYOUTS`): `classic`,
one small room with straight wall segments (69 free cells at seed 0), and `rooms`, a grid of
rooms joined by doorways (at least `MIN_ROOMS_FREE_CELLS` free cells), both generated from
the world seed. Either can carry a noisy TV: a wall patch whose look is random every frame.
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
# Far above the wall colours and the movers' ids (which count up from max(WALL_COLOURS) + 1).
NOISY_TV_ID = 64
NOISY_TV_CELLS = 2        # wall cells side by side that make up the screen
LAYOUTS = ('classic', 'rooms')
ROOMS_MAP_SIZE = 26       # cells a side of the `rooms` layout (WorldConfig.map_size is for `classic`)
MIN_ROOM_WIDTH = 5        # free cells across the narrowest room
MIN_ROOMS_FREE_CELLS = 300

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


def _room_cuts(rng: np.random.Generator, size: int) -> list[int]:
    """Positions of the interior walls along one axis: 2 or 3 cuts, jittered, rooms >= MIN_ROOM_WIDTH."""
    count = int(rng.integers(2, 4))
    while True:
        spacing = (size - 1) / (count + 1)
        cuts = sorted(int(round(spacing * (i + 1) + rng.uniform(-1.5, 1.5))) for i in range(count))
        edges = [0, *cuts, size - 1]
        if all(b - a - 1 >= MIN_ROOM_WIDTH for a, b in zip(edges, edges[1:])):
            return cuts


def generate_rooms(rng: np.random.Generator, size: int = ROOMS_MAP_SIZE) -> Layout:
    """Rooms separated by one-cell walls, joined by doorways along a random spanning tree of
    the room grid plus a few extra doors (loops), with a few pillars inside rooms. Every wall
    run between two rooms gets its own colour, so each room looks different."""
    walls = np.zeros((size, size), dtype=np.int16)
    south, north, west, east = BORDER_COLOURS
    walls[:, 0], walls[:, -1], walls[0, :], walls[-1, :] = south, north, west, east
    x_edges = [0, *_room_cuts(rng, size), size - 1]
    y_edges = [0, *_room_cuts(rng, size), size - 1]
    rooms_x, rooms_y = len(x_edges) - 1, len(y_edges) - 1
    for cut in x_edges[1:-1]:
        for j in range(rooms_y):
            walls[cut, y_edges[j]:y_edges[j + 1] + 1] = int(rng.choice(INTERIOR_COLOURS))
    for cut in y_edges[1:-1]:
        for i in range(rooms_x):
            span = slice(x_edges[i] + 1, x_edges[i + 1])   # corners keep the vertical wall's colour
            walls[span, cut] = int(rng.choice(INTERIOR_COLOURS))
    # Doors: between room (i, j) and its east or north neighbour, a spanning tree first.
    neighbours = [((i, j), (i + 1, j)) for i in range(rooms_x - 1) for j in range(rooms_y)]
    neighbours += [((i, j), (i, j + 1)) for i in range(rooms_x) for j in range(rooms_y - 1)]
    order = rng.permutation(len(neighbours))
    group = {(i, j): (i, j) for i in range(rooms_x) for j in range(rooms_y)}

    def root(room: tuple[int, int]) -> tuple[int, int]:
        while group[room] != room:
            room = group[room]
        return room

    extra_doors = int(rng.integers(1, 3))
    for index in order:
        a, b = neighbours[index]
        joins = root(a) != root(b)
        if not joins and extra_doors == 0:
            continue
        if joins:
            group[root(a)] = root(b)
        else:
            extra_doors -= 1
        (i, j), (bi, _) = a, b
        width = int(rng.integers(1, 3))
        if bi != i:   # a door in the vertical wall at x_edges[i + 1]
            low, high = y_edges[j] + 1, y_edges[j + 1] - width
            at = int(rng.integers(low, high + 1))
            walls[x_edges[i + 1], at:at + width] = FREE
        else:         # a door in the horizontal wall at y_edges[j + 1]
            low, high = x_edges[i] + 1, x_edges[i + 1] - width
            at = int(rng.integers(low, high + 1))
            walls[at:at + width, y_edges[j + 1]] = FREE
    start_room = (int(rng.integers(rooms_x)), int(rng.integers(rooms_y)))
    start = (int(rng.integers(x_edges[start_room[0]] + 1, x_edges[start_room[0] + 1])),
             int(rng.integers(y_edges[start_room[1]] + 1, y_edges[start_room[1] + 1])))
    for _ in range(rooms_x * rooms_y):   # pillars: landmarks, kept only if all stays connected
        ix, iy = (int(v) for v in rng.integers(2, size - 2, size=2))
        if walls[ix, iy] == FREE and (ix, iy) != start:
            walls[ix, iy] = int(rng.choice(INTERIOR_COLOURS))
            if not _connected(walls, start):
                walls[ix, iy] = FREE
    return Layout(walls=walls, start=start)


def add_noisy_tv(layout: Layout, rng: np.random.Generator) -> Layout:
    """The same map with `NOISY_TV_CELLS` wall cells in a row, all facing the same free side,
    turned into a noisy TV (drawn with a random texture that changes every frame)."""
    walls = layout.walls.copy()
    size = layout.size
    candidates = []
    for ix, iy in np.argwhere(walls != FREE):
        for fx, fy in ((1, 0), (-1, 0), (0, 1), (0, -1)):   # the free side the screen faces
            along = (1, 0) if fx == 0 else (0, 1)
            cells = [(int(ix) + k * along[0], int(iy) + k * along[1]) for k in range(NOISY_TV_CELLS)]
            if all(0 <= cx < size and 0 <= cy < size and walls[cx, cy] != FREE
                   and 0 <= cx + fx < size and 0 <= cy + fy < size and walls[cx + fx, cy + fy] == FREE
                   for cx, cy in cells):
                candidates.append(cells)
    if not candidates:
        raise ValueError('no straight wall face is long enough for a noisy TV')
    for cx, cy in candidates[int(rng.integers(len(candidates)))]:
        walls[cx, cy] = NOISY_TV_ID
    return Layout(walls=walls, start=layout.start)


def make_layout(name: str, rng: np.random.Generator, classic_size: int, noisy_tv: bool) -> Layout:
    """The layout called `name` (one of LAYOUTS), with a noisy TV if asked; all drawn from `rng`."""
    if name == 'classic':
        layout = generate_layout(rng, classic_size)
    elif name == 'rooms':
        layout = generate_rooms(rng)
    else:
        raise ValueError(f'layout is {name!r}; expected one of {LAYOUTS}')
    return add_noisy_tv(layout, rng) if noisy_tv else layout
