"""The extrinsic task: a touch in the world reaches `reward`, over real UDP and real rclpy."""
import math
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import start_node, stop
from std_msgs.msg import Float32

from ami_nodes.actuation.avatar_parameters import TOUCH_PARAMETER, RefusedPacket, parse_avatar_parameters
from ami_nodes.actuation.osc_sender import build_datagram
from ami_nodes.ros import qos
from ami_nodes.tools.launch_config import free_port
from ami_nodes.world.render import CameraPose
from ami_nodes.world.sim import World, WorldConfig
from ami_nodes.world.target import TARGET_COLOUR, TARGET_NAME, TouchReporter

REPO = Path(__file__).resolve().parent.parent


def _touch(world: World) -> None:
    """Put the agent on the target and let one tick pass."""
    x, y = world.targets[0].position
    world.place_agent(CameraPose(x, y, 0.0))
    world.step(0.05)


def test_target_is_off_by_default_and_on_changes_nothing_else():
    plain, with_target = World(WorldConfig(seed=3)), World(WorldConfig(seed=3, target=True))
    assert plain.targets == [] and plain.touches == 0
    assert plain.pose == with_target.pose and plain.layout.start == with_target.layout.start
    assert [m.at(1.0) for m in plain.movers] == [m.at(1.0) for m in with_target.movers]


def test_touch_moves_the_target_and_it_is_seen_in_its_colour():
    world = World(WorldConfig(seed=0, target=True))
    cell = world.targets[0].cell
    _touch(world)
    assert world.touches == 1 and world.targets[0].cell != cell
    x, y = world.targets[0].position
    # look at the target from a free neighbouring cell
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        if not world.layout.is_wall(math.floor(x) + dx, math.floor(y) + dy):
            pose = CameraPose(x + dx, y + dy, math.atan2(-dy, -dx))
            break
    assert world.entity_name(world.in_view(pose)) == TARGET_NAME
    centre = world.render(pose)[:, world.config.width // 2].astype(int)
    shaded_white = (centre.min(axis=1) > 0.8 * min(TARGET_COLOUR)) & (np.ptp(centre, axis=1) <= 2)
    assert shaded_white.sum() > 10


def test_more_targets_make_a_denser_task_and_leave_the_first_where_it_was():
    one, four = World(WorldConfig(seed=2, target=True)), World(WorldConfig(seed=2, target=True, targets=4))
    assert len(four.targets) == 4 and four.targets[0].cell == one.targets[0].cell
    assert len({t.cell for t in four.targets}) == 4 and len({t.entity_id for t in four.targets}) == 4
    assert all(four.entity_name(t.entity_id) == TARGET_NAME for t in four.targets)
    for _ in range(20):     # touching the first moves only it, never onto another target
        others = [t.cell for t in four.targets[1:]]
        _touch(four)
        assert [t.cell for t in four.targets[1:]] == others and four.targets[0].cell not in others
    assert four.touches == 20 and [t.touches for t in four.targets] == [20, 0, 0, 0]
    with pytest.raises(ValueError):
        World(WorldConfig(seed=2, target=True, targets=0))


def test_malformed_and_non_finite_parameters_are_refused():
    address = f'/avatar/parameters/{TOUCH_PARAMETER}'
    assert parse_avatar_parameters(build_datagram(address, True)) == [(TOUCH_PARAMETER, 1.0)]
    assert parse_avatar_parameters(build_datagram(address, 0.5)) == [(TOUCH_PARAMETER, 0.5)]
    assert parse_avatar_parameters(build_datagram('/chatbox/typing', 1)) == []
    nan = b'/avatar/parameters/X\x00\x00\x00\x00,f\x00\x00' + struct.pack('>f', float('nan'))
    for bad in (b'', b'\xff\x00garbage', build_datagram(address, 1)[:-2], nan):
        with pytest.raises(RefusedPacket):
            parse_avatar_parameters(bad)


def test_random_and_mutated_datagrams_are_parsed_or_refused_never_raised():
    rng = np.random.default_rng(0)
    valid = build_datagram(f'/avatar/parameters/{TOUCH_PARAMETER}', 1.0)
    for _ in range(300):
        mutated = bytearray(valid)
        for index in rng.integers(0, len(mutated), size=int(rng.integers(1, 4))):
            mutated[index] = int(rng.integers(0, 256))
        for datagram in (bytes(mutated), rng.bytes(int(rng.integers(0, 64)))):
            try:
                values = parse_avatar_parameters(datagram)
            except RefusedPacket:
                continue
            assert all(math.isfinite(value) for _, value in values)


def test_target_config_differs_from_the_default_only_in_the_task():
    base = yaml.safe_load((REPO / 'config' / 'ami.yaml').read_text())
    task = yaml.safe_load((REPO / 'config' / 'ami_target.yaml').read_text())
    changed = {(section, key) for section in task for key, value in
               task[section]['ros__parameters'].items()
               if base[section]['ros__parameters'].get(key, object()) != value}
    assert changed == {('ami_world', 'target'), ('ami_world', 'avatar_osc_host'),
                       ('ami_world', 'avatar_osc_port'), ('ami_world', 'target_parameter'),
                       ('learner_node', 'extrinsic_weight'), ('osc_bridge_node', 'reward_parameter'),
                       # learnt by Q-learning from replay, acted on epsilon-greedily
                       ('/**', 'algorithm'), ('policy_node', 'action_mode')}
    assert task['/**']['ros__parameters']['algorithm'] == 'branching_q'
    assert task['policy_node']['ros__parameters']['action_mode'] == 'epsilon_greedy'
    assert set(task) == set(base)
    assert base['learner_node']['ros__parameters']['extrinsic_weight'] == 0.0
    from ami_nodes import system
    from ami_nodes.world.main import parse_args
    world = vars(parse_args(system.world_arguments(task['ami_world']['ros__parameters'])))
    assert world['target'] is True and world['avatar_osc_port'] == 9001
    assert vars(parse_args([]))['target'] is False


@pytest.mark.ros
def test_a_touch_in_the_world_reaches_the_reward_topic(watcher, tmp_path):
    rewards = watcher.subscribe(Float32, 'reward', qos.STREAM)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    port = free_port(socket.SOCK_DGRAM)
    node = start_node('ami_nodes.nodes.osc_bridge_node', 'osc_bridge_node', {
        'port': free_port(socket.SOCK_DGRAM), 'reward_parameter': TOUCH_PARAMETER,
        'reward_port': port, 'reward_scale': 2.5}, log=tmp_path / 'bridge.log')
    world = World(WorldConfig(seed=1, target=True))
    reporter = TouchReporter('127.0.0.1', port)
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert watcher.spin_until(lambda: watcher.node.count_publishers('/reward') > 0, 60.0)
        values = lambda: [r.data for r in rewards]  # noqa: E731

        def paired() -> bool:  # a whole touch arrived: True, then False
            return 2.5 in values() and values()[-1] == 0.0
        # touch until the subscription has matched (earlier messages are not kept for it)
        for _ in range(120):
            _touch(world)
            reporter.update(world.touches)      # True: the touch
            reporter.update(world.touches)      # False: the contact ended
            if watcher.spin_until(paired, 0.5):
                break
        assert watcher.spin_until(paired, 10.0), values()
        # the listener is bound (it has passed touches on): now the hostile datagrams
        for bad in (b'\x00not osc', b'/avatar/parameters/TargetTouched\x00\x00\x00\x00,f\x00\x00'
                    + struct.pack('>f', float('inf'))):
            attacker.sendto(bad, ('127.0.0.1', port))
        assert values()[-2:] == [2.5, 0.0] and set(values()) == {2.5, 0.0}, values()
        assert values().count(2.5) <= world.touches == reporter.sent // 2

        def refused() -> int:
            return max((int(v.value) for d in diagnostics for s in d.status
                        if s.name == 'osc_bridge_node' for v in s.values
                        if v.key == 'parameter_datagrams_refused'), default=-1)
        assert watcher.spin_until(lambda: refused() == 2, 60.0), refused()
        assert node.poll() is None
    finally:
        attacker.close()
        reporter.close()
        assert stop(node) == 0
    assert 'refused avatar_parameters: ' in (tmp_path / 'bridge.log').read_text()
