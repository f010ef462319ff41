"""The PPO core learns CartPole: a short run of the benchmark (bench/cartpole_ppo.py has the full one).

Calibrated on this machine: after 20,000 steps seeds 0 and 1 reach rolling means of 434 and 215
(greedy 500 and 196); a random policy scores about 22. The thresholds leave a wide margin.
"""
import numpy as np
import pytest
import torch

from bench.cartpole_ppo import train

RANDOM_POLICY_RETURN = 22.0


@pytest.mark.timeout(120)
def test_ppo_clearly_beats_random_on_cartpole_within_20k_steps():
    torch.set_num_threads(1)
    runs = [train(seed, 20_000, eval_episodes=5) for seed in (0, 1)]
    rolling = [r['final_rolling_mean'] for r in runs]
    assert min(rolling) > 3 * RANDOM_POLICY_RETURN, rolling
    assert np.mean(rolling) > 150, rolling
    assert np.mean([r['final_greedy_eval_mean'] for r in runs]) > 150, runs


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k_steps():
    torch.set_num_threads(1)
    runs = [train(seed, 100_000) for seed in range(3)]
    assert sum(r['steps_to_rolling_mean_475'] is not None for r in runs) >= 2, runs
