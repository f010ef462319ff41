"""The whole system survives its nodes being killed for real (kill -9), under ami_launch.

With the learner down the policy keeps acting on its last weights; with perception down
no command arrives, so the OSC bridge's dead-man timeout releases every input; both come
back, rejoin their run from its newest checkpoint, and the policy version rises again.
Every wait counts events; the timeouts only bound a hang.
"""
import json
import os
import signal
import urllib.request

import pytest
import yaml
from geometry_msgs.msg import TwistStamped
from ros_harness import PER_TICK_POLICY, Watcher, child_pid, start_launcher, stop
from std_msgs.msg import Int64, String

from ami_nodes.ros import qos
from ami_nodes.tools.launch_config import write_config

# whole systems: pytest.ini's 300 s is for one hung node; a loaded CI machine may need more
pytestmark = [pytest.mark.ros, pytest.mark.timeout(900)]
DEADMAN_RELEASE = 'releasing every input (no cmd_vel for'


def test_killed_nodes_come_back_and_acting_never_waits_for_learning(tmp_path):
    config = write_config(tmp_path / 'ami.yaml', {
        'policy_node': PER_TICK_POLICY,
        'learner_node': {'rollout_length': 64, 'min_new_samples': 64, 'checkpoint_period': 6.0}})
    http_port = yaml.safe_load(config.read_text())['ami_world']['ros__parameters']['http_port']
    watcher = Watcher('faults_watcher')
    commands = watcher.subscribe(TwistStamped, 'cmd_vel', qos.SENSOR)
    versions = watcher.subscribe(Int64, '/policy_node/version', qos.LATCHED)
    checkpoints = watcher.subscribe(String, '/learner_node/last_checkpoint', qos.LATCHED)
    log = tmp_path / 'launch.log'
    launcher = start_launcher(config, tmp_path / 'checkpoints', log, status_period=5)

    def newest_version() -> int:
        return max((m.data for m in versions), default=-1)

    def held_inputs() -> dict:
        url = f'http://127.0.0.1:{http_port}/state'
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())['held_inputs']

    def kill(node: str) -> int:
        pid = child_pid(launcher.pid, f'__node:={node}')
        assert pid is not None, f'{node} is not running: ' + log.read_text()[-3000:]
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_for_new(node: str, old_pid: int) -> int:
        found = {}

        def started() -> bool:
            pid = child_pid(launcher.pid, f'__node:={node}')
            found['pid'] = pid
            return pid is not None and pid != old_pid
        assert watcher.spin_until(started, 60.0), log.read_text()[-3000:]
        return found['pid']

    try:
        # Running and learning, with a checkpoint of this run to rejoin from.
        assert watcher.spin_until(lambda: newest_version() >= 1 and checkpoints, 90.0), \
            log.read_text()[-3000:]

        # 1. The learner dies: the policy keeps acting on its last weights.
        version_before = newest_version()
        learner = kill('learner_node')
        acted_before = len(commands)
        # The restart takes a back-off and seconds of start-up before the new learner ships
        # anything; the policy does not wait for it (counted, not timed).
        assert watcher.spin_until(lambda: len(commands) >= acted_before + 5, 30.0), \
            f'only {len(commands) - acted_before} commands after the learner died'
        wait_for_new('learner_node', learner)
        # It rejoins and learns on: versions rise past what the policy had before the kill.
        assert watcher.spin_until(lambda: newest_version() >= version_before + 2, 90.0), \
            ([m.data for m in versions], log.read_text()[-3000:])

        # 2. Perception dies: no features, no commands, the bridge releases every input.
        released_before = log.read_text().count(DEADMAN_RELEASE)
        perception = kill('perception_node')
        seen = {}

        def released_or_back() -> bool:
            """The world holds nothing (seen while perception is down), or it is back."""
            if held_inputs() == {}:
                seen['released'] = True
                return True
            return child_pid(launcher.pid, '__node:=perception_node') not in (None, perception)
        watcher.spin_until(released_or_back, 30.0)
        assert seen.get('released'), 'inputs still held when perception came back'
        assert watcher.spin_until(
            lambda: log.read_text().count(DEADMAN_RELEASE) > released_before, 30.0), \
            log.read_text()[-3000:]
        wait_for_new('perception_node', perception)
        acted_before = len(commands)
        assert watcher.spin_until(lambda: len(commands) > acted_before + 20, 60.0), \
            'the policy must act again once perception is back'

    finally:
        code = stop(launcher)  # after a failed assert too: the children stop cleanly
        watcher.close()
    output = log.read_text()
    assert code == 0, output[-3000:]
    restarts = output.split('[ami_launch] restarts: ', 1)[1].splitlines()[0]
    assert restarts in ("{'perception_node': 1, 'learner_node': 1}",
                        "{'learner_node': 1, 'perception_node': 1}"), output[-3000:]
    assert output.count('rejoined run from its newest checkpoint') >= 2, output[-5000:]
    summary = json.loads(output.split('AMI_WORLD_SUMMARY ', 1)[1].splitlines()[0])
    assert summary['held_inputs'] == {}, summary
