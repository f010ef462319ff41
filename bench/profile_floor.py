"""Where the per-frame time goes: cProfile over the floor loop (py-spy is not installed here),
grouped into disjoint phases of one hot-path step (leaf calls, so they do not nest), each
with what would remove it."""
from __future__ import annotations

import cProfile
import pstats
import shutil

import torch

from bench.floor import FloorPipeline

#: phase -> (file suffix, function name) whose cumulative time is the phase, and the remedy.
PHASES = {
    'perception backward': (('torch/autograd/__init__.py', 'backward'),
                            'train every K frames (budget_fraction) or move encoder training off '
                            'the hot path: a trainer thread/process on recent frames that ships '
                            'encoder weights, leaving the frame path forward-only'),
    'Adam step': (('torch/optim/adam.py', 'step'),
                  'fewer optimiser steps (train every K frames), foreach/fused Adam, or fewer '
                  'parameters in the encoder head'),
    'encoder forward': (('ami_nodes/perception/encoder.py', 'forward'),
                        'includes the replay batches of training steps (calls/frame > 1): '
                        'move replay to a trainer off the hot path; then a smaller input or '
                        'strided first layer, channels_last, torch.compile; a GPU'),
    'aux loss': (('ami_nodes/perception/aux_losses.py', 'forward'),
                 'keep the history as a preallocated ring tensor instead of torch.cat of up to '
                 '64 tensors every frame; compute the anti-collapse terms every K frames'),
    'actor act': (('ami_nodes/learning/actor_critic.py', 'act'),
                  'already tiny: precompute the head split and skip numpy round trips'),
    'frame to tensor': (('ami_nodes/perception/encoder.py', 'frame_to_tensor'),
                        'publish the frame already at model size (no resize) and convert with '
                        'torch.from_numpy without copies'),
}


def _cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    return sum(row[3] for (path, _, func), row in stats.stats.items()
               if func == name and path.endswith(suffix))


def _calls(stats: pstats.Stats, suffix: str, name: str) -> int:
    return sum(row[1] for (path, _, func), row in stats.stats.items()
               if func == name and path.endswith(suffix))


def run(quick: bool) -> dict:
    torch.set_num_threads(1)
    steps = 60 if quick else 600
    pipeline = FloorPipeline.build(train=True)
    for _ in range(10):
        pipeline.step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        pipeline.step()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = _cumulative(stats, 'bench/floor.py', 'step')
    phases = {name: {'ms_per_frame': _cumulative(stats, *where) / steps * 1e3,
                     'share': _cumulative(stats, *where) / total,
                     'calls_per_frame': _calls(stats, *where) / steps, 'remedy': remedy}
              for name, (where, remedy) in PHASES.items()}
    rest = total - sum(_cumulative(stats, *where) for where, _ in PHASES.values())
    phases['other (bookkeeping, stats, numpy)'] = {
        'ms_per_frame': rest / steps * 1e3, 'share': rest / total, 'calls_per_frame': 1.0,
        'remedy': 'per-frame Python bookkeeping: trim what runs every frame'}
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:8]
    return {'how': f'cProfile over {steps} floor steps with perception training as configured '
                   f'(py-spy: {shutil.which("py-spy") or "not installed"}); cProfile inflates '
                   'Python-call-heavy phases, so compare shares, not absolute times',
            'train_every_reached': pipeline.perception.train_every,
            'frame_ms_under_profiler': total / steps * 1e3, 'phases': phases,
            'top_self_time': [{'function': f'{path.rsplit("/", 2)[-1]}:{func}',
                               'ms_per_frame': row[2] / steps * 1e3} for (path, _, func), row in top]}
