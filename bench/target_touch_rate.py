"""How often does a random explorer touch the target? (How sparse the extrinsic task is.)

No rendering: the world steps at 20 Hz of simulated time under the perception probe's sticky
random policy, for `--minutes` simulated minutes per world seed.

    python -m bench.target_touch_rate --seeds 0 1 2 3 --minutes 15 --targets 1
"""
from __future__ import annotations

import argparse

import numpy as np

from ami_nodes.action_space import VelocityLimits
from ami_nodes.eval.perception_probe import TICK_S, StickyRandomPolicy, drive
from ami_nodes.world.sim import World, WorldConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3])
    parser.add_argument('--minutes', type=float, default=15.0)
    parser.add_argument('--targets', type=int, default=1, help='targets at once')
    args = parser.parse_args(argv)
    for seed in args.seeds:
        world = World(WorldConfig(seed=seed, target=True, targets=args.targets))
        policy, limits = StickyRandomPolicy(np.random.default_rng(seed)), VelocityLimits()
        for _ in range(int(args.minutes * 60 / TICK_S)):
            drive(world, policy(), limits)
            world.step(TICK_S)
        print(f'seed {seed}: {world.touches} touches in {args.minutes:g} simulated minutes, '
              f'coverage {world.coverage():.2f}')


if __name__ == '__main__':
    main()
