"""Curiosity: surprise fades where the world is predictable and stays where it is noise."""
import numpy as np
import pytest
import torch

from ami_nodes.action_space import ACTION_DIMS, one_hot
from ami_nodes.learning.curiosity import Curiosity, ForwardDynamics, one_hot_actions
from ami_nodes.learning.running_stats import RunningMeanStd

torch.set_num_threads(1)
D = 8


class World:
    """Features whose next value the action determines, or pure noise in a part of feature
    space of its own (a television in the corner of the room: x[0] shifted by 4)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.drift = 0.9 * np.linalg.qr(self.rng.normal(size=(D, D)))[0]
        self.push = 0.5 * self.rng.normal(size=(sum(ACTION_DIMS), D))

    def batch(self, n: int, noise: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.rng.normal(size=(n, D))
        f[:, 0] += 4.0 if noise else 0.0
        a = np.stack([self.rng.integers(0, d, size=n) for d in ACTION_DIMS], axis=1)
        pushes = np.stack([one_hot(row) for row in a]) @ self.push
        nxt = self.rng.normal(size=(n, D)) if noise else f @ self.drift.T + pushes
        return torch.tensor(f, dtype=torch.float32), torch.tensor(a), torch.tensor(nxt, dtype=torch.float32)


def test_one_hot_actions_matches_the_action_space_encoding():
    actions = torch.tensor([[0, 1, 2, 1, 0], [2, 2, 0, 0, 1]])
    expected = np.stack([one_hot(a) for a in actions.tolist()])
    assert np.array_equal(one_hot_actions(actions, ACTION_DIMS).numpy(), expected)


def test_forward_dynamics_shapes():
    model = ForwardDynamics(64, ACTION_DIMS, 32)
    errors = model.errors(torch.zeros(5, 64), torch.zeros(5, 5, dtype=torch.long), torch.ones(5, 64))
    assert model(torch.zeros(5, 64), torch.zeros(5, 5, dtype=torch.long)).shape == (5, 64)
    assert errors.shape == (5,)


def test_reward_fades_on_a_predictable_stream():
    torch.manual_seed(0)
    world, cur = World(0), Curiosity(D, ACTION_DIMS, hidden=64, lr=3e-3, epochs=2)
    first = world.batch(128, noise=False)
    raw_means, rewards = [], []
    for i in range(80):
        f, a, nxt = first if i == 0 else world.batch(128, noise=False)
        raw, reward = cur.rewards(f, a, nxt)
        cur.update(f, a, nxt)
        raw_means.append(raw.mean())
        rewards.append(reward.mean())
    assert raw_means[-1] < 0.01 * raw_means[0]
    assert np.mean(rewards[-10:]) < -0.2  # below the running average surprise
    assert cur.rewards(*first)[1].mean() < rewards[0] - 0.3  # the same experience, once learnt, pays less


def test_reward_stays_high_on_noise_and_low_where_predictable():
    torch.manual_seed(1)
    world, cur = World(1), Curiosity(D, ACTION_DIMS, hidden=64, lr=3e-3, epochs=2, norm_horizon=1024)
    noise, calm = [], []
    for i in range(80):
        f, a, nxt = world.batch(128, noise=bool(i % 2))
        raw, reward = cur.rewards(f, a, nxt)
        cur.update(f, a, nxt)
        (noise if i % 2 else calm).append((raw.mean(), reward.mean()))
    noise_raw, noise_reward = np.mean(noise[-5:], axis=0)
    calm_raw, calm_reward = np.mean(calm[-5:], axis=0)
    assert noise_raw > 0.9  # the noise's own variance (1.0) cannot be learnt away
    assert calm_raw < 0.15 * calm[0][0]
    assert noise_reward > 0.25 and calm_reward < -0.25  # above and below the recent average surprise


def test_running_mean_std_is_exact_over_uneven_batches_and_round_trips():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=1000)
    stats = RunningMeanStd(epsilon=1e-12)
    for chunk in np.split(data, [1, 10, 300, 301]):
        stats.update(chunk)
    assert stats.mean == pytest.approx(data.mean())
    assert stats.std == pytest.approx(data.std())
    clone = RunningMeanStd()
    clone.load_state_dict(stats.state_dict())
    assert clone.state_dict() == stats.state_dict()


def test_curiosity_state_dict_round_trip():
    world, cur = World(2), Curiosity(D, ACTION_DIMS, hidden=16)
    f, a, nxt = world.batch(32, noise=False)
    cur.rewards(f, a, nxt)
    cur.update(f, a, nxt)
    clone = Curiosity(D, ACTION_DIMS, hidden=16)
    clone.load_state_dict(cur.state_dict())
    assert np.array_equal(clone.rewards(f, a, nxt)[1], cur.rewards(f, a, nxt)[1])
