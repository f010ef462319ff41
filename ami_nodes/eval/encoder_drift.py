"""How fast does a read-out of the online encoder go stale while the encoder keeps training?

A learner on top of perception (learner_node's branching_q) fits its network to features of the
encoder perception shipped a few seconds ago, and the policy then applies it to features of the
encoder as it is now. This measures what that lag costs, in one process: the task config's
perception (config/ami_target.yaml, trained on every frame, K = 1 as live) learns on the built-in
world driven by the probe's sticky random walker, and every `--every` frames its published
encoder encodes a fixed held-out set (the probe's: poses sampled over the whole map). At each
snapshot t a ridge read-out of pose and of the in-view class is fitted on the held-out training
split (features layer-normed per frame, as the Q network's input is) and scored on the test
split's features at snapshot t + lag. Lag 0 is the usual probe; the drop at lag 100 frames (5 s)
is what a read-out five seconds old loses. `relative_change` is the mean distance between a
frame's features at t and at t + lag over their mean norm; `between_frames` gives its scale
(the same ratio for two random held-out frames).

    python -m ami_nodes.eval.encoder_drift --seeds 0 1 --frames 4000 --out /tmp/drift
    python -m ami_nodes.eval.encoder_drift --seeds 0 1 --frames 4000 --set ema_decay=0.999 --out /tmp/drift_ema
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from ami_nodes import system
from ami_nodes.action_space import VelocityLimits
from ami_nodes.eval.curiosity_coverage import mean_and_interval
from ami_nodes.eval.downstream import TASK_CONFIG
from ami_nodes.eval.harness import HELD_OUT_SEEDS
from ami_nodes.eval.perception_probe import POLICIES, TICK_S, drive, held_out_set, perception_settings, through_camera
from ami_nodes.odometry import DeadReckoning
from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig
from ami_nodes.perception.probe import fit_ridge, r2_scores, select_alpha
from ami_nodes.settings import assign
from ami_nodes.world.sim import World, WorldConfig

LAGS = (0, 1, 2, 3, 6, 12, 24)   # in snapshots
CLASS_ALPHA = 10.0
TRAIN_FRACTION = 0.7


def task_perception_config(seed: int, overrides: dict) -> OnlinePerceptionConfig:
    """The task config's perception settings, training on every frame, `overrides` on top."""
    params = yaml.safe_load((system.share_dir() / 'config' / TASK_CONFIG).read_text())
    config = OnlinePerceptionConfig()
    for name, value in {**params['perception_node']['ros__parameters'], **overrides}.items():
        assign(name, value, config, config.aux)   # node-only parameters (train_online, ...) have no setting
    config.seed, config.train_every = seed, 1
    return config


def layer_norm(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-5)


def snapshots(config: OnlinePerceptionConfig, world_config: WorldConfig, frames: list[np.ndarray],
              total: int, every: int, seed: int) -> list[np.ndarray]:
    """Layer-normed features of `frames` by the published encoder, before training and every
    `every` frames of online training up to `total`."""
    torch.manual_seed(seed)
    perception, world = OnlinePerception(config), World(world_config)
    batch = np.stack(frames)

    def encoded() -> np.ndarray:
        with torch.no_grad():
            return layer_norm(perception.encode_frames(batch).numpy())
    out = [encoded()]
    policy, limits, odometry = POLICIES['sticky'](np.random.default_rng(seed)), VelocityLimits(), DeadReckoning()
    previous = None
    for frame in range(1, total + 1):
        perception.step(through_camera(world.render(), 0), previous, pose=(odometry.x, odometry.y, odometry.yaw))
        previous = policy()
        drive(world, previous, limits)
        world.step(TICK_S)
        odometry.step(*world.velocity, TICK_S)
        if frame % every == 0:
            out.append(encoded())
    return out


def staleness(features: list[np.ndarray], targets: np.ndarray, labels: np.ndarray, skip: int
              ) -> dict[int, dict[str, float]]:
    """For each lag: read-outs fitted at snapshot t (t >= skip), scored at t + lag."""
    cut = int(len(targets) * TRAIN_FRACTION)
    classes = np.unique(labels[:cut])
    onehot = (labels[:cut, None] == classes[None, :]).astype(np.float64)
    rows: dict[int, list[tuple[float, float, float]]] = {lag: [] for lag in LAGS}
    for t in range(skip, len(features)):
        x = features[t]
        alpha = select_alpha(x[:cut], targets[:cut], lambda y, p: float(r2_scores(y, p).mean()))
        pose, view = fit_ridge(x[:cut], targets[:cut], alpha), fit_ridge(x[:cut], onehot, CLASS_ALPHA)
        for lag in LAGS:
            if t + lag >= len(features):
                continue
            y = features[t + lag]
            rows[lag].append((float(r2_scores(targets[cut:], pose.predict(y[cut:])).mean()),
                              float((classes[view.predict(y[cut:]).argmax(axis=1)] == labels[cut:]).mean()),
                              float(np.linalg.norm(y - x, axis=1).mean() / np.linalg.norm(x, axis=1).mean())))
    return {lag: {name: float(np.mean([row[i] for row in values]))
                  for i, name in enumerate(('r2_mean', 'in_view_accuracy', 'relative_change'))}
            for lag, values in rows.items() if values}


def run_seed(seed: int, args: argparse.Namespace, overrides: dict) -> dict:
    world_config = WorldConfig(seed=seed, layout='classic', target=True, targets=args.targets)
    frames, targets, labels = held_out_set(world_config, args.probe_frames, seed=seed + 1000)
    features = snapshots(task_perception_config(seed, overrides), world_config, frames, args.frames,
                         args.every, seed)
    last = features[-1]
    pairs = np.random.default_rng(seed).integers(0, len(last), (2, 2000))
    between = float(np.linalg.norm(last[pairs[0]] - last[pairs[1]], axis=1).mean()
                    / np.linalg.norm(last, axis=1).mean())
    by_lag = staleness(features, targets, labels, skip=args.skip // args.every)
    print(f'seed {seed}: ' + ', '.join(f"lag {lag * args.every}: R² {v['r2_mean']:.2f} in-view "
                                       f"{v['in_view_accuracy']:.2f} change {v['relative_change']:.2f}"
                                       for lag, v in by_lag.items()), file=sys.stderr, flush=True)
    return {'seed': seed, 'between_frames': between,
            'by_lag_frames': {str(lag * args.every): values for lag, values in by_lag.items()}}


def summary_markdown(report: dict) -> str:
    lines = ['# Encoder drift: how stale a read-out gets', '', f"Command: `{report['command']}`", '',
             f"World seeds {report['seeds']}; perception of config/{TASK_CONFIG} at K = 1"
             + (f", with {report['overrides']}" if report['overrides'] else '')
             + f"; {report['frames']} frames; read-outs fitted at every snapshot from frame {report['skip']} on. "
             'Mean over seeds, 95 % t interval, per seed in brackets.', '',
             '| read-out age (frames) | pose R² | in-view accuracy | relative feature change |',
             '|---|---|---|---|']
    for lag in report['runs'][0]['by_lag_frames']:
        cells = []
        for name in ('r2_mean', 'in_view_accuracy', 'relative_change'):
            values = [run['by_lag_frames'][lag][name] for run in report['runs']]
            mean, half = mean_and_interval(values)
            cells.append(f"{mean:.2f} ±{half:.2f} ({', '.join(f'{v:.2f}' for v in values)})")
        lines.append(f'| {lag} | ' + ' | '.join(cells) + ' |')
    between = [run['between_frames'] for run in report['runs']]
    lines += ['', f"Two random held-out frames differ by {np.mean(between):.2f} of a feature vector's norm "
              f"({', '.join(f'{v:.2f}' for v in between)}).", '']
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    parser.add_argument('--frames', type=int, default=4000, help='frames of online training (20 per simulated s)')
    parser.add_argument('--every', type=int, default=100, help='frames between snapshots (100 = 5 s)')
    parser.add_argument('--skip', type=int, default=1000, help='fit read-outs only from this frame on')
    parser.add_argument('--probe-frames', type=int, default=800)
    parser.add_argument('--targets', type=int, default=8, help="targets in the world, as downstream's")
    parser.add_argument('--set', dest='settings', nargs='*', default=[], metavar='NAME=VALUE',
                        help='perception settings over the task config, e.g. ema_decay=0.999')
    parser.add_argument('--out', type=Path, required=True)
    args = parser.parse_args(argv)
    if any(seed >= HELD_OUT_SEEDS for seed in args.seeds):
        parser.error(f'world seeds >= {HELD_OUT_SEEDS} are held out for final evaluations')
    if args.skip >= args.frames:
        parser.error('--skip must be below --frames')
    torch.set_num_threads(1)
    overrides = perception_settings(args.settings)
    command = 'python -m ami_nodes.eval.encoder_drift ' + ' '.join(argv if argv is not None else sys.argv[1:])
    report = {'command': command, 'seeds': args.seeds, 'frames': args.frames, 'every': args.every,
              'skip': args.skip, 'overrides': overrides,
              'runs': [run_seed(seed, args, overrides) for seed in args.seeds]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'results.json').write_text(json.dumps(report, indent=2))
    (args.out / 'summary.md').write_text(summary_markdown(report))
    return report


if __name__ == '__main__':
    main()
