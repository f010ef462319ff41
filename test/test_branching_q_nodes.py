"""branching_q over real rclpy: perception ships its encoder, the learner pairs decisions with
frames and ships Q weights with an exploration rate, the policy acts epsilon-greedily on them."""
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import answered, diagnostic_values, rejected, start_node, stop
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, Header, Int64, UInt8MultiArray
from std_srvs.srv import Trigger

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.branching_q import BranchingQNetwork
from ami_nodes.perception.encoder import Encoder
from ami_nodes.persistence import latest_checkpoint
from ami_nodes.persistence.weights import decode_weights, encode_weights
from ami_nodes.ros import qos
from ami_nodes.ros.messages import (
    ENCODER_MODEL,
    EPSILON_KEY,
    Q_POLICY_MODEL,
    Experience,
    blob_to_msg,
    experience_names,
    experience_to_msg,
    features_to_msg,
    msg_to_blob,
    msg_to_experience,
    ns_to_stamp,
    rgb_to_image,
)

pytestmark = pytest.mark.ros
DEEP_LATCHED = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)
DECISION_NS = 250_000_000


Q_LEARNER = {'algorithm': 'branching_q', 'q_warmup_decisions': 5, 'q_ship_every': 2, 'q_updates_per_decision': 1,
             'q_batch_size': 8, 'epsilon_decisions': 40, 'extrinsic_weight': 1.0}


class Decisions:
    """Frames, experience and rewards as camera, policy and bridge send them, one decision at a time."""

    def __init__(self, watcher, skip_frame_of: int | None = None) -> None:
        self.watcher, self.skip_frame_of = watcher, skip_frame_of
        self.frames = watcher.node.create_publisher(Image, 'image_raw', qos.STREAM)
        self.experience = watcher.node.create_publisher(JointState, 'experience', qos.EXPERIENCE)
        self.rewards = watcher.node.create_publisher(Float32, 'reward', qos.STREAM)
        self.names, self.rng, self.seq = experience_names(64), np.random.default_rng(0), 0

    def matched(self) -> bool:
        return self.experience.get_subscription_count() > 0 and self.frames.get_subscription_count() > 0

    def send(self) -> None:
        header = Header(stamp=ns_to_stamp(10_000_000_000 + self.seq * DECISION_NS))
        if self.seq != self.skip_frame_of:
            self.frames.publish(rgb_to_image(self.rng.integers(0, 255, (84, 84, 3), dtype=np.uint8), header))
        self.watcher.spin_for(0.01)
        if self.seq % 7 == 0:
            self.rewards.publish(Float32(data=1.0))
        exp = Experience(stamp_ns=0, seq=self.seq, policy_version=-1, log_prob=0.0, value=0.0,
                         action=tuple(int(self.rng.integers(0, d)) for d in ACTION_DIMS),
                         features=np.zeros(64, np.float32))
        self.experience.publish(experience_to_msg(exp, header, self.names))
        self.watcher.spin_for(0.04)
        self.seq += 1


def test_learner_pairs_decisions_with_frames_and_ships_q_weights_with_epsilon(watcher, tmp_path):
    weights = watcher.subscribe(UInt8MultiArray, 'policy_weights', DEEP_LATCHED)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    log = tmp_path / 'learner.log'
    node = start_node('ami_nodes.nodes.learner_node', 'learner_node', Q_LEARNER, log=log)
    decisions = Decisions(watcher, skip_frame_of=3)   # one decision's frame never comes
    encoder = watcher.node.create_publisher(UInt8MultiArray, 'encoder_weights', qos.LATCHED)

    def shipped() -> list:
        return [decode_weights(msg_to_blob(m), model=Q_POLICY_MODEL) for m in weights]
    try:
        assert watcher.spin_until(decisions.matched, 60.0)
        garbage = UInt8MultiArray()
        garbage.data = b'not a safetensors blob'
        encoder.publish(garbage)
        assert watcher.spin_until(lambda: rejected(diagnostics, 'learner_node', 1, 'encoder_weights'), 30.0)
        wrong = rgb_to_image(np.zeros((84, 84, 3), np.uint8), Header())
        wrong.encoding = '16UC1'
        decisions.frames.publish(wrong)
        assert watcher.spin_until(lambda: rejected(diagnostics, 'learner_node', 2, 'encoding'), 30.0)
        encoder.publish(blob_to_msg(encode_weights(Encoder().state_dict(), 7, ENCODER_MODEL), 'encoder'))
        # what goes out before both sides have matched is lost: decide until 4 versions
        while len({p.version for p in shipped()}) < 4:
            decisions.send()
            assert decisions.seq < 2000, log.read_text()
        packets = shipped()
        assert packets[0].version == 0 and [p.version for p in packets] == sorted(p.version for p in packets)
        epsilons = [float(p.metadata[EPSILON_KEY]) for p in packets]   # falls as decisions come
        assert epsilons == sorted(epsilons, reverse=True) and epsilons[-1] < epsilons[0] <= 1.0
        assert watcher.spin_until(lambda: any(
            int(v.get('missing_observations', 0)) >= 1 and v.get('encoder_updates') == '1'
            for v in diagnostic_values(diagnostics, 'learner_node')), 30.0), diagnostic_values(
                diagnostics, 'learner_node')[-1:]
        assert node.poll() is None
    finally:
        assert stop(node) == 0


def test_a_restarted_q_learner_resumes_its_replay_and_ships_above_what_it_had(watcher, tmp_path):
    weights = watcher.subscribe(UInt8MultiArray, 'policy_weights', DEEP_LATCHED)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    params = {**Q_LEARNER, 'q_replay': 'features', 'checkpoint_parts': "['learner_node']",
              'checkpoint_dir': str(tmp_path / 'checkpoints'), 'log_dir': str(tmp_path / 'runs')}
    decisions = Decisions(watcher)

    def versions() -> set[int]:
        return {decode_weights(msg_to_blob(m), model=Q_POLICY_MODEL).version for m in weights}

    def replay_sizes() -> list[int]:
        return [int(v['replay_size']) for v in diagnostic_values(diagnostics, 'learner_node') if 'replay_size' in v]
    node = start_node('ami_nodes.nodes.learner_node', 'learner_node', params, log=tmp_path / 'first.log')
    try:
        assert watcher.spin_until(decisions.matched, 60.0)
        while len(versions()) < 3:
            decisions.send()
            assert decisions.seq < 2000, (tmp_path / 'first.log').read_text()
        save = watcher.node.create_client(Trigger, '/learner_node/save')   # as ami_launch does before a stop
        assert answered(watcher, save, Trigger.Request())
        assert watcher.spin_until(lambda: latest_checkpoint(tmp_path / 'checkpoints') is not None, 60.0)
        assert watcher.spin_until(replay_sizes, 60.0)
    finally:
        assert stop(node) == 0
    before, replay = max(versions()), replay_sizes()[-1]
    weights.clear()
    diagnostics.clear()
    node = start_node('ami_nodes.nodes.learner_node', 'learner_node', {**params, 'checkpoint': 'latest'},
                      log=tmp_path / 'second.log')
    try:
        assert watcher.spin_until(decisions.matched, 60.0)
        while not (versions() and max(versions()) > before):   # no decision owes updates until one comes
            decisions.send()
            assert decisions.seq < 4000, (tmp_path / 'second.log').read_text()
        # /diagnostics has its own period: a new version can come before the restarted node's first status
        assert watcher.spin_until(replay_sizes, 60.0), (tmp_path / 'second.log').read_text()
        assert replay_sizes()[0] >= replay, (replay_sizes(), replay)
    finally:
        assert stop(node) == 0
    assert 'resumed from' in (tmp_path / 'second.log').read_text()


def refusal(tmp_path, node_name: str, params: dict) -> str:
    """What a node that must refuse to configure logged; it must have exited non-zero."""
    log = tmp_path / f'{node_name}.log'
    node = start_node(f'ami_nodes.nodes.{node_name}', node_name, params, log=log)
    try:
        code = node.wait(60)
    finally:
        stop(node)
    assert code != 0, log.read_text()
    return log.read_text()


def test_a_fleet_learner_refuses_branching_q(tmp_path):
    assert 'algorithm branching_q learns from one robot' in refusal(tmp_path, 'learner_node', {
        'algorithm': 'branching_q', 'experience_topics': "['robot_0/experience','robot_1/experience']"})


def q_weights(version: int, epsilon: str, network: BranchingQNetwork) -> UInt8MultiArray:
    return blob_to_msg(encode_weights(network.state_dict(), version, Q_POLICY_MODEL, {EPSILON_KEY: epsilon}), 'q')


def test_policy_acts_greedily_with_q_weights_at_epsilon_zero_one_step_per_decision(watcher, tmp_path):
    experience = watcher.subscribe(JointState, 'experience', qos.EXPERIENCE)
    versions = watcher.subscribe(Int64, '/policy_node/version', qos.LATCHED)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    features_pub = watcher.node.create_publisher(Image, 'features', qos.STREAM)
    weights_pub = watcher.node.create_publisher(UInt8MultiArray, 'policy_weights', qos.LATCHED)
    log = tmp_path / 'policy.log'
    node = start_node('ami_nodes.nodes.policy_node', 'policy_node', {
        'algorithm': 'branching_q', 'action_mode': 'epsilon_greedy', 'decision_s': 0.25,
        'sticky_min_s': 0.25, 'sticky_max_s': 0.25}, log=log)   # an exploring hold is one decision
    network = BranchingQNetwork(64, ACTION_DIMS, 128)
    rng = np.random.default_rng(2)
    sent: dict[int, np.ndarray] = {}

    def tick(i: int) -> None:
        header = Header(stamp=ns_to_stamp(1_000_000_000 + i * 50_000_000))
        sent[i] = rng.normal(size=64).astype(np.float32)
        features_pub.publish(features_to_msg(sent[i], header))
        watcher.spin_for(0.03)
    try:
        assert watcher.spin_until(lambda: features_pub.get_subscription_count() > 0, 60.0)
        weights_pub.publish(q_weights(1, '1.5', network))   # not a probability
        assert watcher.spin_until(lambda: rejected(diagnostics, 'policy_node', 1, 'epsilon'), 20.0)
        weights_pub.publish(q_weights(2, '0.0', network))
        i = 0
        while not any(v.data == 2 for v in versions):
            tick(i)
            i += 1
            assert i < 1000, log.read_text()
        first = len(experience)
        for _ in range(60):   # 3 s of frames: a decision every 5
            tick(i)
            i += 1
        assert watcher.spin_until(lambda: len(experience) - first >= 10, 20.0)
        steps = [msg_to_experience(m) for m in experience[first:]]
        steps = [s for s in steps if s.policy_version == 2][1:]   # after v2's first decision: none in a hold
        by_stamp = {1_000_000_000 + j * 50_000_000: j for j in sent}
        for step in steps:   # greedy: each decision is the network's best action on its features
            assert step.action == network.best(sent[by_stamp[step.stamp_ns]])[0]
        gaps = np.diff([s.stamp_ns for s in steps])
        assert set(gaps.tolist()) == {250_000_000}, gaps   # one step per decision, none per frame
        assert watcher.spin_until(lambda: any(v.get('epsilon') == '0'
                                              for v in diagnostic_values(diagnostics, 'policy_node')), 20.0)
    finally:
        assert stop(node) == 0


def test_policy_refuses_a_mode_its_algorithm_does_not_act_in(tmp_path):
    assert 'does not act with the branching_q network' in refusal(tmp_path, 'policy_node', {
        'algorithm': 'branching_q', 'action_mode': 'sample'})


def test_perception_ships_its_encoder_while_someone_listens(watcher, tmp_path):
    blobs = watcher.subscribe(UInt8MultiArray, 'encoder_weights', qos.LATCHED)
    images = watcher.node.create_publisher(Image, 'image_raw', qos.STREAM)
    log = tmp_path / 'perception.log'
    node = start_node('ami_nodes.nodes.perception_node', 'perception_node', {
        'encoder_weights_period': 0.5, 'replay_batch': 0}, log=log)
    rng = np.random.default_rng(3)
    try:
        assert watcher.spin_until(lambda: images.get_subscription_count() > 0, 60.0)
        i = 0
        while len({decode_weights(msg_to_blob(b), model=ENCODER_MODEL).version for b in blobs}) < 2:
            header = Header(stamp=ns_to_stamp(1_000_000_000 + i * 50_000_000))
            images.publish(rgb_to_image(rng.integers(0, 255, (84, 84, 3), dtype=np.uint8), header))
            watcher.spin_for(0.05)
            i += 1
            assert i < 2000, log.read_text()
        packet = decode_weights(msg_to_blob(blobs[-1]), model=ENCODER_MODEL,
                                expected={k: (tuple(v.shape), v.dtype) for k, v in Encoder().state_dict().items()})
        assert packet.version > 0   # versioned by training steps: it trained between the two
    finally:
        assert stop(node) == 0
