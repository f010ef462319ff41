"""Learner throughput: how many experience samples per second one `CuriosityPPOLearner.step()`
digests (curiosity rewards + forward-model update + PPO epochs), by batch size.

The policy produces 20 samples/s; anything far above that means the learner keeps up with
room to spare (or could run more epochs). Rollouts are synthetic, in the buffer's layout.
"""
from __future__ import annotations

from time import perf_counter

import numpy as np
import torch
import yaml

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.experience import Rollout
from ami_nodes.learning.learner import CuriosityPPOLearner, LearnerConfig
from ami_nodes.learning.ppo import PPOConfig
from ami_nodes.settings import config_from
from bench.floor import node_params
from bench.machine import REPO
from bench.stats import summary

ROLLOUT = 128


def _rollout(rng: np.random.Generator, length: int, feature_dim: int) -> Rollout:
    features = rng.normal(size=(length + 1, feature_dim)).astype(np.float32)
    return Rollout(
        seq=np.arange(length, dtype=np.int64), stamp_ns=np.arange(length, dtype=np.int64) * 50_000_000,
        features=features[:-1], actions=np.stack([rng.integers(0, d, length) for d in ACTION_DIMS], 1),
        log_probs=np.full(length, -4.0, np.float32), values=np.zeros(length, np.float32),
        policy_versions=np.zeros(length, np.int64), next_features=features[1:],
        extrinsic_rewards=np.zeros(length, np.float32), bootstrap_value=0.0, ends_at_gap=False)


def _learner(batch: int) -> CuriosityPPOLearner:
    """A learner with learner_node's parameters from config/ami.yaml."""
    p = yaml.safe_load((REPO / 'config' / 'ami.yaml').read_text())['learner_node']['ros__parameters']
    feature_dim = node_params()[1]['feature_dim']
    return CuriosityPPOLearner(feature_dim, ACTION_DIMS, config_from(
        LearnerConfig, {**p, 'min_new_samples': batch}, ppo=config_from(PPOConfig, p)))


def time_step(batch: int, repeats: int) -> dict:
    learner, rng = _learner(batch), np.random.default_rng(batch)
    feature_dim = learner.actor_critic.feature_dim
    seconds = []
    for i in range(repeats + 1):  # the first update (allocations, lazy init) is not timed
        for _ in range(max(1, batch // ROLLOUT)):
            learner.add(_rollout(rng, min(batch, ROLLOUT), feature_dim))
        start = perf_counter()
        learner.step()
        if i:
            seconds.append(perf_counter() - start)
    ms = summary(np.array(seconds) * 1e3)
    return {'batch': batch, 'update_ms': ms, 'samples_per_s': batch / (ms['p50'] / 1e3)}


def run(quick: bool) -> dict:
    torch.set_num_threads(1)
    batches, repeats = ((64, 256), 1) if quick else ((64, 128, 256, 512, 1024, 2048), 3)
    rows = [time_step(b, repeats) for b in batches]
    return {'how': f'{repeats} timed CuriosityPPOLearner.step() per batch size after one untimed, '
                   f'learner_node parameters from config/ami.yaml (epochs, minibatch 64), torch '
                   f'1 thread, synthetic rollouts of {ROLLOUT}. samples/s = batch / median update time.',
            'rows': rows}
