"""Does curiosity make the robot explore? The full system against a uniformly random policy.

Runs the real system (world + five ROS nodes via ami_launch) twice for the same wall time and
world seed: (a) the policy acts from the curiosity-trained PPO weights, (b) the policy acts
uniformly at random while the learner still trains on what it sees. Reports the fraction of
world cells visited over time, the forward model's prediction error (the raw curiosity
signal; the reward itself is standardised to mean 0), and the acting policy's entropy.

    python -m ami_nodes.eval.curiosity_coverage --seconds 300 --out bench/results/curiosity_coverage
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float32

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.ros import qos
from ami_nodes.tools.launch_config import write_config

MODES = {'curious': 'sample', 'random': 'uniform'}
LEARNER_SCALARS = ('prediction_error_mean', 'intrinsic_reward_mean', 'entropy', 'version')
UNIFORM_ENTROPY = math.log(math.prod(ACTION_DIMS))


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


def world_state(port: int) -> dict:
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/state', timeout=2) as response:
        return json.loads(response.read())


def run_mode(mode: str, seconds: float, workdir: Path, seed: int) -> dict:
    """One run of the whole system; coverage sampled every 5 s from the world's ground truth."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir / 'ami.yaml', {
        'policy_node': {'action_mode': MODES[mode]}, 'ami_world': {'seed': seed}})
    port = yaml.safe_load(config.read_text())['ami_world']['ros__parameters']['http_port']
    log = workdir / 'launch.log'
    watcher = LearnerWatcher()
    launcher = subprocess.Popen(
        [sys.executable, '-m', 'ami_nodes.tools.launcher', '--config', str(config),
         '--checkpoint-dir', str(workdir / 'checkpoints'), '--log-dir', str(workdir / 'runs'),
         '--status-period', '30'], stdout=open(log, 'w'), stderr=subprocess.STDOUT,
        env={**os.environ, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'})
    coverage: list[tuple[float, float]] = []
    try:
        while True:  # wait for the world, then sample until the wall time is up
            time.sleep(5.0)
            try:
                state = world_state(port)
            except OSError:
                if launcher.poll() is not None:
                    raise SystemExit(f'{mode}: the system stopped; see {log}')
                continue
            elapsed = time.monotonic() - watcher.started
            coverage.append((elapsed, state['coverage']))
            print(f'[{mode}] {elapsed:5.0f} s coverage {state["coverage"]:.3f}', flush=True)
            if elapsed >= seconds:
                break
    finally:
        launcher.send_signal(signal.SIGINT)
        code = launcher.wait(120)
        watcher.close()
    return {'mode': mode, 'action_mode': MODES[mode], 'exit_code': code,
            'coverage': coverage, 'final_coverage': coverage[-1][1], **watcher.series}


def plot(runs: dict[str, dict], path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for mode, run in runs.items():
        axes[0].plot(*zip(*run['coverage']), label=mode)
        if run['prediction_error_mean']:
            axes[1].plot(*zip(*run['prediction_error_mean']), marker='.', label=mode)
    curious = runs['curious']['entropy']
    if curious:
        axes[2].plot(*zip(*curious), marker='.', label='curious (PPO policy)')
    axes[2].axhline(UNIFORM_ENTROPY, color='tab:orange', label='random (uniform)')
    for axis, title in zip(axes, ('fraction of cells visited', 'forward-model prediction error',
                                  'acting policy entropy (nats)')):
        axis.set_title(title)
        axis.set_xlabel('wall time (s)')
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def summary(report: dict) -> str:
    runs = report['runs']
    lines = ['# Curiosity against a random policy', '', f"Command: `{report['command']}`", '',
             f"Machine: {report['machine']}. Each run: world seed {report['seed']}, "
             f"{report['seconds']:.0f} s wall time, the whole system (world + five nodes).", '',
             '| run | cells visited (fraction) | learner updates | prediction error first / last '
             '| acting entropy last |', '|---|---|---|---|---|']
    for mode, run in runs.items():
        errors = [v for _, v in run['prediction_error_mean']]
        entropy = ([v for _, v in run['entropy']][-1:] or [float('nan')])[0] \
            if mode == 'curious' else UNIFORM_ENTROPY
        lines.append(f"| {mode} | {run['final_coverage']:.3f} | {len(errors)} | "
                     + (f'{errors[0]:.4f} / {errors[-1]:.4f}' if errors else '-')
                     + f' | {entropy:.2f} |')
    lines += ['', '![curves](curiosity_coverage.png)', '']
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=300.0, help='wall time of each run')
    parser.add_argument('--seed', type=int, default=0, help='world seed (same for both runs)')
    parser.add_argument('--out', type=Path, default=Path('bench/results/curiosity_coverage'))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {mode: run_mode(mode, args.seconds, args.out / f'{mode}_run', args.seed)
            for mode in MODES}
    report = {'command': 'python -m ami_nodes.eval.curiosity_coverage '
                         + ' '.join(argv if argv is not None else sys.argv[1:]),
              'machine': f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores',
              'seconds': args.seconds, 'seed': args.seed, 'runs': runs}
    (args.out / 'results.json').write_text(json.dumps(report, indent=2))
    plot(runs, args.out / 'curiosity_coverage.png')
    (args.out / 'summary.md').write_text(summary(report))
    print(summary(report))
    return report


if __name__ == '__main__':
    main()
