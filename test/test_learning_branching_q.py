"""Factored Q-learning from replay (learning/branching_q.py), no ROS."""
import numpy as np
import pytest
import torch

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.branching_q import BranchingQConfig, BranchingQLearner


def test_replay_rows_hold_n_step_returns_and_the_features_n_decisions_later():
    learner = BranchingQLearner(4, ACTION_DIMS, BranchingQConfig(q_gamma=0.5, q_n_step=3))
    features = [np.full(4, i, np.float32) for i in range(6)]
    for i, reward in enumerate([1.0, 0.0, 2.0, 0.0]):
        learner.observe(features[i], (i % 3, 0, 0, 0, 0), reward, features[i + 1])
    assert learner.size == 2 and learner.decisions == 4
    np.testing.assert_array_equal(np.flatnonzero(learner._valid), [0, 1])
    assert learner._returns[:2] == pytest.approx([1.0 + 0.25 * 2.0, 0.5 * 2.0])
    for row in (0, 1):   # each observation is kept once: a row's successor is the row n on
        np.testing.assert_array_equal(learner._observations[row], features[row])
        np.testing.assert_array_equal(learner._observations[row + 3], features[row + 3])
    np.testing.assert_array_equal(learner._actions[1], (1, 0, 0, 0, 0))


def _chain(learner: BranchingQLearner, start: int, decisions: int) -> None:
    """`decisions` decisions in one chain; observation i is filled with i, decision i is paid i."""
    for i in range(start, start + decisions):
        learner.observe(np.full(2, i, np.float32), (0,) * len(ACTION_DIMS), float(i), np.full(2, i + 1, np.float32))


def test_a_broken_chain_trains_only_on_decisions_whose_successors_were_seen():
    learner = BranchingQLearner(2, ACTION_DIMS, BranchingQConfig(q_gamma=1.0, q_n_step=2, q_capacity=64))
    _chain(learner, 0, 3)        # decisions 0, 1 and 2: 0 and 1 have seen two successors
    learner.break_chain()        # decision 2 never gets its second
    _chain(learner, 10, 2)       # a new chain from another observation: 10 is complete, 11 waits
    assert learner.size == 3 and learner.decisions == 5
    rows = np.flatnonzero(learner._valid)
    assert [float(learner._observations[r][0]) for r in rows] == [0.0, 1.0, 10.0]
    assert learner._returns[rows] == pytest.approx([0.0 + 1.0, 1.0 + 2.0, 10.0 + 11.0])
    assert [float(learner._observations[r + 2][0]) for r in rows] == [2.0, 3.0, 12.0]


def test_a_full_replay_gives_up_its_oldest_decisions_first():
    learner = BranchingQLearner(2, ACTION_DIMS, BranchingQConfig(q_n_step=1, q_capacity=16))
    _chain(learner, 0, 40)
    rows = np.flatnonzero(learner._valid)
    kept = sorted(float(learner._observations[r][0]) for r in rows)
    assert kept == list(np.arange(25.0, 40.0)) and learner.size == 15   # the newest slot holds 40, the next start
    learner.update()   # every drawn successor is the decision after its row
    assert all(float(learner._observations[(r + 1) % 16][0]) == float(learner._observations[r][0]) + 1 for r in rows)


def test_a_saved_learner_resumes_its_networks_counters_and_replay():
    config = BranchingQConfig(q_n_step=2, q_capacity=32, q_warmup_decisions=5)
    learner = BranchingQLearner(2, ACTION_DIMS, config, seed=3)
    _chain(learner, 0, 50)   # wrapped: the replay holds the newest 32 slots
    learner.train()
    state = learner.state_dict()
    again = BranchingQLearner(2, ACTION_DIMS, config, seed=9)
    again.load_state_dict(state)
    assert (again.decisions, again.updates, again.size) == (learner.decisions, learner.updates, learner.size)
    features = np.ones(2, np.float32)
    assert again.greedy(features) == learner.greedy(features)
    kept = sorted(float(again._observations[r][0]) for r in np.flatnonzero(again._valid))
    assert kept == sorted(float(learner._observations[r][0]) for r in np.flatnonzero(learner._valid))
    _chain(again, 100, 3)    # a new chain after the resume: 4 slots, 2 of them complete decisions
    assert again.size == learner.size - 4 + 2 and float(again._observations[0][0]) == 100.0
    smaller = BranchingQLearner(2, ACTION_DIMS, BranchingQConfig(q_n_step=2, q_capacity=8), seed=9)
    smaller.load_state_dict(state)   # keeps the newest decisions that fit, each with its successor
    assert sorted(float(smaller._observations[r][0]) for r in np.flatnonzero(smaller._valid)) == [43.0, 44.0, 45.0,
                                                                                                  46.0, 47.0, 48.0]
    other_n = BranchingQLearner(2, ACTION_DIMS, BranchingQConfig(q_n_step=3, q_capacity=32), seed=9)
    other_n.load_state_dict(state)   # returns of another length are not this learner's: dropped
    assert other_n.size == 0 and other_n.decisions == 50


def test_exploration_falls_from_one_to_its_floor():
    learner = BranchingQLearner(4, ACTION_DIMS, BranchingQConfig(epsilon_final=0.1, epsilon_decisions=10))
    rates = []
    for _ in range(12):
        rates.append(learner.epsilon())
        learner.observe(np.zeros(4), (0,) * len(ACTION_DIMS), 0.0, np.zeros(4))
    assert rates[0] == 1.0 and rates[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(rates, rates[1:]))


#: One-step returns, no bootstrap: Q is the immediate reward
ONE_STEP = BranchingQConfig(q_n_step=1, q_gamma=0.0, q_warmup_decisions=50)
PAYING_MOVE = (1, 2)   # the move head's paying choice in each of two kinds of view


def learn_two_kinds(learner: BranchingQLearner, observe_kind, rng: np.random.Generator, decisions: int = 800) -> None:
    """Uniformly random actions, one step each; moving forward pays in kind 0, back in kind 1."""
    kind, observation = 0, observe_kind(0)
    for _ in range(decisions):
        action = tuple(int(rng.integers(n)) for n in ACTION_DIMS)
        reward = float(action[0] == PAYING_MOVE[kind])
        kind = int(rng.integers(2))
        next_observation = observe_kind(kind)
        learner.observe(observation, action, reward, next_observation)
        learner.train()
        observation = next_observation


def test_it_learns_which_move_each_kind_of_view_pays_for():
    """Two kinds of feature vector; from random actions the greedy move head picks the paying choice in each."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 16)).astype(np.float32) * 3.0
    learner = BranchingQLearner(16, ACTION_DIMS, ONE_STEP, seed=0)

    def view(kind: int) -> np.ndarray:
        return centres[kind] + rng.normal(size=16).astype(np.float32) * 0.3

    learn_two_kinds(learner, view, rng)
    assert learner.updates > 0
    for k in (0, 1):
        choices = [learner.greedy(view(k))[0] for _ in range(20)]
        assert choices.count(PAYING_MOVE[k]) == 20, (k, choices)


def test_the_replay_is_encoded_when_drawn_so_a_changed_encoder_is_followed():
    """The replay keeps observations (here the kind's id); `encode` looks each kind's features up.
    When the encoder swaps the two kinds' features, replay alone (no new decisions) re-teaches
    the learner: features stored at decision time would keep the old, now wrong, choices."""
    rng = np.random.default_rng(1)
    looks = torch.as_tensor(rng.normal(size=(2, 16)).astype(np.float32) * 3.0)
    learner = BranchingQLearner(16, ACTION_DIMS, ONE_STEP, seed=0,
                                encode=lambda kinds: looks[torch.as_tensor(kinds[:, 0])])
    learn_two_kinds(learner, lambda kind: np.array([kind]), rng)
    assert [learner.greedy(looks[k].numpy())[0] for k in (0, 1)] == list(PAYING_MOVE)
    looks[:] = looks.flip(0).clone()
    for _ in range(300):
        learner.train()
    assert [learner.greedy(looks[k].numpy())[0] for k in (0, 1)] == list(PAYING_MOVE)


def test_an_exploring_decision_holds_its_random_action_then_greedy_takes_over():
    config = BranchingQConfig(epsilon_final=0.0, epsilon_decisions=5, explore_min_s=0.5, explore_max_s=0.5)
    learner = BranchingQLearner(4, ACTION_DIMS, config, seed=1)
    features, period_ns = np.ones(4, np.float32), 50_000_000   # 20 Hz
    held = [learner.act(features, tick * period_ns) for tick in range(10)]   # epsilon 1, a 0.5 s hold
    assert len(set(held)) == 1
    for _ in range(5):
        learner.observe(features, (0,) * len(ACTION_DIMS), 0.0, features)
    assert learner.epsilon() == 0.0
    assert learner.act(features, 10 * period_ns) == learner.greedy(features)


def test_a_feature_cache_encodes_each_observation_once_per_encoder_and_gives_what_encoding_gives():
    calls = []

    def encode(observations: np.ndarray) -> torch.Tensor:
        calls.append(len(observations))
        return torch.as_tensor(observations, dtype=torch.float32) * scale

    scale = 1.0
    config = BranchingQConfig(q_n_step=1, q_capacity=32, q_batch_size=16, q_warmup_decisions=0)
    cached = BranchingQLearner(2, ACTION_DIMS, config, seed=4, encode=encode, cache_features=True)
    plain = BranchingQLearner(2, ACTION_DIMS, config, seed=4, encode=encode)
    for learner in (cached, plain):
        _chain(learner, 0, 10)
    losses = np.array([(cached.update(), plain.update()) for _ in range(20)])
    np.testing.assert_allclose(losses[:, 0], losses[:, 1], rtol=1e-5)   # the same learning
    assert cached.encoded <= 11 < plain.encoded == 20 * 32   # 11 observations in the replay
    scale = 2.0
    cached.encoder_changed()
    before = cached.encoded
    cached.update()
    assert 0 < cached.encoded - before <= 11
    np.testing.assert_allclose(cached._features(np.array([3])).numpy(), [[6.0, 6.0]])
    _chain(cached, 100, 30)   # overwritten slots are encoded afresh
    np.testing.assert_allclose(cached._features(np.array([3])).numpy(), 2.0 * cached._observations[3][None])
