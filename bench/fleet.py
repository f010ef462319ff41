"""Fleet bench: 1, 2 and 3 robots, one learner; weight publish -> applied across a veth link.

    nice .venv/bin/python -m bench.fleet                 # about 8 minutes on 2 cores
    nice .venv/bin/python -m bench.fleet --quick --out /tmp/fleet

Per robot count, `ami_launch --robots N` (N worlds and robot stacks, one learner) runs until
the learner's first update, then for `--seconds` more. From /diagnostics at the start and the
end of that window: the learner's samples trained per second and updates per minute, and
each robot's policy lag (learner version minus the version that acted, on arrival at the
learner, over its last 500 steps) together with the rates each robot really ran at. After the
run, the fleet's final checkpoint gives each robot's encoder: their agreement on the same
frames (linear CKA) is the measurement behind the shared-vs-per-robot encoder decision.

Across the link: policy_node in one network namespace, bench.weight_sync's learner stand-in
in another (bench/netns.py), blobs of three sizes; the same figure on one host is in
bench/results/latest.json (weight_sync).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from bench import machine
from bench.machine import REPO
from bench.netns import Link, LinkError, unavailable

RESULTS = REPO / 'bench' / 'results'
LINK_SIZES = (100_000, 1_000_000, 10_000_000)


class Diagnostics:
    """/diagnostics from every node, in a background executor of this process."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from ami_nodes.tools.status import StatusCollector
        rclpy.init()
        self._rclpy = rclpy
        self.node = rclpy.create_node('bench_fleet')
        self.collector = StatusCollector(self.node)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def values(self, name: str) -> dict[str, str]:
        entry = self.collector.snapshot().get(name)
        return entry[1] if entry else {}

    def close(self) -> None:
        self._executor.shutdown()
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        self._rclpy.try_shutdown()


def number(values: dict[str, str], key: str) -> float:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return float('nan')


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Similarity of two representations of the same inputs, invariant to rotation and
    scale (Kornblith et al. 2019): 1 means one is a rotated, rescaled copy of the other."""
    x, y = x - x.mean(0), y - y.mean(0)
    cross = np.linalg.norm(x.T @ y) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def encoder_agreement(checkpoint: Path, robots: int, image_size: int) -> dict:
    """Linear CKA between the robots' encoders, and between each and the initial encoder,
    on 300 held-out frames of world seed 0."""
    from ami_nodes.eval.perception_probe import encode, held_out_set
    from ami_nodes.perception.encoder import Encoder
    from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig
    from ami_nodes.persistence import load_part
    from ami_nodes.world.sim import WorldConfig
    frames, _, _ = held_out_set(WorldConfig(seed=0), 300, seed=7)
    features = {'initial': encode(OnlinePerception(OnlinePerceptionConfig(
        image_size=image_size, seed=0)).encoder.eval(), frames)}
    for i in range(robots):
        state = load_part(checkpoint, f'robot_{i}-perception_node').models['encoder']
        encoder = Encoder(image_size, int(state['head.weight'].shape[0]))
        encoder.load_state_dict(state)
        features[f'robot_{i}'] = encode(encoder.eval(), frames)
    names = sorted(features)
    return {f'{a}~{b}': linear_cka(features[a], features[b])
            for i, a in enumerate(names) for b in names[i + 1:]}


def run_fleet(robots: int, seconds: float, rate_hz: float, size: tuple[int, int],
              workdir: Path, diagnostics: Diagnostics) -> dict:
    from ami_nodes.persistence import latest_checkpoint
    from ami_nodes.tools.launch_config import write_config
    namespace = f'bench_fleet_{robots}'
    config = write_config(workdir / f'{namespace}.yaml', {
        'ami_world': {'fps': rate_hz, 'width': size[0], 'height': size[1]},
        'camera_node': {'framerate': rate_hz}, 'perception_node': {'frame_rate': rate_hz},
        'learner_node': {'checkpoint_period': 0.0}})
    log = workdir / f'{namespace}.log'
    launcher = subprocess.Popen(
        [sys.executable, '-m', 'ami_nodes.tools.launcher', '--config', str(config),
         '--robots', str(robots), '--namespace', namespace, '--log-dir', '',
         '--checkpoint-dir', str(workdir / namespace), '--status-period', '0'],
        stdout=open(log, 'w'), stderr=subprocess.STDOUT, cwd=REPO)
    learner = f'/{namespace}/learner_node'
    stacks = [f'/{namespace}' + (f'/robot_{i}' if robots > 1 else '') for i in range(robots)]
    sources = [f'robot_{i}' for i in range(robots)] if robots > 1 else ['experience']
    result: dict = {'robots': robots}
    try:
        started = time.monotonic()
        while not number(diagnostics.values(learner), 'updates') >= 1:  # NaN: not yet
            if time.monotonic() - started > 180 or launcher.poll() is not None:
                return {**result, 'error': 'no learner update within 180 s',
                        'log_tail': log.read_text()[-2000:]}
            time.sleep(0.5)
        result['first_update_after_s'] = time.monotonic() - started
        before, t0 = diagnostics.values(learner), time.monotonic()
        time.sleep(seconds)
        after, t1 = diagnostics.values(learner), time.monotonic()
        window = t1 - t0
        per_robot = {}
        for stack, source in zip(stacks, sources):
            policy = diagnostics.values(f'{stack}/policy_node')
            per_robot[source] = {
                'camera_hz': number(diagnostics.values(f'{stack}/camera_node'), 'rate_hz'),
                'policy_hz': number(policy, 'rate_hz'),
                'policy_version': number(policy, 'policy_version'),
                'tick_latency_ms_p50': number(policy, 'latency_ms_p50'),
                'perception_step_ms_p50': number(diagnostics.values(
                    f'{stack}/perception_node'), 'step_ms_p50'),
                'perception_train_every': number(diagnostics.values(
                    f'{stack}/perception_node'), 'train_every'),
                'lag_mean': number(after, f'{source}/lag_mean'),
                'lag_p99': number(after, f'{source}/lag_p99'),
                'gaps': number(after, f'{source}/gaps'),
                'experience_hz': number(after, f'{source}/experience_hz')}
        result.update({
            'window_s': window,
            'samples_per_s': (number(after, 'samples_trained')
                              - number(before, 'samples_trained')) / window,
            'updates_per_min': (number(after, 'updates') - number(before, 'updates'))
            / window * 60,
            'update_ms_p50': number(after, 'update_ms_p50'),
            'experience_hz': number(after, 'experience_hz'),
            'lag_mean': float(np.mean([r['lag_mean'] for r in per_robot.values()])),
            'lag_p99': float(max(r['lag_p99'] for r in per_robot.values())),
            'per_robot': per_robot, 'loadavg': machine.loadavg()})
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            result['exit_code'] = launcher.wait(90)
        except subprocess.TimeoutExpired:
            launcher.kill()
            result['exit_code'] = 'killed'
    checkpoint = latest_checkpoint(workdir / namespace)
    if robots > 1 and checkpoint is not None:
        result['encoder_cka'] = encoder_agreement(checkpoint, robots, 84)
    return result


def weight_sync_across_link(quick: bool, workdir: Path) -> dict:
    """bench.weight_sync with its policy_node on the far side of a veth link."""
    if unavailable():
        return {'skipped': unavailable()}
    try:
        link = Link(str(os.getpid() % 100000), f'10.214.{os.getpid() % 250}')
    except LinkError as error:
        return {'skipped': str(error)}
    out = workdir / 'weight_sync_link.json'
    sizes = LINK_SIZES[:1] if quick else LINK_SIZES
    try:
        subprocess.run(link.command(
            0, sys.executable, '-m', 'bench.weight_sync', '--profile', 'on',
            '--domain', os.environ.get('ROS_DOMAIN_ID', '0'),
            '--repeats', '2' if quick else '8', '--tick-seconds', '1',
            '--sizes', *map(str, sizes), '--out', str(out),
            '--policy-netns', link.names[1], '--policy-peer', link.addresses[0]),
            env=link.env(0), cwd=REPO, check=True, timeout=900)
        moved = link.bytes_moved(0)
    finally:
        link.close()
    return {'how': 'bench.weight_sync (profile on) in one network namespace, policy_node in '
                   'another, joined by a veth pair; discovery SUBNET + ROS_STATIC_PEERS; '
                   'publish -> /policy_node/version seen back across the link',
            'link_bytes_received_sent': moved, 'sizes': json.loads(out.read_text())}


def markdown(results: dict) -> str:
    lines = ['# Fleet bench', '', f"Command: `{results['command']}`", '',
             f"Machine: {results['machine']['cpu']}, {results['machine']['nproc']} cores, "
             f"load {results['machine']['loadavg_start']} at start; {results['setting']}.", '',
             '| robots | samples/s | updates/min | lag mean | lag p99 | policy Hz (each) '
             '| perception step ms p50 (each) | encoder CKA |',
             '|---|---|---|---|---|---|---|---|']
    for row in results['fleet']:
        if 'error' in row:
            lines.append(f"| {row['robots']} | error: {row['error']} | | | | | | |")
            continue
        robots = row['per_robot'].values()
        cka = ', '.join(f'{k} {v:.2f}' for k, v in row.get('encoder_cka', {}).items())
        rates = ', '.join(f"{r['policy_hz']:.1f}" for r in robots)
        steps = ', '.join(f"{r['perception_step_ms_p50']:.1f}" for r in robots)
        lines.append(
            f"| {row['robots']} | {row['samples_per_s']:.1f} | {row['updates_per_min']:.1f} "
            f"| {row['lag_mean']:.2f} | {row['lag_p99']:.1f} "
            f"| {rates} | {steps} | {cka} |")
    link = results['link']
    lines += ['', '## Weight publish -> applied across a veth link', '']
    if 'skipped' in link:
        lines.append(f"skipped: {link['skipped']}")
    else:
        lines += ['| blob bytes | p50 ms | p99 ms | max ms | not applied |', '|---|---|---|---|---|']
        for row in link['sizes'].values():
            delay = row.get('publish_to_applied_ms', {})
            lines.append(f"| {row.get('blob_bytes')} | {delay.get('p50', float('nan')):.1f} "
                         f"| {delay.get('p99', float('nan')):.1f} "
                         f"| {delay.get('max', float('nan')):.1f} "
                         f"| {row.get('not_applied_within_15s')} |")
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--robots', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--seconds', type=float, default=60.0)
    parser.add_argument('--rate', type=float, default=20.0, help='world fps and camera Hz')
    parser.add_argument('--size', type=int, nargs=2, default=(160, 120),
                        help='world render width height')
    parser.add_argument('--no-link', action='store_true', help='skip the veth-link part')
    parser.add_argument('--out', type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 80))
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    seconds = 10.0 if args.quick else args.seconds
    results: dict = {
        'command': 'nice .venv/bin/python -m bench.fleet ' + ' '.join(argv or sys.argv[1:]),
        'machine': {**machine.describe(), 'loadavg_start': machine.loadavg()},
        'setting': f'{args.rate:g} Hz, world {args.size[0]}x{args.size[1]}, {seconds:g} s '
                   f'per robot count after the first update',
        'fleet': []}
    with tempfile.TemporaryDirectory(prefix='bench_fleet_') as tmp:
        diagnostics = Diagnostics()
        try:
            for robots in args.robots:
                print(f'[bench.fleet] {robots} robot(s) ...', flush=True)
                results['fleet'].append(run_fleet(robots, seconds, args.rate, tuple(args.size),
                                                  Path(tmp), diagnostics))
        finally:
            diagnostics.close()
        if not args.no_link:
            print('[bench.fleet] weight sync across a veth link ...', flush=True)
        results['link'] = ({'skipped': '--no-link'} if args.no_link
                           else weight_sync_across_link(args.quick, Path(tmp)))
    results['machine']['loadavg_end'] = machine.loadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=1, default=str).replace('NaN', 'null')
    (args.out / 'fleet.json').write_text(text)
    (args.out / 'fleet.md').write_text(markdown(results))
    print(markdown(results))
    return results


if __name__ == '__main__':
    main()
