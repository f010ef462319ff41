"""GAE and V-trace against hand-computed numbers and their limiting cases."""
import pytest
import torch

from ami_nodes.learning.ppo import compute_gae, vtrace

GAMMA, LAM = 0.9, 0.8
REWARDS = torch.tensor([1.0, 1.0, 1.0])
VALUES = torch.tensor([0.5, 0.4, 0.3])
NO = torch.tensor([False, False, False])


def test_gae_with_bootstrap_and_a_terminal_step_by_hand():
    # Step 1 ends its episode (its next value must be ignored); step 2 bootstraps from 0.2.
    next_values = torch.tensor([0.4, 99.0, 0.2])
    terminated = torch.tensor([False, True, False])
    adv, ret = compute_gae(REWARDS, VALUES, next_values, terminated, NO, GAMMA, LAM)
    # t=2: 1 + .9*.2 - .3 = .88 ; t=1: 1 - .4 = .6 ; t=0: (1 + .9*.4 - .5) + .9*.8*.6 = 1.292
    assert adv.tolist() == pytest.approx([1.292, 0.6, 0.88])
    assert ret.tolist() == pytest.approx([1.792, 1.0, 1.18])


def test_gae_truncation_bootstraps_from_the_final_observation_but_carries_no_credit():
    next_values = torch.tensor([0.4, 0.7, 0.2])  # 0.7: value of the observation the time limit cut at
    truncated = torch.tensor([False, True, False])
    adv, _ = compute_gae(REWARDS, VALUES, next_values, NO, truncated, GAMMA, LAM)
    # t=1: 1 + .9*.7 - .4 = 1.23, nothing from t=2 ; t=0: .86 + .72*1.23
    assert adv.tolist() == pytest.approx([0.86 + 0.72 * 1.23, 1.23, 0.88])


def test_gae_runs_over_a_batch_dimension():
    rewards = torch.stack([REWARDS, 2 * REWARDS], dim=1)
    values = torch.stack([VALUES, VALUES], dim=1)
    next_values = torch.stack([torch.tensor([0.4, 0.3, 0.2])] * 2, dim=1)
    flags = torch.zeros(3, 2, dtype=torch.bool)
    adv, _ = compute_gae(rewards, values, next_values, flags, flags, GAMMA, LAM)
    single, _ = compute_gae(REWARDS, VALUES, torch.tensor([0.4, 0.3, 0.2]), NO, NO, GAMMA, LAM)
    assert torch.allclose(adv[:, 0], single)


def test_vtrace_on_policy_value_targets_equal_gae_returns():
    next_values = torch.tensor([0.4, 0.3, 0.2])
    _, gae_returns = compute_gae(REWARDS, VALUES, next_values, NO, NO, GAMMA, LAM)
    targets, adv = vtrace(REWARDS, VALUES, next_values, NO, NO, torch.zeros(3), GAMMA, LAM, 1.0, 1.0)
    assert torch.allclose(targets, gae_returns)
    # advantage: r + gamma * v_{t+1} - V(s_t), v_{t+1} the next step's target (bootstrap at the end)
    expected = REWARDS + GAMMA * torch.cat([targets[1:], torch.tensor([0.2])]) - VALUES
    assert torch.allclose(adv, expected)


def test_vtrace_importance_weights_are_truncated():
    next_values = torch.tensor([0.4, 0.3, 0.2])
    args = (REWARDS, VALUES, next_values, NO, NO)
    capped, _ = vtrace(*args, torch.zeros(3), GAMMA, LAM, 1.0, 1.0)
    huge, _ = vtrace(*args, torch.full((3,), 8.0), GAMMA, LAM, 1.0, 1.0)  # pi/mu = e^8, weighs as 1
    assert torch.allclose(huge, capped)
    stale, _ = vtrace(*args, torch.full((3,), -20.0), GAMMA, LAM, 1.0, 1.0)  # pi/mu ~ 0: no correction
    assert torch.allclose(stale, VALUES, atol=1e-6)
    half, _ = vtrace(*args, torch.zeros(3), GAMMA, LAM, 0.5, 1.0)
    assert torch.all((half - VALUES).abs() < (capped - VALUES).abs())
