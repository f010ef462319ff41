"""Two complete systems in one ROS domain, under different namespaces, do not see each other.

Both are started by ami_launch (worlds on their own free ports, 10 Hz to spare the CPU).
System `b` acts uniformly at random, so every one of its experience messages carries the
uniform log-prob and none of `a`'s does: data that leaked across would show. Each system's
checkpoint holds its own nodes only, and `ami --namespace` sees only its own system.
"""
import subprocess
from pathlib import Path

import pytest
from ros_harness import PER_TICK_POLICY, Watcher, start_launcher, stop_all
from sensor_msgs.msg import JointState
from std_msgs.msg import Int64
from test_checkpoint_resume import ami

from ami_nodes.learning.actor import UNIFORM_LOG_PROB
from ami_nodes.persistence import list_checkpoints, load_part
from ami_nodes.persistence.manifest import read_manifest
from ami_nodes.ros import qos
from ami_nodes.ros.messages import msg_to_experience
from ami_nodes.tools.launch_config import write_config

# whole systems: pytest.ini's 300 s is for one hung node; a loaded CI machine may need more
pytestmark = [pytest.mark.ros, pytest.mark.timeout(900)]
RATE_HZ = 10.0


def light_config(path: Path, **policy) -> Path:
    """config/ami.yaml on free ports, at 10 Hz, acting per tick (unless `policy` says otherwise)
    with short rollouts so versions ship soon."""
    return write_config(path, {
        'ami_world': {'fps': RATE_HZ}, 'camera_node': {'framerate': RATE_HZ},
        'perception_node': {'frame_rate': RATE_HZ, 'replay_batch': 0},
        'policy_node': {**PER_TICK_POLICY, **policy},
        'learner_node': {'rollout_length': 32, 'min_new_samples': 32, 'checkpoint_period': 0.0}})


def launch(config: Path, folder: Path, *extra: str) -> subprocess.Popen:
    folder.mkdir(exist_ok=True)
    return start_launcher(config, folder / 'checkpoints', folder / 'launch.log', *extra)


def test_two_systems_under_two_namespaces_keep_apart(tmp_path):
    watcher = Watcher('namespace_watcher')
    experience = {ns: watcher.subscribe(JointState, f'/{ns}/experience', qos.EXPERIENCE)
                  for ns in 'ab'}
    applied = {ns: watcher.subscribe(Int64, f'/{ns}/policy_node/version', qos.LATCHED)
               for ns in 'ab'}
    systems = {
        'a': launch(light_config(tmp_path / 'a.yaml'), tmp_path / 'a', '--namespace', 'a'),
        'b': launch(light_config(tmp_path / 'b.yaml', action_mode='uniform'), tmp_path / 'b',
                    '--namespace', 'b')}
    logs = lambda: '\n'.join((tmp_path / ns / 'launch.log').read_text()[-3000:]  # noqa: E731
                             for ns in 'ab')
    try:
        assert watcher.spin_until(lambda: all(
            any(m.data >= 1 for m in applied[ns]) for ns in 'ab'), 150.0), logs()
        saved = ami('--namespace', 'a', 'save')
        assert saved.returncode == 0 and 'checkpoint saved' in saved.stdout, saved
        status = ami('--namespace', 'b', 'status')
        assert status.returncode == 0, status
        graph = {topic: [(i.node_namespace, i.node_name)
                         for i in watcher.node.get_publishers_info_by_topic(topic)]
                 for topic in ('/a/experience', '/b/experience', '/a/policy_weights',
                               '/b/policy_weights', '/a/checkpoint/request')}
    finally:
        stop_all(*systems.values())
        watcher.close()

    # Exact floats: a's near-uniform initial policy computes its log-probs in float32, which can
    # never equal the float64 uniform value, but came within 5 decimals of it by chance.
    log_probs = {ns: {msg_to_experience(m).log_prob for m in experience[ns]} for ns in 'ab'}
    assert log_probs['b'] == {UNIFORM_LOG_PROB}, 'b acts uniformly at random'
    assert UNIFORM_LOG_PROB not in log_probs['a'], "b's experience reached a"
    assert graph['/a/experience'] == [('/a', 'policy_node')], graph
    assert graph['/b/experience'] == [('/b', 'policy_node')], graph
    assert graph['/a/policy_weights'] == [('/a', 'learner_node')], graph
    assert graph['/a/checkpoint/request'] == [('/a', 'learner_node')], graph

    checkpoint = Path(saved.stdout.split('checkpoint saved: ')[1].strip())
    assert checkpoint.parent == tmp_path / 'a' / 'checkpoints'
    assert sorted(read_manifest(checkpoint)['nodes']) == [
        'learner_node', 'perception_node', 'policy_node']
    assert load_part(checkpoint, 'policy_node').params['action_mode'] == 'sample', \
        "a's checkpoint holds a's policy, not b's"
    b_root = tmp_path / 'b' / 'checkpoints'
    assert not list(b_root.rglob(f'{checkpoint.name}*')), "a's request reached b's nodes"
    b_final = list_checkpoints(b_root)  # its final save (twice if DDS lost the first reply)
    assert b_final and all(load_part(c, 'policy_node').params['action_mode'] == 'uniform'
                           for c in b_final), b_final

    lines = status.stdout.splitlines()
    assert any(line.startswith('/b/policy_node') for line in lines), status.stdout
    assert not any(line.startswith('/a/') for line in lines), status.stdout
