"""learner_node's branching_q core (learning/decision_stream_q.py), no ROS."""
import numpy as np
import pytest

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.branching_q import BranchingQConfig
from ami_nodes.learning.decision_stream_q import MAX_OWED_DECISIONS, DecisionStreamConfig, DecisionStreamQ
from ami_nodes.perception.encoder import Encoder

NOOP = (0,) * len(ACTION_DIMS)


def stream(replay: str = 'features', **q) -> DecisionStreamQ:
    config = BranchingQConfig(**{'q_n_step': 1, 'q_warmup_decisions': 2, 'q_capacity': 256, **q})
    return DecisionStreamQ(8, ACTION_DIMS, config, DecisionStreamConfig(q_replay=replay, q_ship_every=3),
                           reward_weight=2.0)


def test_each_decision_completes_the_previous_one_with_the_reward_heard_since():
    core = stream()
    for seq in range(4):
        core.add(seq, np.full(8, seq, np.float32), (seq % 3, 0, 0, 0, 0), reward=float(seq))
    rows = np.flatnonzero(core.q._valid)
    # decision s is paid the reward that came with s + 1, weighed by extrinsic_weight
    assert [float(core.q._observations[r][0]) for r in rows] == [0.0, 1.0, 2.0]
    assert core.q._returns[rows] == pytest.approx([2.0, 4.0, 6.0])
    assert [tuple(core.q._actions[r]) for r in rows] == [(0, 0, 0, 0, 0), (1, 0, 0, 0, 0), (2, 0, 0, 0, 0)]


def test_a_hole_in_seq_or_a_missing_frame_breaks_the_chain():
    core = stream()
    core.add(0, np.zeros(8, np.float32), NOOP, 0.0)
    core.add(1, np.ones(8, np.float32), NOOP, 0.0)
    core.add(5, np.ones(8, np.float32), NOOP, 9.0)    # 2-4 lost: 1 and 5 are not joined
    core.add(6, None, NOOP, 9.0)                        # its frame never came
    core.add(7, np.ones(8, np.float32), NOOP, 9.0)    # follows a decision without a frame
    assert core.q.size == 1 and float(core.q._returns[np.flatnonzero(core.q._valid)[0]]) == 0.0
    assert core.counters['chain_breaks'] == 1 and core.counters['missing_observations'] == 1


def test_updates_are_owed_after_the_warm_up_capped_and_versions_come_every_ship_every():
    core = stream(q_updates_per_decision=2)
    for seq in range(3):                 # 2 decisions completed: the warm-up is over at the third add
        core.add(seq, np.full(8, seq, np.float32), NOOP, 0.0)
    assert core.owes()
    paid = versions = 0
    while core.owes():
        versions += core.train()
        paid += 1
    assert paid == 2 and versions == 0 and core.version == 0
    for seq in range(3, 3 + MAX_OWED_DECISIONS + 5):   # a learner far behind
        core.add(seq, np.full(8, seq, np.float32), NOOP, 0.0)
    assert core.counters['updates_given_up'] == 2 * 5
    while core.owes():
        versions += core.train()
    assert core.version == versions == (2 + 2 * MAX_OWED_DECISIONS) // 3


def test_a_frames_replay_trains_only_with_an_encoder_and_follows_each_new_one():
    core = stream('frames')
    frames = np.random.default_rng(0).integers(0, 255, (4, 84, 84, 3), dtype=np.uint8)
    for seq, frame in enumerate(frames[:3]):
        core.add(seq, frame, NOOP, 0.0)
    assert not core.trainable() and not core.owes()    # no encoder weights yet
    first = Encoder(feature_dim=8)
    core.set_encoder(first.state_dict(), 'a' * 64)
    core.add(3, frames[3], NOOP, 0.0)
    assert core.owes()
    before = core._encode_frames(frames[:1])
    core.set_encoder(Encoder(feature_dim=8).state_dict(), 'b' * 64)   # another init: other features
    assert not np.allclose(before.numpy(), core._encode_frames(frames[:1]).numpy())
    assert core.encoder_checksum == 'b' * 64 and core.counters['encoder_updates'] == 2
    core.train()


def test_refuses_an_unknown_replay():
    with pytest.raises(ValueError, match='q_replay'):
        DecisionStreamQ(8, ACTION_DIMS, BranchingQConfig(), DecisionStreamConfig(q_replay='pixels'))


def test_a_saved_stream_resumes_its_version_and_replay_and_starts_a_new_chain():
    core = stream()
    for seq in range(10):
        core.add(seq, np.full(8, seq, np.float32), NOOP, 1.0)
    while core.owes():
        core.train()
    again = stream()
    again.load_state_dict(core.state_dict())
    assert (again.version, again.q.size, again.q.decisions) == (core.version, core.q.size, core.q.decisions)
    again.add(10, np.full(8, 10, np.float32), NOOP, 1.0)   # follows nothing after a resume
    assert again.q.size == core.q.size and again.counters['chain_breaks'] == 0
    assert again.continue_above(again.version + 4) and again.version == core.version + 5


def test_live_settings_reach_the_learner():
    core = stream()
    core.update_setting('q_learning_rate', 1e-2)
    core.update_setting('extrinsic_weight', 0.5)
    core.update_setting('epsilon_final', 0.3)
    assert core.q.optimizer.param_groups[0]['lr'] == 1e-2 and core.reward_weight == 0.5
    assert core.q.config.epsilon_final == 0.3
    with pytest.raises(KeyError):
        core.update_setting('entropy_coef', 0.1)
