"""What the odometry term's read-out form costs per training step: linear against an MLP.

Two `OnlinePerception`s built as perception_node builds them from config/ami.yaml (odometry term
on), one with each read-out (`odometry_hidden` 0 and the config's), step in turn on the same
frames in one process, training every frame, so a slow or noisy machine slows both alike; the
difference is the read-out's.

    python -m bench.odometry_read_out_cost
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ami_nodes.perception.aux_losses import AuxLossConfig
from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig
from ami_nodes.settings import config_from
from bench.floor import node_params
from bench.machine import describe


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--steps', type=int, default=1000)
    parser.add_argument('--warmup', type=int, default=100)
    parser.add_argument('--hidden', type=int, nargs='+', help="hidden widths to compare (default: 0, the linear "
                        "read-out, and config/ami.yaml's odometry_hidden)")
    parser.add_argument('--out', type=Path, default=Path('bench/results/odometry_read_out_cost.json'))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    values = node_params()[0]
    args.hidden = args.hidden or [0, values['odometry_hidden']]
    frames = np.random.default_rng(0).integers(0, 256, size=(64, 84, 84, 3), dtype=np.uint8)
    perceptions = {hidden: OnlinePerception(config_from(
        OnlinePerceptionConfig, values, train_every=1, budget_s=0.0,
        aux=config_from(AuxLossConfig, values, odometry_hidden=hidden))) for hidden in args.hidden}
    seconds: dict[int, list[float]] = {hidden: [] for hidden in args.hidden}
    for i in range(args.warmup + args.steps):
        order = args.hidden if i % 2 else args.hidden[::-1]
        for hidden in order:
            start = time.perf_counter()
            perceptions[hidden].step(frames[i % len(frames)], (1, 0, 0, 0, 0), pose=(0.01 * i, 0.0, 0.0))
            if i >= args.warmup:
                seconds[hidden].append(time.perf_counter() - start)
    result = {'command': 'python -m bench.odometry_read_out_cost', 'machine': describe(), 'steps': args.steps,
              'step_ms': {str(hidden): {'p50': 1000 * float(np.median(s)), 'p90': 1000 * float(np.percentile(s, 90))}
                          for hidden, s in seconds.items()},
              'trained_every_step': all(p.train_steps == p.frames - 1 for p in perceptions.values())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + '\n')
    for hidden, figures in result['step_ms'].items():
        print(f"odometry_hidden={hidden}: step p50 {figures['p50']:.2f} ms, p90 {figures['p90']:.2f} ms")
    return result


if __name__ == '__main__':
    main()
