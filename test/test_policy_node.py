"""policy_node over real rclpy: acts on features, applies valid weights, refuses bad ones."""
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from ros_harness import rejected, start_node, stop
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header, Int64, UInt8MultiArray

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.persistence.weights import encode_weights
from ami_nodes.ros import qos
from ami_nodes.ros.messages import (
    POLICY_MODEL,
    blob_to_msg,
    features_to_msg,
    msg_to_action,
    msg_to_experience,
    ns_to_stamp,
    stamp_to_ns,
)

pytestmark = pytest.mark.ros


def weights(version: int, hidden: int = 128) -> UInt8MultiArray:
    model = ActorCritic(64, ACTION_DIMS, hidden)
    return blob_to_msg(encode_weights(model.state_dict(), version, POLICY_MODEL), 'test')


def test_acts_on_features_and_swaps_weights(watcher, tmp_path):
    cmd = watcher.subscribe(TwistStamped, 'cmd_vel')
    actions = watcher.subscribe(JointState, 'action')
    experience = watcher.subscribe(JointState, 'experience', qos.EXPERIENCE)
    versions = watcher.subscribe(Int64, '/policy_node/version', qos.LATCHED)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    features_pub = watcher.node.create_publisher(Image, 'features', qos.STREAM)
    weights_pub = watcher.node.create_publisher(UInt8MultiArray, 'policy_weights', qos.LATCHED)
    log = tmp_path / 'policy.log'
    node = start_node('ami_nodes.nodes.policy_node', 'policy_node', log=log)
    try:
        assert watcher.spin_until(lambda: features_pub.get_subscription_count() > 0, 60.0)
        stamps = []

        def tick(i):
            header = Header(frame_id='camera', stamp=ns_to_stamp(1_000_000_000 + i * 50_000_000))
            stamps.append(stamp_to_ns(header.stamp))
            features_pub.publish(features_to_msg(np.random.default_rng(i).normal(size=64), header))
            watcher.spin_for(0.06)

        i = 0  # best-effort features sent before both sides have matched are lost: tick on
        while len(experience) < 8:
            tick(i)
            i += 1
            assert i < 500, log.read_text()
        assert {stamp_to_ns(m.header.stamp) for m in cmd} <= set(stamps)
        assert watcher.spin_until(lambda: [stamp_to_ns(m.header.stamp) for m in actions] == [
            stamp_to_ns(m.header.stamp) for m in cmd], 20.0), 'every command has its action'
        msg_to_action(actions[-1])
        exp = msg_to_experience(experience[-1])
        assert exp.policy_version == -1 and exp.features.shape == (64,)
        assert [msg_to_experience(e).seq for e in experience] == sorted(msg_to_experience(e).seq for e in experience)

        bad = UInt8MultiArray()
        bad.data = b'\x80\x04not safetensors, maybe a pickle'
        weights_pub.publish(bad)
        # Each refusal is counted on /diagnostics; the log repeats a source at most every 5 s.
        assert watcher.spin_until(lambda: rejected(
            diagnostics, 'policy_node', 1, 'truncated weights blob'), 10.0), log.read_text()
        weights_pub.publish(weights(3, hidden=32))  # wrong shapes
        assert watcher.spin_until(lambda: rejected(diagnostics, 'policy_node', 2, 'shape'), 10.0)
        nan_weights = ActorCritic(64, ACTION_DIMS, 128)
        next(nan_weights.parameters()).data[0] = float('nan')
        weights_pub.publish(blob_to_msg(encode_weights(nan_weights.state_dict(), 4, POLICY_MODEL),
                                        'test'))
        assert watcher.spin_until(lambda: rejected(diagnostics, 'policy_node', 3, 'NaN'), 10.0)
        for _ in range(6):
            i += 1
            tick(i)
        assert 'refused policy_weights: rejected, keeping v-1' in log.read_text()
        assert node.poll() is None
        weights_pub.publish(weights(5))
        last = i + 500  # a bound on a hang, not a window: it ends when v5 is applied
        while not any(v.data == 5 for v in versions) and i < last:
            i += 1
            tick(i)
        i += 1
        assert any(v.data == 5 for v in versions), log.read_text()
        weights_pub.publish(weights(4))  # older: refused, v5 stays
        assert watcher.spin_until(lambda: rejected(
            diagnostics, 'policy_node', 4, 'version 4 is older than v5'), 10.0)
        before = len(experience)
        for j in range(i, i + 10):
            tick(j)
        assert watcher.spin_until(lambda: len(experience) > before, 30.0)
        assert msg_to_experience(experience[-1]).policy_version == 5
    finally:
        assert stop(node) == 0
    text = log.read_text()
    assert 'applied policy weights v5' in text and 'truncated weights blob' in text
