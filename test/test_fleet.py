"""A 2-robot fleet from `ami_launch --robots 2`: two stacks, one learner, one policy for all.

About 30 s of fleet at 10 Hz (two worlds and nine nodes share 2 cores): both robots act in
their own worlds, the learner counts experience from each, the same weight version reaches
both policies, and the checkpoint holds both robots' parts. Then the fleet resumes from it.
"""

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from ros_harness import Watcher
from std_msgs.msg import Int64
from test_checkpoint_resume import ami, stop
from test_namespaces import launch, light_config

from ami_nodes.persistence import latest_checkpoint, load_part
from ami_nodes.persistence.manifest import read_manifest
from ami_nodes.ros import qos

# whole systems: pytest.ini's 300 s is for one hung node; a loaded CI machine may need more
pytestmark = [pytest.mark.ros, pytest.mark.timeout(900)]
ROBOTS = ('robot_0', 'robot_1')
FLEET = ('--namespace', 'fleet', '--robots', '2')


def learner_values(diagnostics: list) -> dict[str, str]:
    for array in reversed(diagnostics):
        for status in array.status:
            if status.hardware_id == '/fleet/learner_node':
                return {kv.key: kv.value for kv in status.values}
    return {}


def test_two_robots_one_learner(tmp_path):
    config = light_config(tmp_path / 'fleet.yaml')
    watcher = Watcher('fleet_watcher')
    commands = {r: watcher.subscribe(TwistStamped, f'/fleet/{r}/cmd_vel', qos.SENSOR)
                for r in ROBOTS}
    applied = {r: watcher.subscribe(Int64, f'/fleet/{r}/policy_node/version', qos.LATCHED)
               for r in ROBOTS}
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    fleet = launch(config, tmp_path / 'run', *FLEET, '--status-period', '5')
    log = tmp_path / 'run' / 'launch.log'

    def common_version() -> set[int]:
        return {m.data for m in applied['robot_0'] if m.data >= 1} & {
            m.data for m in applied['robot_1'] if m.data >= 1}

    try:
        assert watcher.spin_until(lambda: bool(common_version()), 150.0), log.read_text()[-4000:]
        # wait for the counts asserted below: cmd_vel is best-effort and the watcher's own
        # subscription may match later than the learner's
        assert watcher.spin_until(lambda: all(
            int(learner_values(diagnostics).get(f'{r}/accepted', 0)) > 20 and len(commands[r]) > 20
            for r in ROBOTS), 60.0), (learner_values(diagnostics), {r: len(c) for r, c in commands.items()})
        values = learner_values(diagnostics)
        status = ami('--namespace', 'fleet', '--robots', '2', 'status')
    finally:
        stop(fleet)
        watcher.close()
    output = log.read_text()
    assert all(len(commands[r]) > 20 for r in ROBOTS), {r: len(c) for r, c in commands.items()}
    for robot in ROBOTS:
        assert int(values[f'{robot}/accepted']) > 20, values
        assert f'{robot}/gaps' in values and f'{robot}/lag_mean' in values, values
    assert status.returncode == 0, status
    for robot in ROBOTS:
        assert f'/fleet/{robot}/policy_node' in status.stdout, status.stdout
        assert f'  {robot}: camera' in output, 'the status line shows every robot'
    assert 'all processes exited cleanly' in output, output[-3000:]

    checkpoint = latest_checkpoint(tmp_path / 'run' / 'checkpoints')
    assert checkpoint is not None, output[-3000:]
    parts = sorted(read_manifest(checkpoint)['nodes'])
    assert parts == ['learner_node'] + [f'{r}-{n}' for r in ROBOTS
                                        for n in ('perception_node', 'policy_node')]
    saved = {r: load_part(checkpoint, f'{r}-policy_node').interaction['policy'] for r in ROBOTS}
    assert saved['robot_0']['seq'] > 0 and saved['robot_1']['seq'] > 0
    sources = load_part(checkpoint, 'learner_node').data['experience']['sources']
    assert set(sources) == {f'{r}/experience' for r in ROBOTS}

    resumed = launch(config, tmp_path / 'resumed', *FLEET, '--checkpoint', 'latest',
                     '--checkpoint-dir', str(tmp_path / 'run' / 'checkpoints'))
    log = tmp_path / 'resumed' / 'launch.log'
    watcher = Watcher('fleet_resume_watcher')
    versions = {r: watcher.subscribe(Int64, f'/fleet/{r}/policy_node/version', qos.LATCHED)
                for r in ROBOTS}
    acting = {r: watcher.subscribe(TwistStamped, f'/fleet/{r}/cmd_vel', qos.SENSOR)
              for r in ROBOTS}
    try:
        assert watcher.spin_until(lambda: all(versions.values()) and all(acting.values()),
                                  90.0), log.read_text()[-4000:]
    finally:
        stop(resumed)
        watcher.close()
    for robot in ROBOTS:
        assert versions[robot][0].data >= saved[robot]['version'] >= 1, (robot, saved)
    assert log.read_text().count('resumed from') == 5, log.read_text()[-4000:]
