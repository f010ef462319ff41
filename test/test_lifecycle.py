"""Managed nodes through the standard lifecycle services, as `ros2 lifecycle set` calls them."""
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from lifecycle_msgs.msg import Transition
from ros_harness import change_state, diagnostic_values, lifecycle_state, start_node, stop
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from test_osc_bridge_node import OscRecorder, twist

from ami_nodes.actuation import vrchat_osc as osc
from ami_nodes.ros import qos
from ami_nodes.ros.messages import features_to_msg, ns_to_stamp, stamp_to_ns

ACTIVATE = Transition.TRANSITION_ACTIVATE
DEACTIVATE = Transition.TRANSITION_DEACTIVATE
CONFIGURE = Transition.TRANSITION_CONFIGURE


def reported(diagnostics: list, node: str, key: str, value: str) -> bool:
    return any(v.get(key) == value for v in diagnostic_values(diagnostics, node))


def test_deactivated_bridge_releases_every_input_and_ignores_commands(watcher, tmp_path):
    recorder = OscRecorder()
    pub = watcher.node.create_publisher(TwistStamped, 'cmd_vel', qos.STREAM)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    log = tmp_path / 'bridge.log'
    node = start_node('ami_nodes.nodes.osc_bridge_node', 'osc_bridge_node', {
        'port': recorder.port, 'deadman_timeout': 30.0}, log=log)
    try:
        assert watcher.spin_until(lambda: pub.get_subscription_count() > 0, 60.0)
        assert lifecycle_state(watcher, '/osc_bridge_node') == 'active'  # autostart

        def walking() -> bool:
            pub.publish(twist(watcher, x=1.0, yaw=1.0))
            state = recorder.state()
            return state.get(osc.VERTICAL) == 1.0 and state.get(osc.LOOK_HORIZONTAL) == -1.0
        assert watcher.spin_until(walking, 10.0), recorder.messages

        assert change_state(watcher, '/osc_bridge_node', DEACTIVATE)
        assert lifecycle_state(watcher, '/osc_bridge_node') == 'inactive'
        # The release went out before the service answered: every input is at rest now.
        assert watcher.spin_until(lambda: all(v == 0 for v in recorder.state().values()), 10.0)
        released_at = len(recorder.messages)
        for _ in range(10):  # commands while inactive: nothing sent
            pub.publish(twist(watcher, x=1.0, yaw=1.0))
            watcher.spin_for(0.02)
        assert watcher.spin_until(lambda: reported(
            diagnostics, 'osc_bridge_node', 'lifecycle_state', 'inactive'), 10.0)
        assert all(v == 0 for _, v in recorder.messages[released_at:]), recorder.messages

        assert change_state(watcher, '/osc_bridge_node', ACTIVATE)
        assert watcher.spin_until(walking, 10.0), recorder.messages
    finally:
        assert stop(node) == 0, log.read_text()
        recorder.close()
    assert 'releasing every input (deactivated)' in log.read_text()


def test_deactivated_policy_stops_and_acts_again_on_activate(watcher, tmp_path):
    cmd = watcher.subscribe(TwistStamped, 'cmd_vel')
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    features_pub = watcher.node.create_publisher(Image, 'features', qos.STREAM)
    log = tmp_path / 'policy.log'
    node = start_node('ami_nodes.nodes.policy_node', 'policy_node', log=log)
    rng = np.random.default_rng(0)
    tick = iter(range(10**6))

    def publish_features() -> int:
        stamp = ns_to_stamp(1_000_000_000 + next(tick) * 50_000_000)
        features_pub.publish(features_to_msg(rng.normal(size=64), Header(stamp=stamp)))
        watcher.spin_for(0.03)
        return stamp_to_ns(stamp)

    def idle_frames() -> int:
        values = diagnostic_values(diagnostics, 'policy_node')
        return int(values[-1].get('idle_frames', 0)) if values else 0
    try:
        assert watcher.spin_until(lambda: features_pub.get_subscription_count() > 0, 60.0)
        # Best-effort features sent before both sides have matched are lost: send until acted on.
        acted = set()
        while len(cmd) < 3:
            acted.add(publish_features())
            assert len(acted) < 2000, log.read_text()

        assert change_state(watcher, '/policy_node', DEACTIVATE)
        # deactivate sends one stop command (zero velocity), stamped now
        assert watcher.spin_until(lambda: any(
            stamp_to_ns(m.header.stamp) not in acted for m in cmd), 10.0)
        stop_commands = [m for m in cmd if stamp_to_ns(m.header.stamp) not in acted]
        assert len(stop_commands) == 1 and stop_commands[0].twist.linear.x == 0.0
        before = len(cmd)
        ignored = set()
        # features while inactive: counted on /diagnostics as idle_frames, never acted on
        while not (idle_frames() >= 3 and reported(
                diagnostics, 'policy_node', 'lifecycle_state', 'inactive')):
            ignored.add(publish_features())
            assert len(ignored) < 2000, 'the inactive policy never reported idle frames'
        assert len(cmd) == before
        assert not {stamp_to_ns(m.header.stamp) for m in cmd} & ignored

        assert change_state(watcher, '/policy_node', ACTIVATE)
        again = set()
        while not {stamp_to_ns(m.header.stamp) for m in cmd} & again:
            again.add(publish_features())
            assert len(again) < 2000, 'the activated policy never acted again'
    finally:
        assert stop(node) == 0, log.read_text()


def test_learner_with_a_wrong_checkpoint_fails_configure_and_stays_alive(watcher, tmp_path):
    from ami_nodes.learning.experience import ExperienceBuffer
    from ami_nodes.learning.learner import CuriosityPPOLearner
    from ami_nodes.persistence import CheckpointStore
    CheckpointStore(tmp_path).save({'learner_node': {
        'trainers': {'learner': CuriosityPPOLearner(feature_dim=32).state_dict()},
        'data': {'experience': ExperienceBuffer().state_dict()},
        'interaction': {'learner': {'updates': 3, 'version': 3}}}})
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    log = tmp_path / 'learner.log'
    node = start_node('ami_nodes.nodes.learner_node', 'learner_node', {
        'autostart': 'false', 'checkpoint_dir': tmp_path, 'checkpoint': 'latest',
        'log_dir': tmp_path / 'runs'}, log=log)
    try:
        assert lifecycle_state(watcher, '/learner_node') == 'unconfigured'
        assert not change_state(watcher, '/learner_node', CONFIGURE)
        assert lifecycle_state(watcher, '/learner_node') == 'unconfigured'
        assert node.poll() is None, log.read_text()
        assert watcher.spin_until(lambda: any(
            'cannot resume from checkpoint' in v.get('failure', '')
            for v in diagnostic_values(diagnostics, 'learner_node')), 10.0)
        text = log.read_text()
        assert 'configure failed: cannot resume from checkpoint' in text
        assert 'Traceback' not in text
    finally:
        assert stop(node) == 0, log.read_text()


def test_learner_cleanup_takes_a_final_checkpoint_and_configures_again(watcher, tmp_path):
    from ami_nodes.persistence import latest_checkpoint
    root = tmp_path / 'checkpoints'
    log = tmp_path / 'learner.log'
    node = start_node('ami_nodes.nodes.learner_node', 'learner_node', {
        'checkpoint_dir': root, 'checkpoint_parts': '[learner_node]', 'checkpoint_period': 0.0,
        'log_dir': tmp_path / 'runs'}, log=log)
    try:
        assert lifecycle_state(watcher, '/learner_node') == 'active'  # autostart
        assert latest_checkpoint(root) is None
        assert change_state(watcher, '/learner_node', DEACTIVATE)
        assert change_state(watcher, '/learner_node', Transition.TRANSITION_CLEANUP)
        assert lifecycle_state(watcher, '/learner_node') == 'unconfigured'
        assert watcher.spin_until(lambda: latest_checkpoint(root) is not None, 30.0), \
            log.read_text()
        assert change_state(watcher, '/learner_node', CONFIGURE)
        assert change_state(watcher, '/learner_node', ACTIVATE)
        assert lifecycle_state(watcher, '/learner_node') == 'active'
    finally:
        assert stop(node) == 0, log.read_text()
    assert 'final checkpoint' in log.read_text()
