"""Does curiosity make the robot explore? The learned policy against two random explorers.

For every world seed, runs the real system (world + five ROS nodes via the launcher) once per
policy for the same time: `curious` acts from the curiosity-trained PPO weights, `uniform`
picks a uniformly random action every tick, `sticky` holds a random action for 0.25-2 s (the
policy node's action modes; the learner trains on what it sees in every run). Reports the
fraction of free cells visited at 2, 5 and 10 minutes and, with a noisy TV, the fraction of
frames with the TV in view. `--harness` runs the same protocol in the in-process harness
(ami_nodes.eval.harness, simulated time) instead. `--reuse sticky=OLD/results.json` takes a
policy's runs from an earlier report of the same protocol instead of running them again: the
random baselines do not depend on how the curious policy is configured.

    python -m ami_nodes.eval.curiosity_coverage --seeds 0 1 2 --minutes 10 --layout rooms \\
        --out bench/results/exploration
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float32

from ami_nodes.eval.harness import HELD_OUT_SEEDS, REPORT_MINUTES
from ami_nodes.eval.live import SAMPLE_PERIOD_S, LiveRun
from ami_nodes.learning.learner import INTRINSIC_REWARDS
from ami_nodes.ros import qos
from ami_nodes.tools.launch_config import node_sections, node_setting, write_config
from ami_nodes.world.layout import LAYOUTS

ACTION_MODES = {'curious': 'sample', 'uniform': 'uniform', 'sticky': 'sticky'}  # policy_node's action_mode
CURIOUS_MODES = ('sample', 'held_sample', 'held_bandit')
LEARNER_SCALARS = ('prediction_error_mean', 'intrinsic_reward_mean', 'entropy', 'version')
# Two-sided 95 % quantiles of Student's t by degrees of freedom (no scipy here).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}


class LearnerWatcher:
    """Records the learner's scalar topics (time since start, value) in a background thread."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.series: dict[str, list[tuple[float, float]]] = {k: [] for k in LEARNER_SCALARS}
        self._context = rclpy.Context()
        rclpy.init(context=self._context, signal_handler_options=rclpy.SignalHandlerOptions.NO)
        self._node = rclpy.create_node('curiosity_eval', context=self._context)
        for key in LEARNER_SCALARS:
            self._node.create_subscription(
                Float32, f'/learner_node/{key}',
                lambda msg, k=key: self.series[k].append(
                    (time.monotonic() - self.started, float(msg.data))), qos.MONITOR)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._executor.shutdown()
        self._thread.join(timeout=5.0)
        self._node.destroy_node()
        self._context.try_shutdown()


def child_pid(parent: int, marker: str) -> int | None:
    """Pid of a direct child of `parent` whose command line contains `marker` (Linux /proc)."""
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
            if int(fields[1]) == parent and marker in (stat.parent / 'cmdline').read_bytes().decode(errors='replace'):
                return int(stat.parent.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def run_live(policy: str, seed: int, args: argparse.Namespace, workdir: Path) -> dict:
    """One run of the whole system (world + five nodes) for `args.minutes` of wall time;
    coverage sampled every SAMPLE_PERIOD_S from the world's ground truth."""
    workdir.mkdir(parents=True, exist_ok=True)
    sections = node_sections(args.set)
    if args.reward:
        sections.setdefault('learner_node', {})['intrinsic_reward'] = args.reward
    mode = args.curious_mode if policy == 'curious' else ACTION_MODES[policy]
    sections.setdefault('policy_node', {})['action_mode'] = mode
    if mode == 'held_bandit':   # its reward needs odometry: the world's velocity, through the bridge
        sections.setdefault('ami_world', {})['velocity_parameters'] = True
        sections.setdefault('osc_bridge_node', {})['velocity_parameters'] = True
    sections.setdefault('ami_world', {}).update(seed=seed, layout=args.layout, noisy_tv=args.noisy_tv)
    config = write_config(workdir / 'ami.yaml', sections)
    watcher = LearnerWatcher()
    curve: list[tuple[float, float]] = []
    state: dict = {}
    seconds = args.minutes * 60.0
    learner_pid, cpu_start = None, (0.0, 0.0)
    try:
        with LiveRun(config, workdir, f'{policy} seed {seed}') as run:
            for state in run.samples():  # until the world's clock has run the time
                curve.append((state['time'], state['coverage']))
                if learner_pid is None and (learner_pid := child_pid(run.pid, '__node:=learner_node')):
                    cpu_start = (time.monotonic(), cpu_seconds(learner_pid))
                print(f"[{policy} seed {seed}] {state['time']:5.0f} s coverage {state['coverage']:.3f}", flush=True)
                if state['time'] >= seconds:
                    break
            cpu_share = ((cpu_seconds(learner_pid) - cpu_start[1]) / (time.monotonic() - cpu_start[0])
                         if learner_pid else None)
    finally:
        watcher.close()
    code = run.exit_code
    return {'policy': policy, 'seed': seed, 'exit_code': code, 'curve': curve,
            'coverage': coverage_at(curve, seconds),
            'coverage_at_minutes': {str(m): coverage_at(curve, m * 60.0) for m in REPORT_MINUTES if m <= args.minutes},
            'noisy_tv_view_fraction': state['noisy_tv_frames'] / (state['frame'] + 1),
            'free_cells': state['free_cells'], 'learner_cpu_share': cpu_share, **watcher.series}


def run_in_harness(policy: str, seed: int, args: argparse.Namespace) -> dict:
    """The same run in the in-process harness (simulated time, no ROS)."""
    from ami_nodes.eval import harness
    from ami_nodes.learning.learner import LearnerConfig
    learner = LearnerConfig(**({'intrinsic_reward': args.reward} if args.reward else {}))
    result = harness.run(harness.HarnessConfig(policy=policy, seed=seed, minutes=args.minutes, layout=args.layout,
                                               noisy_tv=args.noisy_tv, learner=learner))
    print(f"[{policy} seed {seed}] coverage {result['coverage']:.3f} ({result['wall_s']:.0f} s)", flush=True)
    return result


def coverage_at(curve: list[tuple[float, float]], seconds: float) -> float:
    """Coverage at the last sample taken at or before `seconds` (coverage never decreases)."""
    before = [c for t, c in curve if t <= seconds + 1e-6]
    return before[-1] if before else 0.0


def mean_and_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half width of its 95 % t interval (0 for a single value)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return float(x.mean()), 0.0
    t = T_975.get(x.size - 1, 1.96)
    return float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(x.size))


def plot(report: dict, runs: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    grid = np.arange(0.0, report['minutes'] * 60.0 + 1e-6, SAMPLE_PERIOD_S)
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for policy in report['coverage']:
        curves = np.array([[coverage_at(run['curve'], t) for t in grid] for run in runs if run['policy'] == policy])
        stats = [mean_and_interval(column) for column in curves.T]
        mean = np.array([m for m, _ in stats])
        half = np.array([h for _, h in stats])
        axis.plot(grid / 60.0, mean, label=f'{policy} (n={len(curves)})')
        axis.fill_between(grid / 60.0, np.clip(mean - half, 0.0, 1.0), np.clip(mean + half, 0.0, 1.0), alpha=0.2)
    axis.set_xlabel('minutes' + (' (simulated, in-process harness)' if report['harness'] else ' (live system)'))
    axis.set_ylabel('fraction of free cells visited')
    axis.set_title(f"{report['layout']}: mean and 95 % interval across seeds {report['seeds']}")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def summary(report: dict) -> str:
    where = ('**In-process harness (simulated time, no ROS): not the live system.**' if report['harness']
             else 'Live system: world + five nodes, real time, 20 Hz.')
    lines = [f"# Exploration: {', '.join(report['coverage'])} on `{report['layout']}`", '', where, '',
             f"Command: `{report['command']}`", '',
             *(f"Runs of `{policy}` taken from `{source['path']}`, made by `{source['command']}`."
               for policy, source in report.get('reused', {}).items()),
             *([''] if report.get('reused') else []),
             f"Machine: {report['machine']}. World seeds {report['seeds']}, {report['minutes']:g} minutes each.", '',
             '| ' + ' | '.join(['policy', *(f'coverage at {m:g} min' for m in REPORT_MINUTES if m <= report['minutes']),
                                'per seed at the end', 'noisy TV in view']) + ' |',
             '|---|' + '---|' * (sum(m <= report['minutes'] for m in REPORT_MINUTES) + 2)]
    for policy, finals in report['coverage'].items():
        cells = []
        for values in report['coverage_at_minutes'][policy].values():
            mean, half = mean_and_interval(values)
            cells.append(f'{mean:.3f} ± {half:.3f}')
        noisy = mean_and_interval(report['noisy_tv_view_fraction'][policy])
        lines.append('| ' + ' | '.join([policy, *cells, ', '.join(f'{v:.3f}' for v in finals), f'{noisy[0]:.3f}'])
                     + ' |')
    lines += ['', '± is the half width of the 95 % t interval across seeds.', '']
    shares = [run['learner_cpu_share'] for run in report['runs'] if run.get('learner_cpu_share') is not None]
    if shares:
        lines += [f"Learner process CPU share (one core = 1.0): mean {np.mean(shares):.2f}, "
                  f"max {max(shares):.2f} over {len(shares)} runs.", '']
    coverage = report['coverage']
    if {'curious', 'uniform', 'sticky'} <= coverage.keys():
        curious, uniform, sticky = (float(np.mean(coverage[p])) for p in ('curious', 'uniform', 'sticky'))
        lines += ['Goal checks (at the end of the run):', '',
                  f'- curious / uniform mean coverage: {curious / max(uniform, 1e-9):.2f} (goal >= 1.5)',
                  f'- curious / sticky mean coverage: {curious / max(sticky, 1e-9):.2f} (goal >= 1.2)',
                  f"- curious worst seed {min(coverage['curious']):.3f} vs sticky mean {sticky:.3f} (goal: above)"]
        if report['noisy_tv']:
            views = report['noisy_tv_view_fraction']
            gap = 100.0 * (float(np.mean(views['curious'])) - float(np.mean(views['sticky'])))
            lines.append(f'- noisy TV in view, curious minus sticky: {gap:+.1f} points (goal <= +10)')
        lines.append('')
    lines += ['![coverage](coverage.png)', '']
    return '\n'.join(lines)


def reuse_source(text: str) -> tuple[str, Path]:
    """`policy=path/to/results.json` as (policy, path)."""
    policy, sep, path = text.partition('=')
    if not sep or policy not in ACTION_MODES or not path:
        raise argparse.ArgumentTypeError(f'{text!r} is not POLICY=RESULTS_JSON with POLICY in {tuple(ACTION_MODES)}')
    return policy, Path(path)


def reused_runs(policy: str, path: Path, args: argparse.Namespace) -> tuple[list[dict], dict]:
    """`policy`'s runs on `args.seeds` from an earlier report, which must have used the same
    protocol (layout, noisy TV, minutes, live or harness); and where they came from."""
    earlier = json.loads(path.read_text())
    protocol = (args.layout + ('+noisy_tv' if args.noisy_tv else ''), args.minutes, args.harness)
    if (earlier['layout'], earlier['minutes'], earlier['harness']) != protocol:
        raise SystemExit(f"{path}: layout, minutes, harness {earlier['layout']}, {earlier['minutes']}, "
                         f"{earlier['harness']}; this report's are {', '.join(map(str, protocol))}")
    by_seed = {run['seed']: run for run in earlier['runs'] if run['policy'] == policy}
    if missing := [seed for seed in args.seeds if seed not in by_seed]:
        raise SystemExit(f'{path} has no {policy} run for seeds {missing}')
    source = {'path': str(path), 'command': earlier['command'],
              **{key: earlier[key] for key in ('curious_mode', 'reward', 'settings') if policy == 'curious'}}
    return [by_seed[seed] for seed in args.seeds], source


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--policies', nargs='*', choices=tuple(ACTION_MODES), default=list(ACTION_MODES),
                        help='the policies to run (none: only merge --reuse)')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2], help='world seeds')
    parser.add_argument('--minutes', type=float, default=10.0, help='length of each run')
    parser.add_argument('--layout', choices=LAYOUTS, default='rooms')
    parser.add_argument('--noisy-tv', action='store_true', help='add the noisy TV to the layout')
    parser.add_argument('--reward', choices=INTRINSIC_REWARDS,
                        help="the learner's intrinsic_reward (default: config/ami.yaml's)")
    parser.add_argument('--curious-mode', choices=CURIOUS_MODES, default='sample',
                        help="policy_node's action_mode for the curious policy")
    parser.add_argument('--set', nargs=1, action='extend', default=[], type=node_setting, metavar='NODE.KEY=VALUE',
                        help='a parameter for every live run (YAML value), e.g. learner_node.rollout_length=32')
    parser.add_argument('--harness', action='store_true',
                        help='run in the in-process harness (simulated time) instead of the live system')
    parser.add_argument('--held-out', action='store_true', help=f'allow world seeds >= {HELD_OUT_SEEDS}')
    parser.add_argument('--reuse', nargs='+', type=reuse_source, default=[], metavar='POLICY=RESULTS_JSON',
                        help="take a policy's runs from an earlier results.json of the same protocol")
    parser.add_argument('--out', type=Path, default=Path('bench/results/exploration'))
    args = parser.parse_args(argv)
    reused = [policy for policy, _ in args.reuse]
    if len(set(reused)) < len(reused) or set(reused) & set(args.policies):
        parser.error('each policy is either run or reused, once')
    if not args.policies and not reused:
        parser.error('nothing to report: no --policies and no --reuse')
    if args.harness and (args.set or args.curious_mode != 'sample'):
        parser.error('--set and --curious-mode are for the live system; the harness has its own options')
    if not args.held_out and any(seed >= HELD_OUT_SEEDS for seed in args.seeds):
        parser.error(f'world seeds >= {HELD_OUT_SEEDS} are held out for final evaluations (--held-out)')
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [run_in_harness(policy, seed, args) if args.harness
            else run_live(policy, seed, args, args.out / f'{policy}_seed{seed}')
            for seed in args.seeds for policy in args.policies]
    sources = {}
    for policy, path in args.reuse:
        earlier, sources[policy] = reused_runs(policy, path, args)
        runs += earlier
    policies = [policy for policy in ACTION_MODES if policy in args.policies or policy in sources]
    by_policy = {policy: [run for run in runs if run['policy'] == policy] for policy in policies}
    curious = sources.get('curious', {'reward': args.reward, 'curious_mode': args.curious_mode,
                                      'settings': [f'{node}.{key}={value}' for node, key, value in args.set]})
    report = {
        'minutes': args.minutes,
        'layout': args.layout + ('+noisy_tv' if args.noisy_tv else ''),
        'seeds': list(args.seeds),
        'coverage': {p: [run['coverage'] for run in rs] for p, rs in by_policy.items()},
        'noisy_tv_view_fraction': {p: [run['noisy_tv_view_fraction'] for run in rs] for p, rs in by_policy.items()},
        'coverage_at_minutes': {p: {str(m): [run['coverage_at_minutes'][str(m)] for run in rs]
                                    for m in REPORT_MINUTES if m <= args.minutes} for p, rs in by_policy.items()},
        'noisy_tv': args.noisy_tv,
        'harness': args.harness,
        'reward': curious['reward'],
        'curious_mode': curious['curious_mode'],
        'settings': curious['settings'],
        'reused': sources,
        'command': 'python -m ami_nodes.eval.curiosity_coverage '
                   + ' '.join(argv if argv is not None else sys.argv[1:]),
        'machine': f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores',
        'runs': runs,
    }
    (args.out / 'results.json').write_text(json.dumps(report, indent=1))
    plot(report, runs, args.out / 'coverage.png')
    (args.out / 'summary.md').write_text(summary(report))
    print(summary(report))
    return report


if __name__ == '__main__':
    main()
