"""Probe each objective after 300 frames of world seed 0 (the learning test's setting).

    python -m bench.perception_margin aux time_contrastive vicreg time_vicreg
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch

from ami_nodes.action_space import VelocityLimits
from ami_nodes.eval.perception_probe import TICK_S, StickyRandomPolicy, drive, encode, held_out_set, probe_all
from ami_nodes.perception.encoder import Encoder
from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig
from ami_nodes.world.sim import World, WorldConfig

FRAMES = 300


def main(objectives: list[str]) -> None:
    torch.set_num_threads(1)
    frames, targets, labels = held_out_set(WorldConfig(seed=0), 800, seed=1000)
    for objective in objectives:
        torch.manual_seed(0)
        cpu_started = time.process_time()
        config = OnlinePerceptionConfig(objective=objective, seed=0)
        perception = OnlinePerception(config)
        random_init = Encoder(config.image_size, config.feature_dim)
        random_init.load_state_dict(perception.encoder_state())
        world, limits = World(WorldConfig(seed=0)), VelocityLimits()
        policy = StickyRandomPolicy(np.random.default_rng(0))
        action = None
        for _ in range(FRAMES):
            perception.step(world.render(), action)
            action = policy()
            drive(world, action, limits)
            world.step(TICK_S)
        trained = Encoder(config.image_size, config.feature_dim)
        trained.load_state_dict(perception.encoder_state())
        probes = probe_all({'trained': encode(trained.eval(), frames),
                            'init': encode(random_init.eval(), frames)}, targets, labels)
        row = probes['trained']
        print(objective, 'trained', round(row['r2_mean'], 3), round(row['in_view_accuracy'], 3),
              round(row['effective_rank'], 1), 'init', round(probes['init']['r2_mean'], 3),
              round(probes['init']['in_view_accuracy'], 3),
              'cpu', round(time.process_time() - cpu_started, 1), flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
