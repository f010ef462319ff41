"""Does online self-supervised training make the encoder's features say more about the world?

One process: a sticky random-action policy drives the built-in world at 20 Hz of simulated time,
as fast as the CPU allows (no sleeping: the question is what the features learn per frame, not
real-time pacing), while `OnlinePerception` trains on every frame for `--seconds` of wall time.
Then frames are rendered at poses sampled uniformly over the free cells with uniform yaw, from
a separate world instance (never seen in training), and three representations of the same
frames are probed with the same ridge procedure: the trained encoder, the same encoder at its
random initialisation, and raw area-downsampled pixels. Optionally `--encoder PATH` probes an
encoder saved by the live system (safetensors) on the same frames.

    python -m ami_nodes.eval.perception_probe --seconds 600 --out bench/results/perception_probe
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ami_nodes import system
from ami_nodes.action_space import ACTION_DIMS, NOOP, VelocityLimits, action_to_velocity
from ami_nodes.actuation.vrchat_osc import velocity_to_inputs
from ami_nodes.eval.harness import HELD_OUT_SEEDS
from ami_nodes.eval.live import LiveRun
from ami_nodes.odometry import DeadReckoning
from ami_nodes.perception.encoder import Encoder, frame_to_tensor
from ami_nodes.perception.frame_set import REPLAY_POLICIES
from ami_nodes.perception.objectives import OBJECTIVES
from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig
from ami_nodes.perception.probe import classification_probe, majority_accuracy, regression_probe
from ami_nodes.perception.stats import effective_rank
from ami_nodes.settings import assign, settings_of
from ami_nodes.tools.launch_config import node_sections, node_setting, write_config
from ami_nodes.world.sim import Pose, World, WorldConfig
from ami_nodes.world.stream_server import encode_jpeg

TICK_S = 0.05  # 20 Hz of simulated time per perception step
PIXEL_SIZE = 21  # raw-pixel baseline: 84x84 area-averaged down to 21x21x3
TARGETS = ('x', 'y', 'sin_yaw', 'cos_yaw')
#: What the live perception node's training log is read for: its aux loss, and K (it trains on
#: one frame in K, K set by its CPU budget).
LOSS_TAG, TRAIN_EVERY_TAG = 'perception/total', 'perception/train_every'
LIVE_TAGS = (LOSS_TAG, TRAIN_EVERY_TAG)


class StickyRandomPolicy:
    """Random actions held for a random 1-10 ticks: long enough to turn and cross rooms."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.action: tuple[int, ...] = (0, 0, 0, 0, 0)
        self.left = 0

    def __call__(self) -> tuple[int, ...]:
        if self.left <= 0:
            self.action = tuple(int(self.rng.integers(0, n)) for n in ACTION_DIMS[:3]) + (
                int(self.rng.random() < 0.05), int(self.rng.random() < 0.2))
            self.left = int(self.rng.integers(1, 11))
        self.left -= 1
        return self.action


class UniformPolicy:
    """A new uniformly random action every tick on every head (jump and run half the time):
    what policy_node's `uniform` mode does, and close to what an untrained `sample` policy
    does live."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self) -> tuple[int, ...]:
        return tuple(int(self.rng.integers(0, n)) for n in ACTION_DIMS)


#: --policy: what drives the world while the encoder trains in one process.
POLICIES = {'sticky': StickyRandomPolicy, 'uniform': UniformPolicy}


def drive(world: World, action: tuple[int, ...], limits: VelocityLimits) -> None:
    """Send an action to the world the way the OSC bridge sends it to VRChat."""
    for address, value in velocity_to_inputs(action_to_velocity(action, limits), limits).items():
        world.apply_input(address, value)


def through_camera(rgb: np.ndarray, jpeg_quality: int) -> np.ndarray:
    """The frame as the live camera delivers it: JPEG-encoded as the world's MJPEG stream does
    and decoded again (0: unchanged)."""
    if not jpeg_quality:
        return rgb
    bgr = cv2.imdecode(np.frombuffer(encode_jpeg(rgb, jpeg_quality), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def train_online(perception: OnlinePerception, world: World, seconds: float, seed: int,
                 max_frames: int = 0, jpeg_quality: int = 0,
                 policy_name: str = 'sticky', action_delay: int = 0) -> list[dict[str, float]]:
    """Run the world and online training for `seconds` of wall time or `max_frames` frames
    (0: no limit), whichever ends first; one log row per frame. `action_delay` ticks pass
    between choosing an action and the world applying it, as the live loop's latency does;
    the encoder is still told the action chosen on the previous frame, and the pose dead-reckoned
    from the world's measured velocity (what the bridge relays to the live perception node)."""
    policy, limits = POLICIES[policy_name](np.random.default_rng(seed)), VelocityLimits()
    log: list[dict[str, float]] = []
    prev_action: tuple[int, ...] | None = None
    in_flight: collections.deque[tuple[int, ...]] = collections.deque([NOOP] * action_delay)
    odometry = DeadReckoning()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and (not max_frames or len(log) < max_frames):
        out = perception.step(through_camera(world.render(), jpeg_quality), prev_action,
                              pose=(odometry.x, odometry.y, odometry.yaw))
        action = policy()
        in_flight.append(action)
        drive(world, in_flight.popleft(), limits)
        world.step(TICK_S)
        odometry.step(*world.velocity, TICK_S)
        prev_action = action
        log.append({'step_time_s': out.step_time_s, **out.losses})
        if len(log) % 2000 == 0:
            stats = perception.feature_stats()
            log[-1].update({f'stat_{k}': v for k, v in stats.items()})
            print(f'frame {len(log)}: loss {out.losses.get("total", 0.0):.4f} '
                  f'std {stats["std"]:.3f} rank {stats["effective_rank"]:.1f} coverage {world.coverage():.2f}',
                  file=sys.stderr, flush=True)
    return log


def held_out_set(config: WorldConfig, count: int, seed: int, jpeg_quality: int = 0
                 ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Frames at uniformly sampled poses (movers at varied times), pose targets, in-view labels."""
    world = World(config)
    rng = np.random.default_rng(seed)
    free = world.layout.free_cells
    frames, targets, labels = [], [], []
    for _ in range(count):
        ix, iy = free[int(rng.integers(len(free)))]
        yaw = float(rng.uniform(-math.pi, math.pi))
        pose = Pose(ix + rng.uniform(0.25, 0.75), iy + rng.uniform(0.25, 0.75), yaw)
        world.step(float(rng.uniform(0.0, 1.0)))  # the agent holds still; the movers move on
        frames.append(through_camera(world.render(pose), jpeg_quality))
        targets.append((pose.x, pose.y, math.sin(yaw), math.cos(yaw)))
        labels.append(world.in_view(pose))
    return frames, np.asarray(targets), np.asarray(labels)


@torch.no_grad()
def encode(encoder: Encoder, frames: list[np.ndarray]) -> np.ndarray:
    size = encoder.image_size
    batch = torch.cat([frame_to_tensor(_resize(f, size)) for f in frames])
    return torch.cat([encoder(chunk) for chunk in batch.split(256)]).numpy()


def raw_pixels(frames: list[np.ndarray], image_size: int) -> np.ndarray:
    return np.stack([cv2.resize(_resize(f, image_size), (PIXEL_SIZE, PIXEL_SIZE), interpolation=cv2.INTER_AREA)
                     .reshape(-1).astype(np.float32) / 255.0 for f in frames])


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


def probe_all(representations: dict[str, np.ndarray], targets: np.ndarray, labels: np.ndarray,
              train_fraction: float = 0.7) -> dict[str, dict[str, float]]:
    """Same split and same ridge procedure for every representation."""
    cut = int(len(targets) * train_fraction)
    results: dict[str, dict[str, float]] = {}
    for name, x in representations.items():
        r2, alpha = regression_probe(x[:cut], targets[:cut], x[cut:], targets[cut:])
        accuracy, class_alpha = classification_probe(x[:cut], labels[:cut], x[cut:], labels[cut:])
        row = {f'r2_{t}': float(v) for t, v in zip(TARGETS, r2)}
        row.update({'r2_mean': float(r2.mean()), 'in_view_accuracy': accuracy, 'dims': int(x.shape[1]),
                    'effective_rank': effective_rank(x), 'ridge_alpha': alpha, 'class_alpha': class_alpha})
        results[name] = row
    results['_chance'] = {'in_view_accuracy': majority_accuracy(labels[:cut], labels[cut:])}
    return results


def load_encoder(path: Path, image_size: int) -> Encoder:
    from safetensors.torch import load_file
    state = load_file(str(path))
    encoder = Encoder(image_size, feature_dim=int(state['head.weight'].shape[0]))
    encoder.load_state_dict(state)
    return encoder.eval()


def plot_curves(log: list[dict[str, float]], path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    terms = sorted({k for row in log for k in row if k not in ('step_time_s',) and not k.startswith('stat_')})
    fig, (ax_loss, ax_rank) = plt.subplots(1, 2, figsize=(12, 4))
    window = max(1, len(log) // 200)
    for term in terms:
        values = np.array([row.get(term, np.nan) for row in log], dtype=float)
        valid = ~np.isnan(values)
        if valid.sum() > window:
            smooth = np.convolve(values[valid], np.ones(window) / window, mode='valid')
            ax_loss.plot(np.flatnonzero(valid)[window - 1:], smooth, label=term)
    ax_loss.set_yscale('log')
    ax_loss.set_xlabel('frame')
    ax_loss.set_title(f'aux loss terms (moving mean of {window} frames)')
    ax_loss.legend()
    marks = [(i, row) for i, row in enumerate(log) if 'stat_effective_rank' in row]
    if marks:
        ax_rank.plot([i for i, _ in marks], [r['stat_effective_rank'] for _, r in marks], label='effective rank')
        ax_rank.plot([i for i, _ in marks], [r['stat_std'] for _, r in marks], label='mean per-dim std')
        ax_rank.legend()
    ax_rank.set_xlabel('frame')
    ax_rank.set_title('published features (last 256 frames)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_live_curve(curve: list[tuple[int, float]], path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.plot([f for f, _ in curve], [v for _, v in curve], lw=0.8)
    axis.set_xlabel('frame (live system)')
    axis.set_ylabel('total aux loss')
    axis.set_title('perception_node aux loss, live ROS system')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def summary_markdown(report: dict, command: str) -> str:
    lines = ['# Perception probe', '', f'Command: `{command}`', '',
             f"Online training: {report['training']['frames']} frames ({report['training']['train_steps']} "
             f"training steps) in {report['training']['seconds']:.0f} s wall, "
             f"{report['training']['frames_per_s']:.1f} frames/s, median step "
             f"{report['training']['median_step_ms']:.2f} ms; world coverage {report['training']['coverage']:.2f}.",
             f"Held-out probe set: {report['probe_set']['frames']} frames at uniformly sampled poses "
             f"(train {report['probe_set']['train']}, test {report['probe_set']['test']}).", '',
             '| representation | dims | eff. rank | R² x | R² y | R² sin yaw | R² cos yaw | R² mean | in-view acc |',
             '|---|---|---|---|---|---|---|---|---|']
    for name, row in report['probe'].items():
        if name.startswith('_'):
            continue
        lines.append(f"| {name} | {row['dims']} | {row['effective_rank']:.1f} | {row['r2_x']:.3f} | "
                     f"{row['r2_y']:.3f} | {row['r2_sin_yaw']:.3f} | {row['r2_cos_yaw']:.3f} | {row['r2_mean']:.3f} | "
                     f"{row['in_view_accuracy']:.3f} |")
    chance = report['probe']['_chance']['in_view_accuracy']
    lines += ['', f"In-view majority-class accuracy (chance floor): {chance:.3f}.",
              '', '![aux loss curve](aux_loss.png)', '']
    live = report.get('live_system')
    if live:
        lines += [f"Live system: world + five ROS nodes for {live['seconds']:.0f} s (ami_launch); "
                  f"`live_system` above is the encoder of its final checkpoint. Its aux loss went "
                  f"from {live['aux_loss_start']:.3f} to {live['aux_loss_end']:.3f} "
                  f"({live['logged_points']} logged points, {live['frames']} frames); it trained "
                  f"on one frame in K = {live['train_every_median']} (median, second half).", '',
                  '![live aux loss](live_aux_loss.png)', '']
    return '\n'.join(lines)


def run_live_system(seconds: float, workdir: Path, seed: int, learning_rate: float,
                    settings: dict[str, Any] | None = None,
                    sections: dict[str, dict] | None = None) -> tuple[Path, dict[str, list[tuple[int, float]]]]:
    """Run the world (seed `seed`) and the five ROS nodes (ami_launch) for `seconds`, the
    perception node's encoder learning at `learning_rate` with `settings` (perception_settings, or
    any other perception_node parameter such as budget_fraction), and any node's parameters in
    `sections` (write_config's overrides, e.g. policy_node's action_mode).

    Returns the perception encoder of the final checkpoint the launcher takes at exit, and the
    curves (frame, value) of LIVE_TAGS the perception node wrote to its training log.
    """
    from ami_nodes.persistence import latest_checkpoint
    workdir.mkdir(parents=True, exist_ok=True)
    overrides = {section: dict(params) for section, params in (sections or {}).items()}
    overrides.setdefault(system.WORLD_SECTION, {})['seed'] = seed
    overrides.setdefault('perception_node', {}).update(learning_rate=learning_rate, **(settings or {}))
    config = write_config(workdir / 'ami.yaml', overrides)
    started: float | None = None
    with LiveRun(config, workdir, f'live system seed {seed}') as run:
        for _ in run.samples():  # from the world's first answer, `seconds` of wall time
            started = started if started is not None else time.monotonic()
            if time.monotonic() - started >= seconds:
                break
    code = run.exit_code
    checkpoint = latest_checkpoint(workdir / 'checkpoints')
    if code != 0 or checkpoint is None:
        raise SystemExit(f'the live system failed (exit {code}); see {run.log}')
    return (checkpoint / 'perception_node' / 'models' / 'encoder.safetensors',
            live_curves(workdir / 'runs'))


def live_curves(runs: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> (frame, value) for LIVE_TAGS, from the perception node's TensorBoard log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    curves: dict[str, list[tuple[int, float]]] = {tag: [] for tag in LIVE_TAGS}
    for folder in sorted(runs.glob('*/perception_node')):
        events = EventAccumulator(str(folder))
        events.Reload()
        for tag in set(LIVE_TAGS) & set(events.Tags()['scalars']):
            curves[tag] += [(e.step, e.value) for e in events.Scalars(tag)]
    return curves


def perception_settings(items: list[str]) -> dict[str, Any]:
    """`name=value` overrides (--set) of any perception setting (OnlinePerceptionConfig or its
    aux terms), each cast to its setting's type; the live perception node takes the same names."""
    defaults = OnlinePerceptionConfig()
    known = {item.name: getattr(config, item.name) for config in (defaults, defaults.aux)
             for item, _ in settings_of(config)}
    out = {}
    for item in items:
        name, _, value = item.partition('=')
        if name not in known:
            raise SystemExit(f'--set {item}: no perception setting {name!r}')
        out[name] = type(known[name])(value)
    return out


def run_seed(args: argparse.Namespace, seed: int, out: Path, command: str) -> dict:
    """One world seed: the live system (when asked), in-process training, and the probe of
    every representation; its report, plots and encoder are written to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    encoder, live = args.encoder, {}
    if args.live_seconds > 0:
        budget = {} if args.budget_fraction is None else {'budget_fraction': args.budget_fraction}
        encoder, live = run_live_system(args.live_seconds, out / 'live_run', seed, args.lr,
                                        {**perception_settings(args.settings), **budget},
                                        node_sections(args.live_set))
    world_config = WorldConfig(seed=seed)
    config = OnlinePerceptionConfig(seed=seed, train_every=args.train_every,
                                    learning_rate=args.lr, objective=args.objective,
                                    replay_batch=args.replay_batch, replay_policy=args.replay_policy)
    for name, value in perception_settings(args.settings).items():
        assign(name, value, config, config.aux)
    perception = OnlinePerception(config)
    random_init = Encoder(config.image_size, config.feature_dim)
    random_init.load_state_dict(perception.encoder_state())
    world = World(world_config)
    started, cpu_started = time.perf_counter(), time.process_time()
    log = train_online(perception, world, args.seconds, seed, args.frames, args.jpeg, args.policy,
                       args.action_delay)
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started

    frames, targets, labels = held_out_set(world_config, args.probe_frames, seed=seed + 1000,
                                           jpeg_quality=args.jpeg)
    trained = Encoder(config.image_size, config.feature_dim)
    trained.load_state_dict(perception.encoder_state())
    representations = {'online_trained': encode(trained.eval(), frames),
                       'random_init': encode(random_init.eval(), frames),
                       f'raw_pixels_{PIXEL_SIZE}x{PIXEL_SIZE}': raw_pixels(frames, config.image_size)}
    if encoder is not None:
        name = 'live_system' if args.live_seconds > 0 else f'external:{encoder.name}'
        representations[name] = encode(load_encoder(encoder, config.image_size), frames)
    steps = np.array([row['step_time_s'] for row in log])
    report = {
        'command': command,
        'seed': seed,
        'training': {'seconds': elapsed, 'frames': len(log), 'train_steps': perception.train_steps,
                     'frames_per_s': len(log) / elapsed, 'median_step_ms': float(np.median(steps) * 1e3),
                     'cpu_ms_per_frame': cpu_s / max(len(log), 1) * 1e3,
                     'coverage': world.coverage(), 'final_feature_stats': perception.feature_stats(),
                     'config': asdict(config), 'world': asdict(world_config)},
        'probe_set': {'frames': len(frames), 'train': int(len(frames) * 0.7),
                      'test': len(frames) - int(len(frames) * 0.7)},
        'probe': probe_all(representations, targets, labels),
    }
    if live.get(LOSS_TAG):
        loss, every = live[LOSS_TAG], [v for _, v in live[TRAIN_EVERY_TAG]]
        report['live_system'] = {'seconds': args.live_seconds, 'encoder': str(encoder),
                                 'aux_loss_start': float(np.mean([v for _, v in loss[:5]])),
                                 'aux_loss_end': float(np.mean([v for _, v in loss[-5:]])),
                                 'logged_points': len(loss), 'frames': loss[-1][0],
                                 # K, over the run's second half (the budget has settled)
                                 'train_every_median': float(np.median(every[len(every) // 2:]))
                                 if every else None}
        plot_live_curve(loss, out / 'live_aux_loss.png')
    (out / 'results.json').write_text(json.dumps(report, indent=2))
    plot_curves(log, out / 'aux_loss.png')
    (out / 'summary.md').write_text(summary_markdown(report, command))
    from safetensors.torch import save_file
    save_file(perception.encoder_state(), str(out / 'encoder.safetensors'))
    return report


def across_seeds(reports: list[dict], command: str) -> dict:
    """The seeds' probe figures as means, each beside its per-seed values (`per_seed`)."""
    probe: dict[str, dict] = {}
    for name in reports[0]['probe']:
        rows = [r['probe'][name] for r in reports]
        metrics = [k for k, v in rows[0].items() if isinstance(v, (int, float))]
        probe[name] = {k: float(np.mean([row[k] for row in rows])) for k in metrics}
        probe[name]['per_seed'] = {k: [row[k] for row in rows] for k in metrics}
    report = {'command': command, 'seeds': [r['seed'] for r in reports], 'probe': probe,
              'per_seed': {str(r['seed']): {k: v for k, v in r.items() if k != 'probe'}
                           for r in reports}}
    return report


def seeds_markdown(report: dict) -> str:
    """The summary across seeds: mean (per-seed values) of each figure the goals name."""
    lines = ['# Perception probe', '', f"Command: `{report['command']}`", '',
             f"World seeds {report['seeds']}; each seed's own summary and plots are in "
             f"`seed_<n>/`. Mean over seeds (per-seed values in brackets).", '',
             '| representation | R² mean | in-view acc | eff. rank |', '|---|---|---|---|']
    for name, row in report['probe'].items():
        if name.startswith('_'):
            continue
        cells = [f"{row[k]:.3f} ({', '.join(f'{v:.3f}' for v in row['per_seed'][k])})"
                 for k in ('r2_mean', 'in_view_accuracy')]
        rank = row['per_seed']['effective_rank']
        cells.append(f"{row['effective_rank']:.1f} ({', '.join(f'{v:.1f}' for v in rank)})")
        lines.append(f"| {name} | " + ' | '.join(cells) + ' |')
    chance = report['probe']['_chance']['in_view_accuracy']
    lines += ['', f'In-view majority-class accuracy (chance floor): {chance:.3f}.', '']
    for seed, run in report['per_seed'].items():
        live = run.get('live_system')
        if live:
            lines.append(f"- Seed {seed}, live system {live['seconds']:.0f} s: {live['frames']} "
                         f"frames, aux loss {live['aux_loss_start']:.3f} -> "
                         f"{live['aux_loss_end']:.3f}, trained on one frame in K = "
                         f"{live['train_every_median']} (median, second half); plots in "
                         f'`seed_{seed}/`.')
    return '\n'.join(lines) + '\n'



def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=600.0, help='wall time of online training')
    parser.add_argument('--out', type=Path, default=Path('bench/results/perception_probe'))
    parser.add_argument('--probe-frames', type=int, default=3000)
    parser.add_argument('--frames', type=int, default=0,
                        help='stop training after this many frames (0: only --seconds limits it), '
                             'to compare objectives at equal steps on a shared machine')
    parser.add_argument('--seeds', '--seed', nargs='+', type=int, default=[0],
                        help='world seeds; with more than one, each goes to OUT/seed_<n> and '
                             'OUT/results.json holds the means')
    parser.add_argument('--train-every', type=int, default=1)
    parser.add_argument('--lr', type=float, default=OnlinePerceptionConfig.learning_rate,
                        help="the encoder's Adam learning rate, in one process and in the live system")
    parser.add_argument('--encoder', type=Path, help='also probe this safetensors encoder (from the live system)')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    parser.add_argument('--objective', default=OnlinePerceptionConfig.objective, choices=OBJECTIVES)
    parser.add_argument('--replay-batch', type=int, default=OnlinePerceptionConfig.replay_batch)
    parser.add_argument('--replay-policy', default=OnlinePerceptionConfig.replay_policy,
                        choices=REPLAY_POLICIES)
    parser.add_argument('--live-seconds', type=float, default=0.0,
                        help='first run the real ROS system (world + five nodes) this long and '
                             'probe the encoder it learned, beside the in-process one')
    parser.add_argument('--budget-fraction', type=float,
                        help="the live perception node's budget_fraction (default: config/ami.yaml's)")
    parser.add_argument('--live-set', nargs=1, action='extend', default=[], type=node_setting,
                        metavar='NODE.KEY=VALUE',
                        help='a parameter of any node of the live run (YAML value), e.g. '
                             'policy_node.action_mode=held_sample')
    parser.add_argument('--policy', default='sticky', choices=sorted(POLICIES),
                        help='what drives the world during in-process training')
    parser.add_argument('--set', '--aux', dest='settings', nargs='*', default=[], metavar='NAME=VALUE',
                        help='perception setting overrides, in process and live, e.g. loss_covariance=1.0 '
                             'or lr_decay_steps=250')
    parser.add_argument('--action-delay', type=int, default=0, metavar='TICKS',
                        help='ticks between choosing an action and the world applying it')
    parser.add_argument('--jpeg', type=int, default=0, metavar='QUALITY',
                        help='pass every frame (training and probe) through the camera path: '
                             'JPEG at this quality and back, as the live system sees them')
    parser.add_argument('--held-out', action='store_true', help=f'allow world seeds >= {HELD_OUT_SEEDS}')
    args = parser.parse_args(argv)
    if not args.held_out and any(seed >= HELD_OUT_SEEDS for seed in args.seeds):
        parser.error(f'world seeds >= {HELD_OUT_SEEDS} are held out for final evaluations (--held-out)')
    torch.set_num_threads(args.threads)
    command = ('python -m ami_nodes.eval.perception_probe '
               + ' '.join(argv if argv is not None else sys.argv[1:]))
    if len(args.seeds) == 1:
        report = run_seed(args, args.seeds[0], args.out, command)
        print(summary_markdown(report, command))
        return report
    reports = []
    for seed in args.seeds:
        reports.append(run_seed(args, seed, args.out / f'seed_{seed}', command))
        print(f'seed {seed} done', flush=True)
    report = across_seeds(reports, command)
    (args.out / 'results.json').write_text(json.dumps(report, indent=2))
    (args.out / 'summary.md').write_text(seeds_markdown(report))
    print(seeds_markdown(report))
    return report


if __name__ == '__main__':
    main()
