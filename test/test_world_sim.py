"""The simulated world: VRChat input semantics, collision, determinism, rendering, ground truth."""
import math

import numpy as np
import pytest

from ami_nodes.actuation import vrchat_osc as osc
from ami_nodes.world.sim import AGENT_HALF_WIDTH, Pose, World, WorldConfig

SHORT = 0.08   # seconds: short enough that even running stays inside the start cell


@pytest.fixture
def world() -> World:
    """A world with the agent at a free cell's centre, facing +x."""
    w = World(WorldConfig(seed=3))
    x, y = w.layout.start
    w.place_agent(Pose(x + 0.5, y + 0.5, 0.0))
    return w


def moved(world: World, address: str, value, dt: float = SHORT) -> tuple[float, float, float]:
    """Hold one input for `dt` seconds, release it, and return the change in (x, y, yaw)."""
    before = world.pose
    world.apply_input(address, value)
    world.step(dt)
    world.apply_input(address, 0 if address in osc.BUTTONS else 0.0)
    after = world.pose
    return after.x - before.x, after.y - before.y, after.yaw - before.yaw


def test_forward_moves_along_heading(world):
    walk = world.config.walk_speed * SHORT
    assert moved(world, osc.VERTICAL, 1.0) == pytest.approx((walk, 0.0, 0.0))
    assert moved(world, osc.MOVE_FORWARD, 1) == pytest.approx((walk, 0.0, 0.0))
    world.place_agent(Pose(world.pose.x, world.pose.y, math.pi / 2))
    assert moved(world, osc.VERTICAL, 0.5) == pytest.approx((0.0, walk / 2, 0.0), abs=1e-9)


def test_backward_and_strafe_both_ways(world):
    walk = world.config.walk_speed * SHORT
    assert moved(world, osc.VERTICAL, -1.0) == pytest.approx((-walk, 0.0, 0.0))
    assert moved(world, osc.MOVE_BACKWARD, 1) == pytest.approx((-walk, 0.0, 0.0))
    # facing +x, VRChat's right is -y
    assert moved(world, osc.HORIZONTAL, 1.0) == pytest.approx((0.0, -walk, 0.0))
    assert moved(world, osc.MOVE_RIGHT, 1) == pytest.approx((0.0, -walk, 0.0))
    assert moved(world, osc.HORIZONTAL, -1.0) == pytest.approx((0.0, walk, 0.0))
    assert moved(world, osc.MOVE_LEFT, 1) == pytest.approx((0.0, walk, 0.0))


def test_turn_both_ways_by_axis_and_buttons(world):
    turn = math.radians(world.config.turn_rate_deg) * SHORT
    assert moved(world, osc.LOOK_HORIZONTAL, 1.0) == pytest.approx((0.0, 0.0, -turn))
    assert moved(world, osc.LOOK_RIGHT, 1) == pytest.approx((0.0, 0.0, -turn))
    assert moved(world, osc.LOOK_HORIZONTAL, -1.0) == pytest.approx((0.0, 0.0, turn))
    assert moved(world, osc.LOOK_LEFT, 1) == pytest.approx((0.0, 0.0, turn))


def test_axes_hold_until_changed(world):
    world.apply_input(osc.VERTICAL, 1.0)
    world.step(SHORT)
    world.step(SHORT)
    assert world.pose.x - (world.layout.start[0] + 0.5) == pytest.approx(2 * SHORT * world.config.walk_speed)
    assert world.held_inputs() == {osc.VERTICAL: 1.0}


def test_run_is_faster(world):
    walked, _, _ = moved(world, osc.VERTICAL, 1.0)
    world.apply_input(osc.RUN, 1)
    ran, _, _ = moved(world, osc.VERTICAL, 1.0)
    assert ran == pytest.approx(walked * world.config.run_multiplier)


def test_diagonal_is_no_faster_than_straight(world):
    world.apply_input(osc.VERTICAL, 1.0)
    dx, dy, _ = moved(world, osc.HORIZONTAL, 1.0)
    assert math.hypot(dx, dy) == pytest.approx(world.config.walk_speed * SHORT)


def test_jump_acts_only_on_a_rising_edge(world):
    world.apply_input(osc.JUMP, 1)
    world.step(world.config.jump_duration / 2)
    assert world.pose.z == pytest.approx(world.config.jump_height)
    world.step(world.config.jump_duration)
    assert world.pose.z == 0.0 and world.jumps == 1
    world.apply_input(osc.JUMP, 1)          # still held: no new edge
    world.step(0.1)
    assert world.pose.z == 0.0 and world.jumps == 1
    world.apply_input(osc.JUMP, 0)
    world.apply_input(osc.JUMP, 1)          # a fresh edge, even between two steps
    world.step(0.1)
    assert world.pose.z > 0.0 and world.jumps == 2


def test_invalid_inputs_raise_value_error(world):
    for address, value in [(osc.VERTICAL, 1.5), (osc.JUMP, 2), ('/input/Fly', 1), (osc.LOOK_HORIZONTAL, 'left'),
                           (osc.HORIZONTAL, None), (osc.VERTICAL, float('nan'))]:
        with pytest.raises(ValueError):
            world.apply_input(address, value)
    assert world.held_inputs() == {}


def wall_facing_cell(world: World) -> tuple[int, int]:
    """A free cell whose +x neighbour is a wall."""
    for x, y in world.layout.free_cells:
        if world.layout.is_wall(x + 1, y):
            return x, y
    raise AssertionError('layout has no free cell beside a wall')


def test_walls_block_and_the_agent_slides_along_them(world):
    x, y = wall_facing_cell(world)
    world.place_agent(Pose(x + 0.5, y + 0.5, 0.0))
    world.apply_input(osc.VERTICAL, 1.0)
    world.apply_input(osc.RUN, 1)
    world.step(2.0)
    assert world.pose.x == pytest.approx(x + 1 - AGENT_HALF_WIDTH, abs=1e-3)
    assert world.pose.y == pytest.approx(y + 0.5)
    assert not world.layout.is_wall(math.floor(world.pose.x), math.floor(world.pose.y))


def test_agent_never_enters_a_wall_under_random_inputs():
    w = World(WorldConfig(seed=5))
    rng = np.random.default_rng(0)
    for _ in range(300):
        w.apply_input(osc.VERTICAL, float(rng.uniform(-1, 1)))
        w.apply_input(osc.HORIZONTAL, float(rng.uniform(-1, 1)))
        w.apply_input(osc.LOOK_HORIZONTAL, float(rng.uniform(-1, 1)))
        w.apply_input(osc.RUN, int(rng.integers(2)))
        w.step(0.05)
        for dx in (-AGENT_HALF_WIDTH, AGENT_HALF_WIDTH):
            for dy in (-AGENT_HALF_WIDTH, AGENT_HALF_WIDTH):
                assert not w.layout.is_wall(math.floor(w.pose.x + dx), math.floor(w.pose.y + dy))


def drive(world: World) -> list[np.ndarray]:
    """A fixed input script; returns a frame after each phase."""
    frames = []
    for address, value in [(osc.VERTICAL, 1.0), (osc.LOOK_HORIZONTAL, 0.7), (osc.JUMP, 1),
                           (osc.HORIZONTAL, -1.0), (osc.RUN, 1)]:
        world.apply_input(address, value)
        for _ in range(5):
            world.step(0.05)
        frames.append(world.render())
    return frames


def test_same_seed_gives_identical_frames_and_different_seed_differs():
    a, b, c = World(WorldConfig(seed=11)), World(WorldConfig(seed=11)), World(WorldConfig(seed=12))
    frames_a, frames_b, frames_c = drive(a), drive(b), drive(c)
    assert a.pose == b.pose
    assert all(np.array_equal(fa, fb) for fa, fb in zip(frames_a, frames_b))
    assert not np.array_equal(a.layout.walls, c.layout.walls)
    assert not np.array_equal(frames_a[0], frames_c[0])


def test_render_shape_dtype_and_pose_dependence():
    w = World(WorldConfig(seed=2, width=96, height=64))
    image = w.render()
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    assert image.std() > 10.0, 'a view should not be a flat colour'
    here = w.pose
    turned = w.render(Pose(here.x, here.y, here.yaw + 0.5))
    stepped = w.render(Pose(here.x + 0.1, here.y, here.yaw))
    hopped = w.render(Pose(here.x, here.y, here.yaw, 0.2))
    for other in (turned, stepped, hopped):
        assert np.abs(other.astype(int) - image).mean() > 1.0
    assert np.array_equal(w.render(here), image), 'rendering is a pure function of pose and time'
    with pytest.raises(ValueError):
        w.render(Pose(0.5, 0.5, 0.0))


def test_movers_move_and_are_seen():
    w = World(WorldConfig(seed=4))
    mover = w.movers[0]
    ax, ay = mover.a
    bx, by = mover.b
    yaw = math.atan2(by - ay, bx - ax)
    # stand at one end of the mover's run, looking down it: the mover is centred in view
    w.place_agent(Pose(ax - 0.3 * math.cos(yaw), ay - 0.3 * math.sin(yaw), yaw))
    seen = [w.render(time=t) for t in (0.0, 1.0, 2.0)]
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])
    ids = set()
    for _ in range(40):
        w.step(0.25)
        ids.add(w.in_view())
    assert mover.entity_id in ids
    assert w.entity_name(mover.entity_id) == f'mover:{mover.name}'


def test_in_view_names_the_wall_ahead():
    still = World(WorldConfig(seed=3, moving_objects=0))
    x, y = wall_facing_cell(still)
    still.place_agent(Pose(x + 0.5, y + 0.5, 0.0))
    wall_id = int(still.layout.walls[x + 1, y])
    assert still.in_view() == wall_id
    assert still.entity_name(wall_id).startswith('wall:')
    behind = x
    while not still.layout.is_wall(behind, y):
        behind -= 1
    still.place_agent(Pose(x + 0.5, y + 0.5, math.pi))
    assert still.in_view() == int(still.layout.walls[behind, y])


def test_coverage_grows_when_moving():
    w = World(WorldConfig(seed=6))
    start = w.coverage()
    assert start == pytest.approx(1 / w.free_cell_count)
    rng = np.random.default_rng(1)
    w.apply_input(osc.VERTICAL, 1.0)
    w.apply_input(osc.RUN, 1)
    for _ in range(200):
        w.apply_input(osc.LOOK_HORIZONTAL, float(rng.choice([-1.0, 0.0, 0.0, 1.0])))
        w.step(0.1)
    assert w.coverage() > start + 3 / w.free_cell_count
    assert all(not w.layout.is_wall(*cell) for cell in w.cells_visited)
