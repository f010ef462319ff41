"""How high can the pose probe go with this encoder? A supervised ceiling for issue 10's goals.

The same `Encoder` (84x84, 64 features) is trained with labels, which the robot never has:
a linear head regresses the standardised pose targets (x, y, sin yaw, cos yaw) from frames at
uniformly sampled poses of the same world (a training set drawn with another seed than the
probe's). Then its features go through the probe exactly as the online encoders' do
(perception_probe's held-out set and ridge). What self-supervised features reach is then
read against this number, not against 1.0.

    python -m bench.perception_ceiling --seeds 0 1 2 --train-frames 6000 --epochs 30
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ami_nodes.eval.perception_probe import encode, held_out_set, probe_all
from ami_nodes.perception.encoder import Encoder, frame_to_tensor
from ami_nodes.world.sim import WorldConfig

PROBE_SEED_OFFSET = 1000   # perception_probe's held-out set
TRAIN_SEED_OFFSET = 2000   # another draw of poses for the supervised training set


def supervised_encoder(frames: list[np.ndarray], targets: np.ndarray, epochs: int, seed: int) -> Encoder:
    """Encoder + linear head trained with MSE on standardised pose targets (Adam, batch 64)."""
    torch.manual_seed(seed)
    encoder = Encoder(84, 64)
    head = nn.Linear(64, targets.shape[1])
    x = torch.cat([frame_to_tensor(frame) for frame in frames])
    y = torch.as_tensor((targets - targets.mean(0)) / targets.std(0), dtype=torch.float32)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    for epoch in range(epochs):
        order = torch.randperm(len(x))
        total = 0.0
        for batch in order.split(64):
            loss = nn.functional.mse_loss(head(encoder(x[batch])), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        print(f'epoch {epoch + 1}: train mse {total / len(x):.4f}', file=sys.stderr, flush=True)
    return encoder.eval()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--train-frames', type=int, default=6000)
    parser.add_argument('--probe-frames', type=int, default=3000, help="as perception_probe's default")
    parser.add_argument('--epochs', type=int, default=30)
    parser.add_argument('--out', type=Path, default=Path('bench/results/perception_probe/ceiling.json'))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report: dict = {'command': 'python -m bench.perception_ceiling ' + ' '.join(sys.argv[1:] if argv is None else argv),
                    'per_seed': {}}
    for seed in args.seeds:
        config = WorldConfig(seed=seed)
        frames, targets, _ = held_out_set(config, args.train_frames, seed=seed + TRAIN_SEED_OFFSET)
        encoder = supervised_encoder(frames, targets, args.epochs, seed)
        probe_frames, probe_targets, labels = held_out_set(config, args.probe_frames, seed=seed + PROBE_SEED_OFFSET)
        result = probe_all({'supervised': encode(encoder, probe_frames)}, probe_targets, labels)['supervised']
        report['per_seed'][str(seed)] = result
        print(f'seed {seed}: R² mean {result["r2_mean"]:.3f}, in-view {result["in_view_accuracy"]:.3f}, '
              f'rank {result["effective_rank"]:.1f}', flush=True)
    for key in ('r2_mean', 'in_view_accuracy', 'effective_rank'):
        report[key] = float(np.mean([r[key] for r in report['per_seed'].values()]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == '__main__':
    main()
