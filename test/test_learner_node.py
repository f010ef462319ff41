"""learner_node over real rclpy: trains on experience and ships versioned weights."""
import numpy as np
import pytest
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import start_node, stop
from sensor_msgs.msg import JointState
from std_msgs.msg import Header, UInt8MultiArray

from ami_nodes.persistence.weights import decode_weights
from ami_nodes.ros import qos
from ami_nodes.ros.messages import (
    POLICY_MODEL,
    Experience,
    experience_names,
    experience_to_msg,
    msg_to_blob,
    ns_to_stamp,
)

pytestmark = pytest.mark.ros


def test_trains_on_experience_and_ships_versions(watcher, tmp_path):
    # Latched as the policy subscribes, but deep (every version, however fast they come), and
    # subscribed before the node starts, so its publisher finds this reader when it is made.
    weights = watcher.subscribe(UInt8MultiArray, 'policy_weights', QoSProfile(
        depth=50, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST))
    log = tmp_path / 'learner.log'
    node = start_node('ami_nodes.nodes.learner_node', 'learner_node', {
        'rollout_length': 16, 'min_new_samples': 16, 'minibatch_size': 16}, log=log)
    pub = watcher.node.create_publisher(JointState, 'experience', qos.EXPERIENCE)

    def versions():
        return {decode_weights(msg_to_blob(m), model=POLICY_MODEL).version for m in weights}
    try:
        assert watcher.spin_until(lambda: pub.get_subscription_count() > 0, 60.0)
        bad = JointState(name=['seq', 'oops'], position=[1.0, 2.0])
        names = experience_names(64)
        rng = np.random.default_rng(0)
        seq = 0  # samples sent before the writer has matched are lost: send until 3 versions
        while len(versions()) < 3:
            if seq % 20 == 0:
                pub.publish(bad)
            header = Header(stamp=ns_to_stamp(5_000_000_000 + seq * 50_000_000))
            exp = Experience(stamp_ns=0, seq=seq, policy_version=0, log_prob=-4.0, value=0.0,
                             action=tuple(int(rng.integers(0, d)) for d in (3, 3, 3, 2, 2)),
                             features=rng.normal(size=64).astype(np.float32))
            pub.publish(experience_to_msg(exp, header, names))
            watcher.spin_for(0.02)
            seq += 1
            assert seq < 3000, (versions(), log.read_text())
        # v0 waited for the policy's first experience; the versions only rose (a version may
        # come twice: once live, once from the latched history).
        shipped = [decode_weights(msg_to_blob(m), model=POLICY_MODEL).version for m in weights]
        assert shipped[0] == 0 and shipped == sorted(shipped), shipped
        # A late joiner still gets the newest weights (transient local).
        late_weights = watcher.subscribe(UInt8MultiArray, 'policy_weights', qos.LATCHED)
        assert watcher.spin_until(lambda: late_weights and decode_weights(
            msg_to_blob(late_weights[-1]), model=POLICY_MODEL).version == max(versions()), 30.0)
        assert node.poll() is None
    finally:
        assert stop(node) == 0
    assert 'refused experience: experience names do not follow' in log.read_text()


@pytest.mark.skipif(__import__('torch').cuda.is_available(), reason='this machine has CUDA')
def test_asking_for_cuda_without_a_gpu_stops_with_a_clear_error(tmp_path):
    log = tmp_path / 'learner.log'
    node = start_node('ami_nodes.nodes.learner_node', 'learner_node', {'device': 'cuda'}, log=log)
    try:
        code = node.wait(60)
    finally:
        stop(node)
    assert code == 2, log.read_text()
    assert "device is 'cuda' but torch sees no CUDA GPU" in log.read_text()
