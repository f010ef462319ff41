"""Factored Q-learning from replay (learning/branching_q.py), no ROS."""
import numpy as np
import pytest
import torch

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.branching_q import BranchingQConfig, BranchingQLearner


def test_replay_rows_hold_n_step_returns_and_the_features_n_decisions_later():
    learner = BranchingQLearner(4, ACTION_DIMS, BranchingQConfig(gamma=0.5, n_step=3))
    features = [np.full(4, i, np.float32) for i in range(6)]
    for i, reward in enumerate([1.0, 0.0, 2.0, 0.0]):
        learner.observe(features[i], (i % 3, 0, 0, 0, 0), reward, features[i + 1])
    assert learner.size == 2 and learner.decisions == 4
    assert learner._returns[:2] == pytest.approx([1.0 + 0.25 * 2.0, 0.5 * 2.0])
    np.testing.assert_array_equal(learner._next_observations[0], features[3])
    np.testing.assert_array_equal(learner._next_observations[1], features[4])
    np.testing.assert_array_equal(learner._actions[1], (1, 0, 0, 0, 0))


def test_exploration_falls_from_one_to_its_floor():
    learner = BranchingQLearner(4, ACTION_DIMS, BranchingQConfig(epsilon_final=0.1, epsilon_decisions=10))
    rates = []
    for _ in range(12):
        rates.append(learner.epsilon())
        learner.observe(np.zeros(4), (0,) * len(ACTION_DIMS), 0.0, np.zeros(4))
    assert rates[0] == 1.0 and rates[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(rates, rates[1:]))


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
    learner = BranchingQLearner(16, ACTION_DIMS, BranchingQConfig(n_step=1, gamma=0.0, warmup_decisions=50), seed=0)

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
    learner = BranchingQLearner(16, ACTION_DIMS, BranchingQConfig(n_step=1, gamma=0.0, warmup_decisions=50), seed=0,
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
