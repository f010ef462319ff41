"""Run, save, pause/resume from the command line, stop, resume: the system continues.

Starts the whole system twice with ami_launch (separate processes, real DDS, real files).
"""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import REPO, Watcher, diagnostic_values, lifecycle_state, start_launcher, stop
from sensor_msgs.msg import JointState
from std_msgs.msg import Int64
from test_end_to_end import make_config, world_state

from ami_nodes.persistence import latest_checkpoint, list_checkpoints, load_part
from ami_nodes.ros import qos
from ami_nodes.ros.messages import msg_to_experience, stamp_to_ns

# whole systems: pytest.ini's 300 s is for one hung node; a loaded CI machine may need more
pytestmark = [pytest.mark.ros, pytest.mark.timeout(900)]


def launch(config: Path, tmp_path: Path, log: Path, *extra: str) -> subprocess.Popen:
    return start_launcher(config, tmp_path / 'checkpoints', log, *extra, log_dir=tmp_path / 'runs')


def ami(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'ami_nodes.tools.cli', *args], cwd=REPO,
                          capture_output=True, text=True, timeout=90)


def test_save_pause_stop_and_resume(tmp_path):
    config = make_config(tmp_path)
    root = tmp_path / 'checkpoints'
    watcher = Watcher('resume_watcher')
    experience = watcher.subscribe(JointState, 'experience', qos.EXPERIENCE)
    log = tmp_path / 'first.log'
    first = launch(config, tmp_path, log)
    try:
        assert watcher.spin_until(lambda: len(experience) > 100, 90.0), log.read_text()
        saved = ami('save')
        assert saved.returncode == 0 and 'checkpoint saved' in saved.stdout, saved
        assert Path(saved.stdout.split('checkpoint saved: ')[1].strip()).is_dir()

        paused = ami('pause', 'acting')
        paused_at_ns = time.time_ns()  # both services have answered: nothing acts after this
        assert paused.returncode == 0, paused
        # through the lifecycle: both acting nodes deactivated
        assert paused.stdout.count('deactivate ok') == 2, paused.stdout
        assert lifecycle_state(watcher, '/policy_node') == 'inactive'
        assert lifecycle_state(watcher, '/osc_bridge_node') == 'inactive'
        assert watcher.spin_until(lambda: world_state(config)['held_inputs'] == {}, 30.0), \
            'pausing must release every input'
        watcher.spin_for(1.5)  # also drains what was queued while `ami` ran
        late = [m for m in experience if stamp_to_ns(m.header.stamp) > paused_at_ns]
        assert not late, f'a paused policy must not act: {len(late)} frames after the pause'
        count = len(experience)
        resumed = ami('resume', 'acting')
        assert resumed.returncode == 0 and resumed.stdout.count('activate ok') == 2, resumed
        assert lifecycle_state(watcher, '/policy_node') == 'active'
        assert watcher.spin_until(lambda: len(experience) > count + 10, 60.0)
        status = ami('status')
        assert status.returncode == 0 and 'policy_node' in status.stdout and 'last_checkpoint' in status.stdout
        first.send_signal(signal.SIGINT)
        assert first.wait(180) == 0, log.read_text()[-3000:]
    finally:
        stop(first)
    assert 'final checkpoint: ' + str(root) in log.read_text()
    # `ami save`'s and the final one (a save whose reply DDS lost is asked again: maybe more)
    assert len(list_checkpoints(root)) >= 2
    final = latest_checkpoint(root)
    saved_policy = load_part(final, 'policy_node').interaction['policy']
    saved_learner = load_part(final, 'learner_node').interaction['learner']
    saved_frames = load_part(final, 'perception_node').trainers['online']['counters']['frames']
    assert saved_policy['version'] >= 1 and saved_frames > 100

    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    versions = watcher.subscribe(Int64, '/policy_node/version', qos.LATCHED)
    watcher.spin_for(1.0)  # drain what the first run left queued
    experience.clear()
    log = tmp_path / 'second.log'
    second_started_ns = time.time_ns()
    second = launch(config, tmp_path, log, '--checkpoint', 'latest')
    try:
        assert watcher.spin_until(lambda: len(experience) > 20, 90.0), log.read_text()
        watcher.spin_for(2.0)
        resumed = [e for e in map(msg_to_experience, experience) if e.stamp_ns > second_started_ns]
        assert len(resumed) > 20
        assert min(e.seq for e in resumed) >= saved_policy['seq'], 'tick numbering continues'
        assert min(e.policy_version for e in resumed) >= saved_policy['version']
        assert min(v.data for v in versions) >= saved_policy['version']
        # Every report of the resumed nodes continues from the checkpoint, the first included.
        reported = lambda node, key: [float(v[key]) for v in diagnostic_values(  # noqa: E731
            diagnostics, node) if key in v]
        assert watcher.spin_until(lambda: reported('learner_node', 'version') and max(
            reported('perception_node', 'frames'), default=0) > saved_frames, 60.0)
        assert min(reported('learner_node', 'version')) >= saved_learner['version']
        assert min(reported('perception_node', 'frames')) >= saved_frames
        second.send_signal(signal.SIGINT)
        assert second.wait(180) == 0, log.read_text()[-3000:]
    finally:
        stop(second)
        watcher.close()
    text = log.read_text()
    for node in ('perception_node', 'policy_node', 'learner_node'):
        assert f'[{node}] [INFO]' in text and f'resumed from {final}' in text


def test_incompatible_checkpoint_is_refused_with_the_tensor_name(tmp_path):
    from ami_nodes.action_space import ACTION_DIMS
    from ami_nodes.learning.actor_critic import ActorCritic
    from ami_nodes.persistence import CheckpointStore
    CheckpointStore(tmp_path).save({'policy_node': {
        'models': {'policy': ActorCritic(64, ACTION_DIMS, 32).state_dict()},
        'interaction': {'policy': {'version': 3, 'seq': 10}}}})
    result = subprocess.run(
        [sys.executable, '-m', 'ami_nodes.nodes.policy_node', '--ros-args',
         '-p', f'checkpoint_dir:={tmp_path}', '-p', 'checkpoint:=latest'],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert 'cannot resume from checkpoint' in result.stderr + result.stdout
    assert 'actor.0.weight' in result.stderr + result.stdout
