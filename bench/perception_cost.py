"""What one perception step costs on this CPU: forward only vs forward + aux loss + backward + step.

Batch 1 (plus the replayed rows in `train_replay`), the real `OnlinePerception` path (so the
aux loss, history buffer and Adam are included), at 84, 128 and 256 pixels. Seed 003 expects
training to roughly double the forward cost, and 128x128 to cost about twice 84x84.

    python -m bench.perception_cost
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig

MODES = ('encoder', 'forward', 'train', 'train_replay')


def time_steps(size: int, train: bool, replay_batch: int, repeats: int, warmup: int) -> np.ndarray:
    """Seconds per `OnlinePerception.step`, training every frame or never."""
    config = OnlinePerceptionConfig(image_size=size, train_every=1 if train else 10 ** 9,
                                    replay_batch=replay_batch, frame_set_size=max(replay_batch, 1))
    perception = OnlinePerception(config)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(8, size, size, 3), dtype=np.uint8)
    times = []
    for i in range(max(replay_batch, 1)):  # fill the frame set so every timed step replays
        perception.step(frames[i % len(frames)], (1, 0, 2, 0, 0))
    for i in range(warmup + repeats):
        start = time.perf_counter()
        perception.step(frames[i % len(frames)], (1, 0, 2, 0, 0))
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return np.array(times)


@torch.no_grad()
def time_bare_forward(size: int, repeats: int, warmup: int) -> np.ndarray:
    """Seconds per bare `Encoder` forward on a ready tensor: the floor under any step."""
    encoder = OnlinePerception(OnlinePerceptionConfig(image_size=size)).encoder
    images = torch.rand(1, 3, size, size)
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        encoder(images)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return np.array(times)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[84, 128, 256])
    parser.add_argument('--repeats', type=int, default=200)
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--replay-batch', type=int, default=OnlinePerceptionConfig.replay_batch)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', type=Path, default=Path('bench/results/perception_cost.json'))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = {}
    for size in args.sizes:
        for mode in MODES:
            t = (time_bare_forward(size, args.repeats, args.warmup) if mode == 'encoder'
                 else time_steps(size, mode != 'forward', args.replay_batch if mode == 'train_replay' else 0,
                                 args.repeats, args.warmup))
            rows[f'{size}/{mode}'] = {'size': size, 'mode': mode, 'median_ms': float(np.median(t) * 1e3),
                                      'p99_ms': float(np.percentile(t, 99) * 1e3), 'n': len(t)}
    def ratio(a: str, b: str) -> float | None:
        return rows[a]['median_ms'] / rows[b]['median_ms'] if a in rows and b in rows else None
    report = {
        'threads': args.threads, 'batch': 1, 'torch': torch.__version__, 'rows': list(rows.values()),
        'replay_batch': args.replay_batch,
        'train_over_forward': {s: ratio(f'{s}/train', f'{s}/forward') for s in args.sizes},
        'ratio_128_over_84': {m: ratio(f'128/{m}', f'84/{m}') for m in MODES},
        'note': 'encoder = bare Encoder forward on a tensor; forward = OnlinePerception.step without '
                'training (no_grad forward + loss for logging); '
                'train = forward with grad + aux loss + backward + Adam step (seed 003, replay_batch=0); '
                'train_replay = train plus replay_batch frame-set transitions in the same step. Shared 2-core machine: '
                'other processes add noise, mostly to p99.',
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"{'size':>5} {'mode':>12} {'median ms':>10} {'p99 ms':>8}")
    for row in rows.values():
        print(f"{row['size']:>5} {row['mode']:>12} {row['median_ms']:>10.2f} {row['p99_ms']:>8.2f}")
    print('train/forward:', {k: round(v, 2) for k, v in report['train_over_forward'].items() if v})
    print('128/84:', {k: round(v, 2) for k, v in report['ratio_128_over_84'].items() if v})
    return report


if __name__ == '__main__':
    main()
