"""Scaling of the perception step with image size and feature size, and of its state.

Time per `OnlinePerception.step` at batch 1, forward only (train_every never) and forward +
aux loss + backward + Adam step (train_every 1). Growth is the slope on log-log axes: against
image side (2 = linear in pixels) and against feature size. State is the encoder + aux
parameter count, what a checkpoint and the optimiser carry.
"""
from __future__ import annotations

import numpy as np
import torch

from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig
from bench.floor import FROZEN
from bench.stats import growth_word, loglog_exponent, time_calls

SIDES = (84, 128, 256)
FEATURES = (32, 64, 256)


def _time(side: int, feature_dim: int, train: bool, repeats: int) -> float:
    perception = OnlinePerception(OnlinePerceptionConfig(
        image_size=side, feature_dim=feature_dim, train_every=1 if train else FROZEN))
    frames = np.random.default_rng(0).integers(0, 256, (4, side, side, 3), dtype=np.uint8)
    counter = iter(range(10**9))
    ms = time_calls(lambda: perception.step(frames[next(counter) % 4], (1, 0, 2, 0, 0)),
                    repeats, warmup=5)
    return float(np.median(ms))


def _params(side: int, feature_dim: int) -> int:
    perception = OnlinePerception(OnlinePerceptionConfig(image_size=side, feature_dim=feature_dim))
    return sum(p.numel() for m in (perception.encoder, perception.aux) for p in m.parameters())


def _fit(xs, ys) -> dict:
    exponent = loglog_exponent(xs, ys)
    return {'exponent': exponent, 'growth': growth_word(exponent)}


def run(quick: bool) -> dict:
    torch.set_num_threads(1)
    repeats = 5 if quick else 40
    sides, features = ((84, 128), (32, 64)) if quick else (SIDES, FEATURES)
    rows = []
    for side in sides:
        for feature_dim in features:
            rows.append({'image': side, 'features': feature_dim,
                         'forward_ms': _time(side, feature_dim, False, repeats),
                         'train_ms': _time(side, feature_dim, True, repeats),
                         'state_params': _params(side, feature_dim)})
    at64 = [r for r in rows if r['features'] == features[min(1, len(features) - 1)]]
    at84 = [r for r in rows if r['image'] == sides[0]]
    return {
        'how': f'median of {repeats} steps after 5 warm-up, batch 1, torch 1 thread. '
               + (__doc__ or '').split('\n\n')[1].replace('\n', ' '),
        'rows': rows,
        'vs_image_side': {k: _fit([r['image'] for r in at64], [r[k] for r in at64])
                          for k in ('forward_ms', 'train_ms', 'state_params')},
        'vs_feature_size': {k: _fit([r['features'] for r in at84], [r[k] for r in at84])
                            for k in ('forward_ms', 'train_ms', 'state_params')},
    }
