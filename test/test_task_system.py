"""config/ami_target.yaml as a user runs it: world + five nodes under ami_launch, learning the
task with branching_q. The learner pairs the policy's decisions with camera frames, encodes its
replay with the encoder perception ships, and the policy acts with the Q versions it ships."""
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import REPO, Watcher, diagnostic_values, start_launcher, stop
from std_msgs.msg import Int64

from ami_nodes import system
from ami_nodes.persistence import latest_checkpoint, load_part
from ami_nodes.ros import qos
from ami_nodes.tools.launch_config import write_config

pytestmark = [pytest.mark.ros, pytest.mark.timeout(900)]
#: Q versions the policy must apply: each is 8 updates, so the learner trained and shipped.
VERSIONS = 3


def test_the_task_config_learns_with_branching_q_from_frames_and_shipped_encoders(tmp_path: Path):
    config = write_config(tmp_path / 'ami.yaml', {
        'ami_world': {'targets': 8}, 'learner_node': {'q_warmup_decisions': 20, 'epsilon_decisions': 100}},
        base=REPO / 'config' / 'ami_target.yaml')
    watcher = Watcher('task_watcher')
    applied = watcher.subscribe(Int64, '/policy_node/version', qos.LATCHED)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    log = tmp_path / 'launch.log'
    launcher = start_launcher(config, tmp_path / 'checkpoints', log, status_period=10)
    try:
        # a bound on a hang, not a window: it ends when the policy acts with the third version
        assert watcher.spin_until(lambda: len({m.data for m in applied if m.data > 0}) >= VERSIONS, 600.0), \
            log.read_text()[-3000:]
        learner = diagnostic_values(diagnostics, system.LEARNER)[-1]
    finally:
        code = stop(launcher)
        watcher.close()
    output = log.read_text()
    assert code == 0 and 'all processes exited cleanly' in output, output[-3000:]
    assert learner['algorithm'] == 'branching_q' and int(learner['encoder_updates']) >= 1, learner
    decisions = int(learner['decisions'])
    # the pairing works: most decisions found their frame (a floor, not a rate: a busy learner may miss some)
    assert decisions >= 20 and int(learner['missing_observations']) < decisions / 2, learner
    part = load_part(latest_checkpoint(tmp_path / 'checkpoints'), system.LEARNER)
    observations = part.data['replay']['observations']
    assert tuple(observations.shape[1:]) == (84, 84, 3) and len(observations) >= decisions
    assert 'branching_q' in part.models and 0.0 <= float(learner['epsilon']) < 1.0
