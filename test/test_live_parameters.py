"""Live parameters through the standard parameter services, as `ros2 param set` calls them.

The nodes run in this process (real rclpy, real services) so the test can look at what a
change did inside them; the client is rclpy's parameter client on its own node.
"""
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header

from ami_nodes.learning.actor import UNIFORM_LOG_PROB
from ami_nodes.ros import qos
from ami_nodes.ros.messages import features_to_msg, msg_to_action, msg_to_experience, ns_to_stamp

pytestmark = pytest.mark.ros


class Harness:
    """Nodes under test and a client node, spun together on a background thread."""

    def __init__(self) -> None:
        self.executor = SingleThreadedExecutor()
        self.client_node = rclpy.create_node('param_client')
        self.executor.add_node(self.client_node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.started = []

    def start(self, node_type):
        node = node_type()
        assert node.autostart(), node.failure  # configure and activate, as run_node does
        self.started.append(node)
        self.executor.add_node(node)
        if not self.spinner.is_alive():
            self.spinner.start()
        return node, Client(self.client_node, node.get_name())

    def close(self) -> None:
        self.executor.shutdown()
        self.spinner.join(timeout=10.0)
        for node in self.started:
            node.close()
            node.destroy_node()
        self.client_node.destroy_node()


@pytest.fixture
def ros(tmp_path):
    """rclpy with every node's files under tmp_path."""
    rclpy.init(args=['--ros-args', '-p', f'checkpoint_dir:={tmp_path}', '-p',
                     f'log_dir:={tmp_path}'])
    harness = Harness()
    yield harness
    harness.close()
    rclpy.shutdown()


class Client:
    """SetParameters / DescribeParameters on one node, waiting for each answer."""

    def __init__(self, node, target: str) -> None:
        self._client = AsyncParameterClient(node, target)
        assert self._client.wait_for_services(timeout_sec=20.0)

    @staticmethod
    def _wait(future):
        deadline = time.monotonic() + 20.0
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert future.done(), 'no answer from the parameter service'
        return future.result()

    def set(self, **values) -> list:
        """One SetParameters call per parameter, as `ros2 param set` makes; the results."""
        return [self._wait(self._client.set_parameters([Parameter(name, value=value)])).results[0]
                for name, value in values.items()]

    def set_together(self, **values):
        return self._wait(self._client.set_parameters_atomically(
            [Parameter(n, value=v) for n, v in values.items()])).result

    def read_only(self, *names) -> list[bool]:
        return [d.read_only for d in self._wait(self._client.describe_parameters(list(names))).descriptors]


def test_policy_node_applies_live_parameters_and_refuses_the_rest(ros):
    from ami_nodes.nodes.policy_node import PolicyNode
    node, client = ros.start(PolicyNode)
    assert client.read_only('action_mode', 'walk_speed', 'hidden_size', 'seed') == [
        False, False, True, True]

    ok, = client.set(action_mode='sticky')
    assert ok.successful and node._actor.action_mode == 'sticky' and node.p.action_mode == 'sticky'
    bad, = client.set(action_mode='random')
    assert not bad.successful and 'expected one of' in bad.reason
    assert node._actor.action_mode == 'sticky'

    read_only, = client.set(hidden_size=32)
    assert not read_only.successful and 'read-only' in read_only.reason
    out_of_range, = client.set(walk_speed=1000.0)
    assert not out_of_range.successful and node._limits.walk_speed == 0.5
    speed, = client.set(walk_speed=0.25)
    assert speed.successful and node._limits.walk_speed == 0.25

    crossed, = client.set(sticky_min_s=3.0)  # above sticky_max_s 2.0
    assert not crossed.successful and 'must not exceed sticky_max_s' in crossed.reason
    moved = client.set_together(sticky_min_s=3.0, sticky_max_s=4.0)
    assert moved.successful
    assert (node._actor._sticky.hold.min_ns, node._actor._sticky.hold.max_ns) == (3_000_000_000,
                                                                       4_000_000_000)

    # the running node now holds one random action for >= 3 s of frame stamps
    experience = []
    ros.client_node.create_subscription(JointState, 'experience', experience.append,
                                        qos.EXPERIENCE)
    features = ros.client_node.create_publisher(Image, 'features', qos.STREAM)
    for tick in range(40):  # 2 s of stamps at 20 Hz; LATEST QoS may drop some
        header = Header(frame_id='camera', stamp=ns_to_stamp(5_000_000_000 + tick * 50_000_000))
        features.publish(features_to_msg(np.zeros(64, np.float32), header))
        time.sleep(0.02)
    deadline = time.monotonic() + 20.0
    while len(experience) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    decoded = [msg_to_experience(m) for m in experience]
    assert len(decoded) >= 10 and len({e.action for e in decoded}) == 1
    assert all(e.log_prob == UNIFORM_LOG_PROB for e in decoded)

    # held_sample: the policy's own sample, held >= 3 s, is one step of experience
    ok, = client.set(action_mode='held_sample')
    assert ok.successful
    actions = []
    ros.client_node.create_subscription(JointState, 'action', actions.append, qos.STREAM)
    before = len(experience)
    tick = 0
    while len(actions) < 10:  # stamps 10 ms apart: under 3 s of them, so within one hold
        assert tick < 290, 'the policy did not act on held_sample'
        header = Header(frame_id='camera', stamp=ns_to_stamp(8_000_000_000 + tick * 10_000_000))
        features.publish(features_to_msg(np.zeros(64, np.float32), header))
        tick += 1
        time.sleep(0.02)
    deadline = time.monotonic() + 20.0
    while len(experience) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    held = [msg_to_experience(m) for m in experience[before:]]
    assert len(held) == 1 and held[0].log_prob != UNIFORM_LOG_PROB, held
    assert len({msg_to_action(m) for m in actions}) == 1


def test_learner_node_changes_its_optimisers_and_weights_at_once(ros):
    from ami_nodes.nodes.learner_node import LearnerNode
    node, client = ros.start(LearnerNode)
    results = client.set(entropy_coef=0.05, learning_rate=1e-3, curiosity_learning_rate=2e-3,
                         intrinsic_weight=0.5, extrinsic_weight=2.0, min_new_samples=64)
    assert all(r.successful for r in results), [r.reason for r in results]
    config = node.core.config
    assert (config.ppo.entropy_coef, config.intrinsic_weight, config.extrinsic_weight,
            config.min_new_samples) == (0.05, 0.5, 2.0, 64)
    assert node.core.trainer.optimizer.param_groups[0]['lr'] == 1e-3
    assert node.core.curiosity.optimizer.param_groups[0]['lr'] == 2e-3
    for name, value in (('hidden_size', 64), ('rollout_length', 64), ('seed', 3)):
        refused, = client.set(**{name: value})
        assert not refused.successful and 'read-only' in refused.reason, name
    too_big, = client.set(entropy_coef=50.0)
    assert not too_big.successful and config.ppo.entropy_coef == 0.05


def test_perception_node_live_training_settings(ros):
    from ami_nodes.nodes.perception_node import PerceptionNode
    node, client = ros.start(PerceptionNode)
    results = client.set(learning_rate=1e-4, train_every=4, loss_variance=2.0)
    assert all(r.successful for r in results), [r.reason for r in results]
    assert node.core.optimizer.param_groups[0]['lr'] == 1e-4 and node.core.train_every == 4
    assert node.core.aux.config.loss_variance == 2.0  # the loss reads this weight
    switched, = client.set(budget_fraction=0.5)
    assert not switched.successful and 'restart' in switched.reason
    refused, = client.set(feature_dim=32)
    assert not refused.successful and 'read-only' in refused.reason


def test_osc_bridge_retimes_its_dead_man_check(ros):
    from ami_nodes.nodes.osc_bridge_node import OscBridgeNode
    node, client = ros.start(OscBridgeNode)
    ok, = client.set(deadman_timeout=2.0)
    assert ok.successful and node.p.deadman_timeout == 2.0
    assert node._deadman_timer.timer_period_ns == 1_000_000_000
    port, = client.set(port=9100)
    assert not port.successful and 'read-only' in port.reason
