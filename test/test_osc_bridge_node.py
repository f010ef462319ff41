"""osc_bridge_node over real rclpy and real UDP: VRChat semantics end to end."""
import threading

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from ros_harness import rejected, start_node, stop

from ami_nodes.actuation import vrchat_osc as osc
from ami_nodes.ros import qos
from ami_nodes.tools.launch_config import free_port

pytestmark = pytest.mark.ros


class OscRecorder:
    """A real UDP OSC server recording every message it receives, in the order it arrives
    (one server thread: a threading server could append them out of order)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, object]] = []
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args: self.messages.append((address, args[0])))
        self.server = BlockingOSCUDPServer(('127.0.0.1', 0), dispatcher)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def state(self) -> dict:
        out = {}
        for address, value in self.messages:
            out[address] = value
        return out

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def recorder():
    r = OscRecorder()
    yield r
    r.close()


def twist(watcher, x=0.0, y=0.0, z=0.0, yaw=0.0) -> TwistStamped:
    msg = TwistStamped()
    msg.header.stamp = watcher.node.get_clock().now().to_msg()
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z, msg.twist.angular.z = x, y, z, yaw
    return msg


def test_axes_changes_deadman_and_release_on_shutdown(watcher, recorder, tmp_path):
    pub = watcher.node.create_publisher(TwistStamped, 'cmd_vel', qos.STREAM)
    log = tmp_path / 'bridge.log'
    node = start_node('ami_nodes.nodes.osc_bridge_node', 'osc_bridge_node', {
        'port': recorder.port, 'deadman_timeout': 0.4}, log=log)
    try:
        assert watcher.spin_until(lambda: pub.get_subscription_count() > 0, 60.0)
        for _ in range(5):  # the same command five times: sent once
            pub.publish(twist(watcher, x=1.0, y=-0.5, yaw=1.0))
            watcher.spin_for(0.05)
        # The history, not the present state: the dead-man may release before the test looks.
        # ROS -y is VRChat right, ROS +yaw turns left
        command = [(osc.VERTICAL, 1.0), (osc.HORIZONTAL, pytest.approx(0.5)),
                   (osc.LOOK_HORIZONTAL, pytest.approx(-1.0)), (osc.RUN, 1)]
        assert watcher.spin_until(lambda: all(m in recorder.messages for m in command), 30.0), \
            recorder.messages
        sent = recorder.messages
        # the initial reset, then the command once (the four copies change nothing), then
        # only a release can set Vertical again
        vertical = [v for a, v in sent if a == osc.VERTICAL]
        assert vertical[:2] == [0, 1.0] and vertical[2:3] in ([], [0]), sent
        # no command for longer than the dead-man timeout: everything released (11 datagrams,
        # Vertical first: wait for all of them, not for the first)
        assert watcher.spin_until(lambda: all(v == 0 for v in recorder.state().values()), 10.0), \
            recorder.state()
        held = len(recorder.messages)
        pub.publish(twist(watcher, z=1.0))  # a jump, then shut down while it is held
        assert watcher.spin_until(lambda: (osc.JUMP, 1) in recorder.messages[held:], 10.0)
    finally:
        assert stop(node) == 0

    def released() -> bool:  # the last datagrams reach the recorder's thread
        final = recorder.state()
        return set(osc.ALL_INPUTS) <= set(final) and all(v == 0 for v in final.values())
    # released by the shutdown, or by the dead-man if it came first (test_clean_stop holds an
    # input through a shutdown with no dead-man in reach)
    assert watcher.spin_until(released, 10.0), recorder.state()


def test_unreachable_host_is_reported_and_survived(watcher, tmp_path):
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    pub = watcher.node.create_publisher(TwistStamped, 'cmd_vel', qos.STREAM)
    log = tmp_path / 'bridge.log'
    node = start_node('ami_nodes.nodes.osc_bridge_node', 'osc_bridge_node', {
        'host': 'no-such-host.invalid', 'port': free_port()}, log=log)
    try:
        assert watcher.spin_until(lambda: pub.get_subscription_count() > 0, 60.0)
        pub.publish(twist(watcher, x=0.5))

        def reported():
            return any(s.name == 'osc_bridge_node' and s.level == b'\x02' and
                       'cannot resolve OSC host' in s.message for d in diagnostics for s in d.status)
        assert watcher.spin_until(reported, 60.0)
        assert node.poll() is None
    finally:
        assert stop(node) == 0
    assert 'cannot resolve OSC host' in log.read_text()


def test_non_finite_cmd_vel_never_reaches_osc(watcher, recorder, tmp_path):
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    pub = watcher.node.create_publisher(TwistStamped, 'cmd_vel', qos.STREAM)
    node = start_node('ami_nodes.nodes.osc_bridge_node', 'osc_bridge_node', {
        'port': recorder.port}, log=tmp_path / 'bridge.log')
    try:
        assert watcher.spin_until(lambda: pub.get_subscription_count() > 0, 60.0)
        assert watcher.spin_until(lambda: len(recorder.messages) >= len(osc.ALL_INPUTS), 20.0)
        released = len(recorder.messages)  # the reset at start
        bad = [dict(x=float('nan')), dict(y=float('inf')), dict(yaw=-float('inf')),
               dict(x=0.5, z=float('nan'))]
        for values in bad:
            pub.publish(twist(watcher, **values))
        assert watcher.spin_until(lambda: rejected(diagnostics, 'osc_bridge_node', len(bad)), 10.0)
        pub.publish(twist(watcher, x=0.5))  # and a good one still moves
        assert watcher.spin_until(lambda: len(recorder.messages) > released, 10.0)
        # nothing came of the bad ones (later datagrams are the dead-man's release)
        assert recorder.messages[released] == (osc.VERTICAL, 0.5), recorder.messages
        assert all(v == 0 for _, v in recorder.messages[released + 1:]), recorder.messages
        assert node.poll() is None
    finally:
        assert stop(node) == 0


@pytest.mark.parametrize('params, says', [
    ({'port': 70000}, 'bad parameter port: '),
    ({'deadman_timeout': 'nan'}, 'bad parameter deadman_timeout: '),
    ({'mode': 'fly'}, "bad parameter mode: parameter mode is 'fly'"),
])
def test_a_bad_parameter_stops_the_node_with_one_clear_line(tmp_path, params, says):
    log = tmp_path / 'bridge.log'
    node = start_node('ami_nodes.nodes.osc_bridge_node', 'osc_bridge_node', params, log=log)
    try:
        code = node.wait(60)
    finally:
        stop(node)  # only if it hung
    text = log.read_text()
    assert code == 2, text
    assert says in text and 'Traceback' not in text
