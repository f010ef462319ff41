"""ActorCritic: shapes for the robot's five heads and for CartPole's one."""
import numpy as np
import pytest
import torch

from ami_nodes.action_space import ACTION_DIMS, validate_action
from ami_nodes.learning.actor_critic import ActorCritic

torch.set_num_threads(1)


def test_act_on_the_robot_action_space():
    torch.manual_seed(0)
    model = ActorCritic()  # 64-d features, ACTION_DIMS
    result = model.act(np.random.default_rng(0).normal(size=64).astype(np.float32))
    assert result.action.shape == (len(ACTION_DIMS),) and result.action.dtype == np.int64
    validate_action(result.action.tolist())
    assert result.head_log_probs.shape == (len(ACTION_DIMS),)
    assert result.log_prob == pytest.approx(float(result.head_log_probs.sum()), abs=1e-5)
    # a fresh policy is near uniform: log-prob of any action ~ -log(3*3*3*2*2)
    assert result.log_prob == pytest.approx(-np.log(np.prod(ACTION_DIMS)), abs=0.05)
    assert isinstance(result.value, float)


def test_batched_act_and_evaluate_agree():
    torch.manual_seed(1)
    model = ActorCritic(64, ACTION_DIMS, 32)
    features = np.random.default_rng(1).normal(size=(7, 64)).astype(np.float32)
    out = model.act_batch(features)
    assert out.actions.shape == (7, 5) and out.log_probs.shape == (7,) and out.values.shape == (7,)
    log_prob, entropy, value = model.evaluate(torch.from_numpy(features), torch.from_numpy(out.actions))
    assert log_prob.requires_grad and entropy.shape == (7,)
    assert np.allclose(log_prob.detach().numpy(), out.log_probs, atol=1e-5)
    assert np.allclose(value.detach().numpy(), out.values, atol=1e-5)
    assert entropy.detach().numpy() == pytest.approx(np.full(7, sum(np.log(d) for d in ACTION_DIMS)), abs=0.05)


def test_deterministic_act_takes_each_heads_most_likely_choice():
    model = ActorCritic(4, (2,), 16)
    with torch.no_grad():
        model.actor[-1].bias.copy_(torch.tensor([0.0, 5.0]))
    assert all(model.act(np.zeros(4), deterministic=True).action == [1] for _ in range(5))
    assert model.distribution(torch.zeros(3, 4)).heads[0].probs.shape == (3, 2)


def test_policy_weights_round_trip_through_a_state_dict():
    source, target = ActorCritic(64, ACTION_DIMS, 32), ActorCritic(64, ACTION_DIMS, 32)
    target.load_state_dict(source.state_dict())
    x = np.ones(64, np.float32)
    assert source.act(x, deterministic=True).action.tolist() == target.act(x, deterministic=True).action.tolist()
    assert source.act(x).value == pytest.approx(target.act(x).value)
