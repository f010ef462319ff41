"""The actor core: action modes, sticky holds on frame time, adopting decoded weights."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.actor import MODES_OF, UNIFORM_LOG_PROB, Actor
from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.learning.branching_q import BranchingQNetwork
from ami_nodes.learning.holds import StickyRandom, hold_bounds_ns, uniform_action
from ami_nodes.persistence.weights import decode_weights, encode_weights

torch.set_num_threads(1)
TICK_NS = 50_000_000  # 20 Hz frame stamps


def test_sticky_holds_each_action_for_its_drawn_duration():
    sticky = StickyRandom(np.random.default_rng(7), 0.25, 2.0)
    replay = np.random.default_rng(7)  # the same draws, made by hand
    start_ns = 1_000_000_000
    changes, expected_action, hold_end = [], None, None
    for tick in range(2400):  # 120 s of frame time
        stamp = start_ns + tick * TICK_NS
        action = sticky(stamp)
        if hold_end is None or stamp >= hold_end:
            expected_action = uniform_action(replay)
            hold = int(replay.integers(250_000_000, 2_000_000_000, endpoint=True))
            hold_end = stamp + hold
            changes.append((stamp, hold))
        assert action == expected_action, tick
        assert (sticky.hold.hold_start_ns, sticky.hold.hold_ns) == changes[-1]
    holds = np.array([hold for _, hold in changes]) / 1e9
    # every hold within the configured bounds; a new one starts on the first frame at or after
    # the end of the previous one, so the gap between starts is the hold rounded up to a tick
    assert holds.min() >= 0.25 and holds.max() <= 2.0
    starts = np.array([stamp for stamp, _ in changes])
    gaps = np.diff(starts)
    assert np.all(gaps >= holds[:-1] * 1e9) and np.all(gaps < holds[:-1] * 1e9 + TICK_NS)
    # uniform in [0.25, 2.0]: mean 1.125 s, so about 120 / 1.15 holds in 120 s
    assert len(changes) > 80 and abs(holds.mean() - 1.125) < 0.15


def test_sticky_bounds_are_configurable_and_checked():
    sticky = StickyRandom(np.random.default_rng(3), 0.5, 0.5)
    starts = [t for t in range(0, 10 * TICK_NS * 20, TICK_NS)
              if sticky(t) is not None and sticky.hold.hold_start_ns == t]
    assert np.diff(starts).tolist() == [500_000_000] * (len(starts) - 1)  # exactly 10 ticks
    assert hold_bounds_ns(0.25, 2.0) == (250_000_000, 2_000_000_000)
    for low, high in ((0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)):
        with pytest.raises(ValueError, match='sticky_min_s'):
            hold_bounds_ns(low, high)


def test_sticky_restarts_when_stamps_go_back():
    sticky = StickyRandom(np.random.default_rng(0), 2.0, 2.0)
    sticky(10_000_000_000)
    sticky(5_000_000_000)  # a restarted source: its clock is behind the hold's start
    assert sticky.hold.hold_start_ns == 5_000_000_000


def test_action_modes_and_their_behaviour_log_probs():
    features = np.zeros(16, dtype=np.float32)
    actor = Actor(16, 8, 'sticky', seed=1)
    held = {actor.decide(features, t * TICK_NS).action for t in range(4)}  # 0.15 s < 0.25 s
    assert len(held) == 1
    decision = actor.decide(features, 0)
    assert decision.log_prob == UNIFORM_LOG_PROB == -np.log(np.prod(ACTION_DIMS))
    actor.set_action_mode('uniform')
    assert len({actor.decide(features, 0).action for _ in range(50)}) > 10
    actor.set_action_mode('greedy')
    greedy = actor.decide(features, 0)
    assert greedy.log_prob != UNIFORM_LOG_PROB
    assert {actor.decide(features, 0).action for _ in range(5)} == {greedy.action}
    actor.set_action_mode('sample')
    expected = actor.model.act(features).log_prob  # near uniform but not equal to it
    assert actor.decide(features, 0).log_prob == pytest.approx(expected, abs=0.05)
    with pytest.raises(ValueError, match='action_mode'):
        actor.set_action_mode('random')


def test_held_sample_holds_a_policy_sample_and_marks_each_decision_once():
    actor = Actor(16, 8, 'held_sample', seed=2, sticky_min_s=0.25, sticky_max_s=1.0)
    rng = np.random.default_rng(0)
    decisions = []
    for tick in range(1200):  # 60 s of 20 Hz frames, features changing every frame
        features = rng.normal(size=16).astype(np.float32)
        decisions.append(actor.decide(features, tick * TICK_NS))
    fresh = [i for i, d in enumerate(decisions) if d.fresh]
    assert fresh[0] == 0
    # each hold lasts 0.25-1 s of frame stamps: 5-20 ticks from one decision to the next
    gaps = np.diff(fresh)
    assert gaps.min() >= 5 and gaps.max() <= 20, gaps
    for start, end in zip(fresh, [*fresh[1:], len(decisions)]):
        held = decisions[start:end]
        assert {d.action for d in held} == {held[0].action}
        assert all(d == replace(held[0], fresh=False) for d in held[1:])
    # the decisions are the policy's samples: a log-prob of its own, not the uniform one
    assert all(d.log_prob != UNIFORM_LOG_PROB for d in decisions)
    assert len({decisions[i].action for i in fresh}) > 10
    actor.set_action_mode('sample')  # every tick a decision again
    assert all(actor.decide(np.zeros(16, np.float32), t).fresh for t in range(5))


def test_seed_fixes_initial_weights_and_sampling():
    first, second = Actor(16, 8, 'sample', seed=5), Actor(16, 8, 'sample', seed=5)
    for key, value in first.state().items():
        assert torch.equal(value, second.state()[key])
    features = np.ones(16, dtype=np.float32)
    torch.manual_seed(9)
    a = [first.decide(features, 0).action for _ in range(20)]
    torch.manual_seed(9)
    b = [second.decide(features, 0).action for _ in range(20)]
    assert a == b
    assert not torch.equal(Actor(16, 8, 'sample', seed=6).state()['actor.0.weight'],
                           first.state()['actor.0.weight'])


def test_build_adopts_decoded_weights_exactly_without_meta_tensors():
    source = ActorCritic(16, ACTION_DIMS, 8)
    packet = decode_weights(encode_weights(source.state_dict(), 3, 'm'), model='m')
    actor = Actor(16, 8, 'greedy', seed=0)
    model = actor.build(packet.tensors)
    assert not model.training
    assert all(t.device.type == 'cpu' for t in model.state_dict().values())
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    features = np.random.default_rng(0).normal(size=16).astype(np.float32)
    before = actor.decide(features, 0)
    actor.adopt(model)
    after = actor.decide(features, 0)
    expected = source.act(features, deterministic=True)
    assert after.action == tuple(int(a) for a in expected.action)
    assert after.value == pytest.approx(expected.value) and after.value != before.value
    with pytest.raises(RuntimeError):  # a tensor set of the wrong shape is refused
        actor.build(ActorCritic(16, ACTION_DIMS, 4).state_dict())


def test_epsilon_greedy_decides_every_decision_s_greedily_at_epsilon_zero():
    actor = Actor(8, 16, 'epsilon_greedy', seed=0, algorithm='branching_q', decision_s=0.25)
    q = BranchingQNetwork(8, ACTION_DIMS, 16)
    actor.adopt(actor.build(q.state_dict()), epsilon=0.0)
    rng = np.random.default_rng(1)
    decisions = []
    for tick in range(40):   # 2 s at 20 Hz: a decision every 5 frames
        features = rng.normal(size=8).astype(np.float32)
        decision = actor.decide(features, tick * TICK_NS)
        if decision.fresh:
            decisions.append(tick)
            assert decision.action == q.best(features)[0]
            held = decision.action
        assert decision.action == held and (decision.log_prob, decision.value) == (0.0, 0.0)
    assert decisions == list(range(0, 40, 5))


def test_epsilon_one_explores_with_held_random_actions_until_weights_say_otherwise():
    actor = Actor(8, 16, 'epsilon_greedy', seed=0, algorithm='branching_q', decision_s=0.25,
                  sticky_min_s=1.0, sticky_max_s=1.0)
    assert actor.epsilon == 1.0   # before any weights: the sticky walker, decided every 0.25 s
    features = np.zeros(8, np.float32)
    actions = [actor.decide(features, tick * TICK_NS).action for tick in range(80)]
    assert [len(set(actions[i:i + 20])) for i in range(0, 80, 20)] == [1, 1, 1, 1]
    assert len(set(actions)) > 1
    actor.set_decision_period(0.5)
    fresh = [actor.decide(features, (80 + tick) * TICK_NS).fresh for tick in range(40)]
    assert sum(fresh) == 4


def test_each_algorithm_acts_only_in_its_own_modes():
    assert MODES_OF['branching_q'] == ('epsilon_greedy',) and 'epsilon_greedy' not in MODES_OF['ppo']
    with pytest.raises(ValueError, match='modes of algorithm'):
        Actor(8, 16, 'sample', seed=0, algorithm='branching_q')
    with pytest.raises(ValueError, match='modes of algorithm'):
        Actor(8, 16, 'epsilon_greedy', seed=0)
    with pytest.raises(ValueError, match='algorithm'):
        Actor(8, 16, 'sample', seed=0, algorithm='dqn')
    q_actor = Actor(8, 16, 'epsilon_greedy', seed=0, algorithm='branching_q')
    assert isinstance(q_actor.model, BranchingQNetwork)
    with pytest.raises(RuntimeError):   # an actor-critic's weights do not fit a Q network
        q_actor.build(Actor(8, 16, 'sample', seed=0).state())
