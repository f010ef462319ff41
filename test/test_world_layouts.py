"""World layouts: seeded and deterministic, fully connected, true coverage, the noisy TV."""
import math
from collections import deque

import numpy as np
import pytest

from ami_nodes.actuation import vrchat_osc as osc
from ami_nodes.world.layout import FREE, MIN_ROOMS_FREE_CELLS, NOISY_TV_ID, Layout
from ami_nodes.world.sim import Pose, World, WorldConfig


def reachable(layout: Layout) -> set[tuple[int, int]]:
    """Free cells reachable from the start by 4-neighbour moves (an independent BFS)."""
    seen, queue = {layout.start}, deque([layout.start])
    while queue:
        x, y = queue.popleft()
        for cell in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if cell not in seen and not layout.is_wall(*cell):
                seen.add(cell)
                queue.append(cell)
    return seen


@pytest.mark.parametrize('seed', range(6))
def test_rooms_are_big_connected_and_walled(seed):
    layout = World(WorldConfig(seed=seed, layout='rooms')).layout
    free = set(layout.free_cells)
    assert len(free) >= MIN_ROOMS_FREE_CELLS
    assert reachable(layout) == free
    assert layout.start in free
    walls = layout.walls
    assert (walls[0, :] != FREE).all() and (walls[-1, :] != FREE).all()
    assert (walls[:, 0] != FREE).all() and (walls[:, -1] != FREE).all()


def test_layouts_are_deterministic_and_differ_between_seeds():
    for name in ('classic', 'rooms'):
        for noisy in (False, True):
            a = World(WorldConfig(seed=4, layout=name, noisy_tv=noisy))
            b = World(WorldConfig(seed=4, layout=name, noisy_tv=noisy))
            assert np.array_equal(a.layout.walls, b.layout.walls) and a.layout.start == b.layout.start
            assert np.array_equal(a.render(), b.render())
    maps = [World(WorldConfig(seed=s, layout='rooms')).layout.walls for s in range(4)]
    assert all(not np.array_equal(maps[i] != FREE, maps[j] != FREE)
               for i in range(4) for j in range(i + 1, 4))


def test_default_world_is_unchanged_by_the_new_options():
    default, classic = World(WorldConfig(seed=2)), World(WorldConfig(seed=2, layout='classic'))
    assert np.array_equal(default.layout.walls, classic.layout.walls)
    assert len(World(WorldConfig(seed=0)).layout.free_cells) == 69
    assert not (default.layout.walls == NOISY_TV_ID).any()
    assert default.noisy_tv_in_view() is False


def test_coverage_counts_exactly_the_cells_walked_through():
    world = World(WorldConfig(seed=1, layout='rooms'))
    x, y = world.layout.start
    world.place_agent(Pose(x + 0.5, y + 0.5, 0.0))
    world.apply_input(osc.VERTICAL, 1.0)
    expected = {(x, y)}
    for _ in range(60):
        world.step(0.05)
        expected.add((math.floor(world.pose.x), math.floor(world.pose.y)))
    assert world.cells_visited == expected
    assert len(expected) > 1  # it did move
    assert world.free_cell_count == len(world.layout.free_cells)
    assert world.coverage() == pytest.approx(len(expected) / world.free_cell_count)


def _facing_the_tv(world: World) -> Pose:
    """A pose on the free cell in front of the first noisy-TV cell, looking straight at it."""
    tx, ty = (int(v) for v in np.argwhere(world.layout.walls == NOISY_TV_ID)[0])
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        if not world.layout.is_wall(tx + dx, ty + dy):
            return Pose(tx + dx + 0.5, ty + dy + 0.5, math.atan2(-dy, -dx))
    raise AssertionError('the noisy TV faces no free cell')


@pytest.mark.parametrize('name', ['classic', 'rooms'])
def test_noisy_tv_in_view_from_a_constructed_pose_and_its_noise(name):
    world = World(WorldConfig(seed=5, layout=name, noisy_tv=True))
    assert (world.layout.walls == NOISY_TV_ID).sum() == 2
    facing = _facing_the_tv(world)
    away = Pose(facing.x, facing.y, facing.yaw + math.pi)
    assert world.noisy_tv_in_view(facing) is True
    assert world.noisy_tv_in_view(away) is False
    assert world.entity_name(NOISY_TV_ID) == 'wall:noisy_tv'
    # the screen's look changes from one frame to the next; a view away from it does not
    # (movers aside, which only move: compare the same instant for the control)
    assert not np.array_equal(world.render(facing, time=1.0), world.render(facing, time=1.05))
    assert np.array_equal(world.render(away, time=1.0), world.render(away, time=1.0))
