"""Seed 003's claim downstream: does an online-trained encoder make the policy learn a task faster?

Runs the real system (world + five ROS nodes via ami_launch) with config/ami_target.yaml (the
touch-the-target task, extrinsic reward on, learnt by branching_q) once per world seed and
encoder mode: `online` (perception trains, the default) and `frozen` (the same encoder, same
seed, never trained: perception_node `train_online: false`). The world's ground truth (`/state`:
touches) is sampled every 5 s; reward per minute over the window is (touches at the end - at the
start) x reward_scale / window length. Each run's last checkpoint says how much perception
trained (frames, training steps) and what the learner did (decisions, updates, chain breaks).

    python -m ami_nodes.eval.downstream --seeds 0 1 2 --minutes 15 --window 5 15 --targets 8 \\
        --out bench/results/downstream

`--learner ppo` runs the earlier learner instead (curiosity-driven PPO, acting per tick).
`--side-by-side` runs a seed's two modes at once in two ROS domains. `--harness` runs the same
protocol in the in-process harness (ami_nodes.eval.harness, simulated time, no ROS) with the
task config's layout and learner weights: fast evidence to rank settings, not the live system's.
There branching_q decides every `--decision-ticks` ticks; `--q-replay` says whether its replay
keeps frames (encoded when drawn, by the encoder as it is then) or features. `--perception
NAME=VALUE` sets perception settings over the task config's (e.g. `ema_decay=0.999`), `--modes`
runs only some encoders. `--combine DIR...` pools earlier runs' results (distinct seeds, the same
protocol; each encoder's runs may come from other directories) into one report, runs nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from ami_nodes import system
from ami_nodes.eval import harness
from ami_nodes.eval.curiosity_coverage import mean_and_interval
from ami_nodes.eval.live import LiveRun
from ami_nodes.eval.perception_probe import perception_settings
from ami_nodes.persistence import PersistenceError, latest_checkpoint, load_part
from ami_nodes.tools.launch_config import write_config

MODES = {'online': True, 'frozen': False}
TASK_CONFIG = 'ami_target.yaml'
LEARNERS = ('branching_q', 'ppo')
#: What `--learner ppo` changes in the task config: the earlier learner, acting per tick.
PPO_OVERRIDES = {'/**': {'algorithm': 'ppo'}, 'policy_node': {'action_mode': 'sample'}}
LINE_STYLES = ('-', '--', ':', '-.')


def task_config(workdir: Path, mode: str, seed: int, targets: int, learner: dict | None = None,
                algorithm: str = 'branching_q', perception: dict | None = None) -> Path:
    """The task config of one run (free ports), written to `workdir`/ami.yaml."""
    workdir.mkdir(parents=True, exist_ok=True)
    overrides = {'ami_world': {'seed': seed, 'targets': targets},
                 'perception_node': {**(perception or {}), 'train_online': MODES[mode]},
                 'learner_node': learner or {}}
    for section, values in (PPO_OVERRIDES if algorithm == 'ppo' else {}).items():
        overrides[section] = {**overrides.get(section, {}), **values}
    return write_config(workdir / 'ami.yaml', overrides, base=system.share_dir() / 'config' / TASK_CONFIG)


def run_one(mode: str, seed: int, minutes: float, targets: int, workdir: Path, domain_id: int,
            learner: dict | None = None, algorithm: str = 'branching_q', perception: dict | None = None) -> dict:
    """One run of the whole system in ROS domain `domain_id`; (seconds, touches) every
    SAMPLE_PERIOD_S from the world. `learner`, `perception`: learner_node and perception_node
    parameters over the task config's."""
    config = task_config(workdir, mode, seed, targets, learner, algorithm, perception)
    scale = yaml.safe_load(config.read_text())['osc_bridge_node']['ros__parameters']['reward_scale']
    curve: list[tuple[float, float]] = []
    started: float | None = None
    with LiveRun(config, workdir, f'{mode} seed {seed}', domain_id) as run:
        for state in run.samples():  # from the world's first answer, `minutes` of wall time
            started = started if started is not None else time.monotonic()
            elapsed = time.monotonic() - started
            curve.append((elapsed, state['touches'] * scale))
            # one write per line: side by side, two runs print at once
            sys.stdout.write(f'[{mode} seed {seed}] {elapsed:5.0f} s reward {curve[-1][1]:g}\n')
            sys.stdout.flush()
            if elapsed >= minutes * 60.0:
                break
    code = run.exit_code
    return {'mode': mode, 'seed': seed, 'exit_code': code, 'cumulative_reward': curve,
            'final_checkpoint': checkpoint_facts(workdir / 'checkpoints')}


def checkpoint_facts(checkpoints: Path) -> dict:
    """What the run's last checkpoint (the final save at exit) says perception and the learner
    did; empty when there is none."""
    checkpoint = latest_checkpoint(checkpoints)
    if checkpoint is None:
        return {}
    try:
        perception = load_part(checkpoint, 'perception_node').trainers['online']['counters']
        learner = load_part(checkpoint, system.LEARNER)
    except (PersistenceError, KeyError) as error:
        return {'error': str(error)}
    facts = {'checkpoint': checkpoint.name, 'perception_frames': int(perception['frames']),
             'perception_train_steps': int(perception['train_steps']),
             'learner_updates': int(learner.interaction['learner']['updates'])}
    if 'branching_q' in learner.trainers:
        q = learner.trainers['branching_q']
        facts.update({f'q_{k}': int(v) for k, v in q['q']['counters'].items()},
                     **{k: int(v) for k, v in q['counters'].items()})
    return facts


def run_in_harness(mode: str, seed: int, minutes: float, targets: int, learner: dict | None = None,
                   policy: str = 'curious', decision_ticks: int = 1,
                   q_replay: str = harness.HarnessConfig.q_replay, perception: dict | None = None) -> dict:
    """The same run in the in-process harness: the task config's world layout, learner reward
    weights and reward scale; simulated time. `policy` is the harness's learner (`curious`:
    PPO; `branching_q`, whose replay keeps `q_replay`), deciding every `decision_ticks` ticks;
    `perception`: settings over the harness's perception."""
    from ami_nodes.learning.learner import LearnerConfig
    task = yaml.safe_load((system.share_dir() / 'config' / TASK_CONFIG).read_text())
    weights = task['learner_node']['ros__parameters'] | (learner or {})
    result = harness.run(harness.HarnessConfig(
        policy=policy, seed=seed, minutes=minutes, targets=targets, train_perception=MODES[mode],
        action_repeat=decision_ticks, q_replay=q_replay, perception=perception or {},
        layout=task[system.WORLD_SECTION]['ros__parameters']['layout'],
        learner=LearnerConfig(**{k: weights[k] for k in ('intrinsic_weight', 'extrinsic_weight', 'intrinsic_reward')})))
    scale = task['osc_bridge_node']['ros__parameters']['reward_scale']
    print(f"[{mode} seed {seed}] {result['touches']} touches ({result['wall_s']:.0f} s)", flush=True)
    return {'mode': mode, 'seed': seed, 'exit_code': 0,
            'cumulative_reward': [(0.0, 0.0), *((t, n * scale) for t, n in result['touch_curve'])]}


def reward_per_minute(curve: list[tuple[float, float]], window: tuple[float, float]) -> float:
    """Reward gained between the window's minutes, per minute (linear in the 5 s samples)."""
    times, rewards = np.array([t for t, _ in curve]) / 60.0, np.array([r for _, r in curve])
    start, end = np.interp(window, times, rewards)
    return float((end - start) / (window[1] - window[0]))


def rewards_by_mode(runs: list[dict], window: tuple[float, float]) -> dict[str, list[float]]:
    """Each mode that ran: its reward per minute in the window, one value per run in the runs' order."""
    return {mode: [reward_per_minute(run['cumulative_reward'], window) for run in runs if run['mode'] == mode]
            for mode in MODES if any(run['mode'] == mode for run in runs)}


def plot(runs: list[dict], path: Path) -> None:
    """Cumulative reward against time: each run, and with more seeds than line styles each mode's
    mean over seeds (thick) over its runs (thin, unlabelled)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    seeds = sorted({run['seed'] for run in runs})
    many = len(seeds) > len(LINE_STYLES)
    colours = {'online': 'tab:blue', 'frozen': 'tab:grey'}
    for run in runs:  # colour: the encoder; line style: the world seed
        t = [s / 60.0 for s, _ in run['cumulative_reward']]
        r = [v for _, v in run['cumulative_reward']]
        if many:
            ax.plot(t, r, color=colours[run['mode']], linewidth=0.7, alpha=0.4)
        else:
            ax.plot(t, r, color=colours[run['mode']],
                    linestyle=LINE_STYLES[seeds.index(run['seed']) % len(LINE_STYLES)],
                    label=f"{run['mode']} seed {run['seed']}")
    if many:
        end = min(run['cumulative_reward'][-1][0] for run in runs)
        grid = np.linspace(0.0, end, 200)
        for mode, colour in colours.items():
            curves = [np.interp(grid, *np.array(run['cumulative_reward']).T) for run in runs
                      if run['mode'] == mode]
            if not curves:
                continue
            ax.plot(grid / 60.0, np.mean(curves, axis=0), color=colour, linewidth=2.5,
                    label=f'{mode}: mean of {len(curves)} seeds')
    ax.set_xlabel('minutes')
    ax.set_ylabel('cumulative reward (touches)')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


#: What runs pooled by `--combine` must share to be one experiment.
PROTOCOL_KEYS = ('smoke', 'harness', 'learner', 'q_replay', 'window_minutes', 'minutes', 'targets',
                 'learner_overrides')
#: Per encoder mode ({mode: {setting: value}}): one mode's pooled runs must share it, the two may differ.
PERCEPTION_KEY = 'perception_overrides'


def combine_source(text: str) -> tuple[Path, tuple[str, ...]]:
    """`DIR` (all its runs) or `DIR:MODE` (only that encoder's runs)."""
    directory, _, mode = text.rpartition(':')
    return (Path(directory), (mode,)) if mode in MODES and directory else (Path(text), tuple(MODES))


def combine(sources: list[str]) -> dict:
    """One report from the results.json of several runs of the same protocol: the runs side by
    side, each source's command kept, reward per minute recomputed from the runs. A source
    `DIR:MODE` gives only that encoder's runs, so one mode's runs may come from another experiment
    with other perception overrides (the frozen runs of one against the online runs of another),
    but one mode never repeats a seed or mixes overrides; the seeds both modes ran are kept, paired."""
    parsed = [combine_source(source) for source in sources]
    directories = [directory for directory, _ in parsed]
    reports = [json.loads((directory / 'results.json').read_text()) for directory in directories]
    for report, (_, taken) in zip(reports, parsed):
        report['runs'] = [run for run in report['runs'] if run['mode'] in taken]
    for key in PROTOCOL_KEYS:
        values = {json.dumps(report.get(key)) for report in reports}
        if len(values) > 1:
            raise ValueError(f'cannot combine runs whose {key} differ: {sorted(values)}')
    seeds_of: dict[str, list[int]] = {}
    overrides: dict[str, dict] = {}
    for mode in MODES:
        ran = [report for report in reports if any(run['mode'] == mode for run in report['runs'])]
        seeds_of[mode] = [run['seed'] for report in ran for run in report['runs'] if run['mode'] == mode]
        if len(set(seeds_of[mode])) < len(seeds_of[mode]):
            raise ValueError(f'cannot combine {mode} runs that repeat a seed: {seeds_of[mode]}')
        settings = {json.dumps(report.get(PERCEPTION_KEY, {}).get(mode, {}), sort_keys=True) for report in ran}
        if len(settings) > 1:
            raise ValueError(f'cannot combine {mode} runs whose {PERCEPTION_KEY} differ: {sorted(settings)}')
        overrides[mode] = json.loads(settings.pop()) if settings else {}
    seeds = sorted(set.intersection(*(set(seeds) for seeds in seeds_of.values())))
    all_seeds = {seed for mode_seeds in seeds_of.values() for seed in mode_seeds}
    runs = sorted((run for report in reports for run in report['runs'] if run['seed'] in seeds),
                  key=lambda run: (run['seed'], list(MODES).index(run['mode'])))
    window = tuple(reports[0]['window_minutes'])
    return {**{key: reports[0][key] for key in PROTOCOL_KEYS if key in reports[0]}, 'seeds': seeds,
            **({PERCEPTION_KEY: overrides} if any(overrides.values()) else {}),
            **({'unpaired_seeds_left_out': sorted(all_seeds - set(seeds))} if all_seeds - set(seeds) else {}),
            'sources': [{'directory': source, 'command': report['command']}
                        for source, report in zip(sources, reports)],
            'reward_per_minute': rewards_by_mode(runs, window), 'runs': runs}


def summary_markdown(report: dict) -> str:
    """Reward per minute in the window: each mode's mean, 95 % interval and per-seed values."""
    lo, hi = report['window_minutes']
    lines = ['# Downstream: online-trained vs frozen encoder' + (' (smoke test)' if report['smoke']
                                                                  else ''), '',
             *(['**In-process harness (simulated time, no ROS): not the live system.**', '']
               if report.get('harness') else []),
             f"Command: `{report['command']}`", '',
             *([f"Pools {len(report['sources'])} earlier results:", '',
                *(f"- `{source['directory']}`: `{source['command']}`" for source in report['sources']), '']
               if report.get('sources') else []),
             f"World seeds {report['seeds']}, {report['minutes']:g} min each; reward per minute "
             f'over minutes {lo:g}-{hi:g} (touches x reward_scale).'
             + (f" learner_node over config/ami_target.yaml: {report['learner_overrides']}."
                if report.get('learner_overrides') else '')
             + (f" Learner: {report['learner']}, its replay keeping {report['q_replay']}."
                if 'q_replay' in report else '')
             + ''.join(f' perception_node for {mode}: {values}.'
                       for mode, values in report.get(PERCEPTION_KEY, {}).items() if values)
             + (f" Seeds run by one encoder only, left out: {report['unpaired_seeds_left_out']}."
                if report.get('unpaired_seeds_left_out') else ''), '',
             '| encoder | mean | 95 % interval | per seed |', '|---|---|---|---|']
    rewards = report['reward_per_minute']
    for mode, values in rewards.items():
        mean, half = mean_and_interval(values)
        lines.append(f"| {mode} | {mean:.3f} | ±{half:.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    if all(mode in rewards for mode in MODES):
        online, frozen = (rewards[mode] for mode in MODES)
        mean, half = mean_and_interval([a - b for a, b in zip(online, frozen)])
        lines += ['', f'Paired difference online - frozen: {mean:+.3f} ± {half:.3f} (95 % t interval); '
                  f'online ahead on {sum(a > b for a, b in zip(online, frozen))} of {len(online)} seeds.']
    lines += ['', '![cumulative reward](reward.png)', '']
    facts = [(run, run['final_checkpoint']) for run in report.get('runs', []) if run.get('final_checkpoint')]
    if facts:   # what each live run's final checkpoint says it did
        lines += ['| run | exit | frames trained by perception | learner updates | decisions | '
                  'decisions without a frame | chain breaks |', '|---|---|---|---|---|---|---|']
        for run, fact in facts:
            trained = fact.get('perception_train_steps', 0) / max(fact.get('perception_frames', 1), 1)
            lines.append(f"| {run['mode']} seed {run['seed']} | {run['exit_code']} | "
                         f"{fact.get('perception_train_steps', '-')} of {fact.get('perception_frames', '-')} "
                         f"({trained:.1%}) | {fact.get('learner_updates', '-')} | {fact.get('q_decisions', '-')} | "
                         f"{fact.get('missing_observations', '-')} | {fact.get('chain_breaks', '-')} |")
        lines.append('')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='world seeds (0-9)')
    parser.add_argument('--minutes', type=float, default=15.0)
    parser.add_argument('--window', type=float, nargs=2, default=[5.0, 15.0], metavar=('FROM', 'TO'))
    parser.add_argument('--targets', type=int, default=1,
                        help='targets at once in the world (more: a denser task; bench.target_touch_rate)')
    parser.add_argument('--intrinsic-weight', type=float,
                        help="learner_node's curiosity weight (default: the task config's); 0 trains "
                             'the learner on the task reward alone')
    parser.add_argument('--out', type=Path, default=Path('bench/results/downstream'))
    parser.add_argument('--smoke', action='store_true', help='label the results a smoke test, not evidence')
    parser.add_argument('--side-by-side', action='store_true',
                        help="run a seed's two modes at once, each in its own ROS domain: half "
                             'the wall time, and both modes share the same CPU contention')
    parser.add_argument('--harness', action='store_true',
                        help='run in the in-process harness (simulated time, no ROS), not the live system')
    parser.add_argument('--learner', choices=LEARNERS, default=LEARNERS[0],
                        help='branching_q: factored Q-learning from replay, as the task config ships; '
                             'ppo: curiosity-driven PPO acting per tick')
    parser.add_argument('--decision-ticks', type=int, default=5,
                        help='harness, branching_q: ticks between decisions (5 = 0.25 s at 20 Hz)')
    parser.add_argument('--q-replay', choices=harness.Q_REPLAYS, default=harness.HarnessConfig.q_replay,
                        help='harness, branching_q: what the replay keeps (frames: encoded when drawn)')
    parser.add_argument('--domain', type=int, default=int(os.environ.get('ROS_DOMAIN_ID', 0)),
                        help='ROS domain of the first run (side by side: and the next)')
    parser.add_argument('--modes', choices=list(MODES), nargs='+', default=list(MODES),
                        help='encoders to run (one alone is paired later with --combine)')
    parser.add_argument('--perception', action='append', default=[], metavar='NAME=VALUE',
                        help='a perception_node setting over the task config (repeatable), e.g. ema_decay=0.999')
    parser.add_argument('--combine', nargs='+', metavar='DIR[:MODE]',
                        help="pool these directories' results.json (distinct seeds per encoder, one "
                             'protocol; DIR:online or DIR:frozen takes one encoder\'s runs) into --out; '
                             'runs nothing')
    args = parser.parse_args(argv)
    command = 'python -m ami_nodes.eval.downstream ' + ' '.join(argv if argv is not None else sys.argv[1:])
    if args.combine:
        try:
            report = {'command': command, **combine(args.combine)}
        except (OSError, ValueError, KeyError) as error:
            parser.error(str(error))
        return write_report(report, args.out)
    if not 0 <= args.window[0] < args.window[1] <= args.minutes:
        parser.error('--window must lie within [0, --minutes]')
    policy, decision_ticks = ('curious', 1) if args.learner == 'ppo' else ('branching_q', args.decision_ticks)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    learner = {} if args.intrinsic_weight is None else {'intrinsic_weight': args.intrinsic_weight}
    perception = perception_settings(args.perception)
    modes = [mode for mode in MODES if mode in args.modes]
    for seed in args.seeds:
        if args.harness:
            with ProcessPoolExecutor(len(modes) if args.side_by_side else 1) as pool:
                futures = [pool.submit(run_in_harness, mode, seed, args.minutes, args.targets, learner,
                                       policy, decision_ticks, args.q_replay, perception) for mode in modes]
                runs += [future.result() for future in futures]
            continue
        jobs = [(mode, seed, args.minutes, args.targets, args.out / f'{mode}_seed{seed}',
                 args.domain + (i if args.side_by_side else 0), learner, args.learner, perception)
                for i, mode in enumerate(modes)]
        if args.side_by_side:
            with ThreadPoolExecutor(len(jobs)) as pool:
                runs += list(pool.map(lambda job: run_one(*job), jobs))
        else:
            runs += [run_one(*job) for job in jobs]
    report = {
        'command': command,
        'smoke': args.smoke, 'harness': args.harness, 'learner': args.learner,
        **({'q_replay': args.q_replay} if args.learner == 'branching_q' else {}),
        'seeds': args.seeds, 'window_minutes': args.window, 'minutes': args.minutes, 'targets': args.targets,
        'learner_overrides': learner,
        **({PERCEPTION_KEY: {mode: perception for mode in modes}} if perception else {}),
        'reward_per_minute': rewards_by_mode(runs, tuple(args.window)),
        'runs': runs,
    }
    return write_report(report, args.out)


def write_report(report: dict, out: Path) -> dict:
    """results.json, summary.md and reward.png in `out`; the headline on stdout."""
    out.mkdir(parents=True, exist_ok=True)
    (out / 'results.json').write_text(json.dumps(report, indent=2))
    (out / 'summary.md').write_text(summary_markdown(report))
    plot(report['runs'], out / 'reward.png')
    print(json.dumps({k: report[k] for k in ('smoke', 'seeds', 'window_minutes', 'reward_per_minute')}))
    return report


if __name__ == '__main__':
    main()
