"""A second SIGINT (double Ctrl-C, or ros2 launch forwarding one) never breaks cleanup."""
import signal
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from ros_harness import start_node
from test_osc_bridge_node import OscRecorder, twist

from ami_nodes.actuation import vrchat_osc as osc
from ami_nodes.ros import qos

pytestmark = pytest.mark.ros


def test_two_sigints_still_release_every_input_and_exit_0(watcher, tmp_path):
    recorder = OscRecorder()
    pub = watcher.node.create_publisher(TwistStamped, 'cmd_vel', qos.STREAM)
    log = tmp_path / 'bridge.log'
    node = start_node('ami_nodes.nodes.osc_bridge_node', 'osc_bridge_node', {
        'port': recorder.port, 'deadman_timeout': 30.0}, log=log)
    try:
        assert watcher.spin_until(lambda: pub.get_subscription_count() > 0, 60.0)
        pub.publish(twist(watcher, x=1.0, yaw=1.0))
        assert watcher.spin_until(lambda: recorder.state().get(osc.VERTICAL) == 1.0, 10.0)
        node.send_signal(signal.SIGINT)
        node.send_signal(signal.SIGINT)
        code = node.wait(60)
        released = lambda: all(recorder.state().get(name) == 0 for name in osc.ALL_INPUTS)  # noqa: E731
        watcher.spin_until(released, 20.0)  # the last datagrams reach the recorder's thread
        final = recorder.state()
    finally:
        if node.poll() is None:
            node.kill()
        recorder.close()
    text = log.read_text()
    assert code == 0, text
    assert 'Traceback' not in text and 'KeyboardInterrupt' not in text, text
    assert 'releasing every input (shutdown)' in text, text
    assert set(osc.ALL_INPUTS) <= set(final) and all(v == 0 for v in final.values()), final


def test_a_second_sigint_during_the_learner_cleanup_is_ignored(watcher, tmp_path):
    """The learner's cleanup joins its training thread (which polls every 0.2 s): a second
    SIGINT soon after the first lands inside it, and must not interrupt it."""
    log = tmp_path / 'learner.log'
    node = start_node('ami_nodes.nodes.learner_node', 'learner_node',
                      {'log_dir': str(tmp_path / 'runs'), 'checkpoint_dir': str(tmp_path)},
                      log=log)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    try:  # up and spinning: it reports on /diagnostics
        assert watcher.spin_until(lambda: any(s.name == 'learner_node' for d in diagnostics
                                              for s in d.status), 60.0), log.read_text()
        node.send_signal(signal.SIGINT)
        time.sleep(0.05)  # spacing the two signals, not waiting for an outcome
        node.send_signal(signal.SIGINT)
        code = node.wait(60)
    finally:
        if node.poll() is None:
            node.kill()
    text = log.read_text()
    assert code == 0, text
    assert 'Traceback' not in text and 'KeyboardInterrupt' not in text, text
