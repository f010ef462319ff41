"""The whole system as separate processes: world + five nodes, started by ami_launch.

Runs about 30 s and checks what a user relies on: frames at the configured rate, stamps
carried from frame to action, OSC reaching the world and moving the agent, weights shipped
and applied, and a clean Ctrl-C that leaves no input held.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from geometry_msgs.msg import TwistStamped
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import PER_TICK_POLICY, REPO, Watcher, start_launcher, stop
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Int64, UInt8MultiArray

from ami_nodes import system
from ami_nodes.eval import live
from ami_nodes.persistence.weights import decode_weights
from ami_nodes.ros import qos
from ami_nodes.ros.messages import POLICY_MODEL, msg_to_blob, stamp_to_ns
from ami_nodes.tools.launch_config import write_config

# whole systems: pytest.ini's 300 s is for one hung node; a loaded CI machine may need more
pytestmark = [pytest.mark.ros, pytest.mark.timeout(900)]
RUN_S = 30.0
#: The watcher's subscriptions: reliable and deep, so the subset checks below see every
#: message the nodes saw (a best-effort reader in this busy process could drop a frame).
EVERY = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE,
                   history=HistoryPolicy.KEEP_LAST)


def make_config(tmp_path: Path) -> Path:
    """config/ami.yaml on free ports, acting per tick with shorter rollouts so several versions
    ship in 30 s."""
    return write_config(tmp_path / 'ami.yaml', {
        'policy_node': PER_TICK_POLICY, 'learner_node': {'rollout_length': 64, 'min_new_samples': 64}})


def world_state(config: Path) -> dict:
    """The world's ground truth, from the port `config` gave it."""
    return live.world_state(
        yaml.safe_load(config.read_text())['ami_world']['ros__parameters']['http_port'])


def test_whole_system(tmp_path):
    config = make_config(tmp_path)
    watcher = Watcher('e2e_watcher')
    images = watcher.subscribe(Image, 'image_raw', EVERY)
    features = watcher.subscribe(Image, 'features', EVERY)
    actions = watcher.subscribe(JointState, 'action', EVERY)
    commands = watcher.subscribe(TwistStamped, 'cmd_vel', EVERY)
    weights = watcher.subscribe(UInt8MultiArray, 'policy_weights', qos.LATCHED)
    applied = watcher.subscribe(Int64, '/policy_node/version', qos.LATCHED)
    log = tmp_path / 'launch.log'
    launcher = start_launcher(config, tmp_path / 'checkpoints', log, log_dir=tmp_path / 'runs',
                              status_period=5)
    try:
        assert watcher.spin_until(lambda: len(commands) > 0, 120.0), log.read_text()
        start_pose = world_state(config)['pose']
        first_image, first_features = len(images), len(features)
        watcher.spin_for(RUN_S)
        features_per_image = (len(features) - first_features) / (len(images) - first_image)
        end_state = world_state(config)
        published = {spec.name: {name for name, _ in watcher.node.get_publisher_names_and_types_by_node(
            spec.name, '/')} - {'/rosout', '/parameter_events'} for spec in system.NODES}
    finally:
        code = stop(launcher)  # after a failed assert too: the children stop cleanly
        watcher.close()
    output = log.read_text()

    # The frame rate on the camera's own clock (capture stamps), not this busy process's:
    # the median gap between consecutive frames received, robust to a few dropped here.
    stamps = sorted({stamp_to_ns(m.header.stamp) for m in images[first_image:]})
    rate = 1e9 / float(np.median(np.diff(stamps)))
    assert 16.0 <= rate <= 22.0, f'image_raw at {rate:.1f} Hz, configured 20'
    image_stamps = {stamp_to_ns(m.header.stamp) for m in images}
    feature_stamps = [stamp_to_ns(m.header.stamp) for m in features]
    action_stamps = [stamp_to_ns(m.header.stamp) for m in actions]
    # Perception drops a frame rather than fall behind when the CPU is busy (LATEST QoS): a
    # floor that shows it keeps up at all; how fast it goes is bench/'s (hot path, ticks).
    assert features_per_image > 0.2, f'only {features_per_image:.0%} of frames became features'
    assert set(feature_stamps) <= image_stamps, 'features must carry their frame stamp'
    assert set(action_stamps) <= set(feature_stamps) | image_stamps
    assert {stamp_to_ns(m.header.stamp) for m in commands} <= image_stamps

    moved = abs(end_state['pose']['x'] - start_pose['x']) + abs(end_state['pose']['y'] - start_pose['y']) \
        + abs(end_state['pose']['yaw'] - start_pose['yaw'])
    assert moved > 0.1, (start_pose, end_state['pose'])

    shipped = {decode_weights(msg_to_blob(m), model=POLICY_MODEL).version for m in weights}
    assert len(shipped) >= 2, shipped
    assert len({m.data for m in applied if m.data >= 0}) >= 2, [m.data for m in applied]

    assert code == 0, output[-3000:]
    assert 'all processes exited cleanly' in output
    summary = json.loads(output.split('AMI_WORLD_SUMMARY ', 1)[1].splitlines()[0])
    assert summary['held_inputs'] == {}, summary
    assert sum(summary['datagrams'].values()) > 50, summary
    assert 'Traceback' not in output, output[-3000:]
    assert published == readme_topic_table(), 'README topic table and the running nodes differ'


def readme_topic_table() -> dict[str, set[str]]:
    """publisher -> topics, from the README's topic table ({a,b} lists expanded)."""
    table: dict[str, set[str]] = {spec.name: set() for spec in system.NODES}
    for line in (REPO / 'README.md').read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 5 or not cells[0].startswith('`'):
            continue
        topic, publisher = cells[0].strip('`'), cells[3]
        publishers = list(table) if publisher == 'every node' else [
            name.strip() for name in publisher.split(',')]
        if '{' in topic:
            prefix, names = topic[:-1].split('{')
            topics = {prefix + n for n in names.split(',')}
        else:
            topics = {topic if topic.startswith('/') else '/' + topic}
        for node in publishers:
            if node in table:
                table[node] |= topics
    return table
