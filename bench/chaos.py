"""Chaos run: the whole system for N minutes while a random node is killed (kill -9) every
2 to 4 minutes; what survives, what each kill costs, and whether memory stays flat.

    python -m bench.chaos --minutes 30            # `make chaos`

Reports, per kill: which node, whether ami_launch restarted it, the longest time without a
cmd_vel around it, and the learning it cost (learner updates or perception training steps
between its newest checkpoint and the kill). Over the run: whether the learner's shipped
versions only rose, the policy's applied versions, and each node's memory slope, fitted per
process lifetime after its first `SETTLE_S` (start-up, torch's lazy init and the first
weights are not growth). Writes bench/results/chaos/{results.json,summary.md,memory.png}.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench import procmem
from bench.machine import REPO, describe, loadavg
from bench.system_session import SystemSession

NODES = ('camera_node', 'perception_node', 'policy_node', 'learner_node', 'osc_bridge_node')
RESULTS = REPO / 'bench' / 'results' / 'chaos'
SETTLE_S = 120.0
FLAT_MB_PER_MIN = 0.5
RSS_PERIOD_S = 5.0


def node_pids(root: int) -> dict[str, int]:
    """label -> pid of each node process under the launcher (the outermost of a name)."""
    found: dict[str, int] = {}
    for pid in sorted(procmem.descendants(root)):
        try:
            name = procmem.label(pid)
        except OSError:
            continue
        found.setdefault(name, pid)
    return found


class MemorySampler:
    """VmRSS of every node process, by (name, pid), so each lifetime gets its own fit."""

    def __init__(self, root: int) -> None:
        self.rows: list[tuple[float, str, int, float]] = []  # (t, name, pid, MB)
        self._root = root
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(RSS_PERIOD_S):
            now = time.monotonic()
            for pid in procmem.descendants(self._root):
                try:
                    name = procmem.label(pid)
                    kib = procmem._kib(procmem._status(pid).get('VmRSS', ''))
                except OSError:
                    continue
                self.rows.append((now, name, pid, kib / 1024))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def memory_slopes(rows: list[tuple[float, str, int, float]]) -> dict[str, dict]:
    """Per node: the slope of each process lifetime after SETTLE_S, and their time-weighted
    mean (MB/min)."""
    out: dict[str, dict] = {}
    for name in sorted({r[1] for r in rows}):
        lifetimes = []
        for pid in sorted({r[2] for r in rows if r[1] == name}):
            mine = [(t, mb) for t, n, p, mb in rows if n == name and p == pid]
            start = mine[0][0]
            settled = [(t, mb) for t, mb in mine if t - start >= SETTLE_S]
            if len(settled) >= 6:
                times = np.array([t for t, _ in settled]) / 60.0
                slope = float(np.polyfit(times, [mb for _, mb in settled], 1)[0])
                lifetimes.append({'pid': pid, 'minutes_fitted': float(times[-1] - times[0]),
                                  'slope_mb_per_min': slope, 'first_mb': settled[0][1],
                                  'last_mb': settled[-1][1]})
        weights = [lt['minutes_fitted'] for lt in lifetimes]
        mean = (float(np.average([lt['slope_mb_per_min'] for lt in lifetimes], weights=weights))
                if lifetimes and sum(weights) > 0 else float('nan'))
        out[name] = {'lifetimes': lifetimes, 'slope_mb_per_min': mean,
                     'flat': bool(np.isfinite(mean) and abs(mean) < FLAT_MB_PER_MIN)}
    return out


def _diagnostic_series(session: SystemSession, node: str, key: str) -> list[tuple[float, float]]:
    series = []
    for t, name, values in session.records.diagnostics:
        if name == node and key in values:
            try:
                series.append((t, float(values[key])))
            except ValueError:
                continue
    return series


def kill_cost(session: SystemSession, kill: dict, next_kill_t: float) -> dict:
    """Longest gap in cmd_vel around a kill, and the learning the restart threw away."""
    t = kill['t']
    arrivals = [a for a, *_ in session.records.cmd_vel if t - 1.0 <= a <= min(t + 60.0, next_kill_t)]
    gap = float(np.max(np.diff(arrivals))) if len(arrivals) >= 2 else float('nan')
    cost = {'cmd_vel_gap_s': gap}
    counter = {'learner_node': 'updates', 'perception_node': 'train_steps'}.get(kill['node'])
    if counter:
        series = _diagnostic_series(session, kill['node'], counter)
        before = [v for s, v in series if s < t]
        after = [v for s, v in series if s > t + 0.5]
        if before and after:
            cost[f'{counter}_lost'] = max(0.0, before[-1] - after[0])
    return cost


def monotonic_violations(values: list[int]) -> int:
    return sum(1 for a, b in zip(values, values[1:]) if b < a)


def plot_memory(rows: list, started: float, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name in sorted({r[1] for r in rows}):
        for i, pid in enumerate(sorted({r[2] for r in rows if r[1] == name})):
            mine = [(t, mb) for t, n, p, mb in rows if n == name and p == pid]
            ax.plot([(t - started) / 60 for t, _ in mine], [mb for _, mb in mine],
                    color=f'C{sorted({r[1] for r in rows}).index(name)}',
                    label=name if i == 0 else None)
    ax.set_xlabel('minutes')
    ax.set_ylabel('RSS (MB)')
    ax.set_title('Memory of each node process (a break is a kill and restart)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def run(minutes: float, kill_min_s: float, kill_max_s: float, seed: int, out: Path,
        domain_id: int, checkpoint_period_s: float) -> dict:
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix='ami_chaos_'))
    session = SystemSession(workdir, domain_id, {
        'learner_node': {'checkpoint_period': checkpoint_period_s}}, rss_period_s=3600.0)
    session.start()
    load_at_start = loadavg()
    started = time.monotonic()
    sampler = MemorySampler(session.launcher.pid)
    kills: list[dict] = []
    next_kill = started + rng.uniform(kill_min_s, kill_max_s)
    end = started + minutes * 60
    try:
        while time.monotonic() < end:
            time.sleep(1.0)
            elapsed = time.monotonic() - started
            if int(elapsed) % 60 == 0:
                print(f'[chaos] {elapsed / 60:.0f}/{minutes:g} min, {len(kills)} kills', flush=True)
            if time.monotonic() >= next_kill and kill_max_s > 0:
                node = rng.choice(NODES)
                pid = node_pids(session.launcher.pid).get(node)
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    kills.append({'t': time.monotonic(), 'minute': elapsed / 60, 'node': node,
                                  'pid': pid})
                    print(f'[chaos] killed {node} (pid {pid}) at {elapsed / 60:.1f} min',
                          flush=True)
                next_kill = time.monotonic() + rng.uniform(kill_min_s, kill_max_s)
    finally:
        sampler.stop()
        code = session.stop()
    log = session.log.read_text()
    for i, kill in enumerate(kills):
        later = kills[i + 1]['t'] if i + 1 < len(kills) else float('inf')
        kill.update(kill_cost(session, kill, later))
        kill['restarted'] = any(p != kill['pid'] for t, n, p, _ in sampler.rows
                                if n == kill['node'] and t > kill['t'])
    shipped = [v for _, v in session.records.learner_versions]
    applied = [v for _, v in session.records.versions]
    policy_kills = sum(k['node'] == 'policy_node' for k in kills)
    restarts_line = next((line for line in log.splitlines()
                          if line.startswith('[ami_launch] restarts:')), '')
    result = {
        'command': (f'python -m bench.chaos --minutes {minutes:g} --kill-min {kill_min_s:g} '
                    f'--kill-max {kill_max_s:g} --seed {seed} '
                    f'--checkpoint-period {checkpoint_period_s:g}'),
        'machine': describe(),
        'minutes': minutes, 'kill_every_s': [kill_min_s, kill_max_s], 'seed': seed,
        'checkpoint_period_s': checkpoint_period_s,
        'loadavg_at_start_and_end': [load_at_start, loadavg()],
        'launcher_exit_code': code,
        'restarts': restarts_line.removeprefix('[ami_launch] restarts: '),
        'gave_up': 'stays down' in log,
        'kills': [{k: v for k, v in kill.items() if k != 't'} for kill in kills],
        'all_restarted': all(k['restarted'] for k in kills),
        'learner_versions': {'first': shipped[0] if shipped else None,
                             'last': shipped[-1] if shipped else None,
                             'decreases': monotonic_violations(shipped)},
        'policy_versions': {'first': applied[0] if applied else None,
                            'last': applied[-1] if applied else None,
                            'decreases': monotonic_violations(applied),
                            'policy_restarts': policy_kills},
        'memory': memory_slopes(sampler.rows),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / 'results.json').write_text(json.dumps(result, indent=1))
    plot_memory(sampler.rows, started, out / 'memory.png')
    (out / 'summary.md').write_text(summary(result))
    return result


def summary(result: dict) -> str:
    lines = [f"# Chaos run: {result['minutes']:g} minutes, a kill -9 every "
             f"{result['kill_every_s'][0]:g}-{result['kill_every_s'][1]:g} s", '',
             f"Command: `{result['command']}` on {result['machine'].get('cpu', '?')}.", '',
             f"Launcher exit code {result['launcher_exit_code']}; restarts "
             f"{result['restarts'] or 'none'}; every killed node restarted: "
             f"{result['all_restarted']}; gave up on a node: {result['gave_up']}.", '',
             '| minute | node killed | restarted | longest gap without cmd_vel (s) | learning lost |',
             '|---|---|---|---|---|']
    for k in result['kills']:
        lost = ', '.join(f'{key.removesuffix("_lost")} {v:g}' for key, v in k.items()
                         if key.endswith('_lost')) or '-'
        lines.append(f"| {k['minute']:.1f} | {k['node']} | {k['restarted']} | "
                     f"{k['cmd_vel_gap_s']:.2f} | {lost} |")
    lv, pv = result['learner_versions'], result['policy_versions']
    lines += ['', f"Learner shipped v{lv['first']} to v{lv['last']}, decreasing "
              f"{lv['decreases']} times. The policy applied v{pv['first']} to v{pv['last']}, "
              f"decreasing {pv['decreases']} times across {pv['policy_restarts']} policy "
              'restarts (a restarted policy starts from its checkpoint, then takes the newest).',
              '', '| node | memory slope after settling (MB/min) | flat (< 0.5) | lifetimes fitted |',
              '|---|---|---|---|']
    for name, m in result['memory'].items():
        lines.append(f"| {name} | {m['slope_mb_per_min']:.3f} | {m['flat']} | "
                     f"{len(m['lifetimes'])} |")
    lines += ['', '![memory](memory.png)', '']
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--kill-min', type=float, default=120.0, help='seconds (0: no kills)')
    parser.add_argument('--kill-max', type=float, default=240.0, help='seconds (0: no kills)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--domain-id', type=int, default=101,
                        help='ROS domain (tests take 1-100)')
    parser.add_argument('--checkpoint-period', type=float, default=300.0,
                        help="learner_node's checkpoint_period (s)")
    parser.add_argument('--out', type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.minutes, args.kill_min, args.kill_max, args.seed, args.out,
                 args.domain_id, args.checkpoint_period)
    print(summary(result))
    return result


if __name__ == '__main__':
    main()
