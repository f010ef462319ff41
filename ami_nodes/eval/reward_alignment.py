"""Does an intrinsic reward pay for exploring? A diagnostic for issue 9, in one process.

A sticky random walker (policy_node's `sticky`: a uniformly random action held 0.25-2 s)
drives a world while `OnlinePerception` trains as the harness trains it (every 4th frame).
At the end of each hold every candidate reward is computed on the features, as the learner
would for `held_sample` (one step per hold), beside the ground truth of what the hold did for
exploration: the cells it visited first and the distance it moved. If a reward does not
rank the holds that explore above the others, no amount of policy learning on it can beat
the random walker, so this is measured before tuning the learner.

Candidates:
- `knn_end`: the learner's `knn` novelty of the hold's last frame (EpisodicNovelty, k = 10,
  every earlier hold end remembered);
- `view_change`: the squared feature distance between the hold's first and last frame;
- `path_change`: the sum of the per-frame squared feature changes along the hold;
- `place_novelty`: the PlaceNovelty bonus of the cells the hold entered, on a position
  dead-reckoned from the world's body-frame velocity (what odometry or VRChat's velocity
  parameters report), not from the features;
- `odometry_distance`: the path length of the hold from the same velocities.

    python -m ami_nodes.eval.reward_alignment --seeds 0 1 2 --minutes 10 --out DIR
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from ami_nodes.action_space import ACTION_DIMS, HEAD_NAMES, VelocityLimits
from ami_nodes.eval.harness import HELD_OUT_SEEDS, STICKY_MAX_S, STICKY_MIN_S
from ami_nodes.eval.perception_probe import drive
from ami_nodes.learning.head_bandit import ContextualHeadBandit, HeadBandit
from ami_nodes.learning.holds import Hold, uniform_action
from ami_nodes.learning.novelty import EpisodicNovelty
from ami_nodes.learning.place_novelty import PlaceNovelty
from ami_nodes.odometry import DeadReckoning
from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig
from ami_nodes.world.sim import World, WorldConfig

REWARDS = ('knn_end', 'view_change', 'path_change', 'place_novelty', 'odometry_distance')
PERCEPTION_TRAIN_EVERY = 4   # as the harness
LATE_HOLDS = 100   # what a bandit does at the end: its choices over this many last holds
#: (name, move head value or None for any, run head value or None) of the action groups reported
GROUPS = (('forward, running', 1, 1), ('forward, walking', 1, 0), ('back', 2, None), ('no move', 0, None))


def record_holds(seed: int, minutes: float, layout: str = 'rooms', fps: float = 20.0,
                 bandit_reward: str | None = None, plausible_z: float | None = None,
                 contextual: bool = False) -> dict[str, np.ndarray]:
    """One sticky run; per finished hold: its action, each candidate's raw reward, the cells
    it visited first and the straight-line distance it moved. With `bandit_reward` (one of
    REWARDS or 'oracle', the new cells) each hold's action comes from a HeadBandit (with
    `plausible_z`, its plausible-set rule; with `contextual`, a ContextualHeadBandit on the
    features the hold began with) learning from that reward instead of uniformly at random."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    world = World(WorldConfig(seed=seed, layout=layout, fps=fps))
    perception = OnlinePerception(OnlinePerceptionConfig(train_every=PERCEPTION_TRAIN_EVERY, seed=seed))
    image_size = perception.config.image_size
    hold, limits = Hold(rng, STICKY_MIN_S, STICKY_MAX_S), VelocityLimits()   # with uniform choices: sticky
    if contextual:
        bandit = ContextualHeadBandit(rng, perception.config.feature_dim)
    else:
        bandit = HeadBandit(rng, plausible_z=plausible_z) if bandit_reward else None

    def choose(features: np.ndarray) -> tuple[int, ...]:
        if bandit is None:
            return uniform_action(rng)
        return bandit.act(features) if contextual else bandit.act()

    knn = EpisodicNovelty(perception.config.feature_dim)
    odometry, places = DeadReckoning(), PlaceNovelty()
    place, travelled = 0.0, 0.0   # along the hold under way
    rows: dict[str, list] = {name: [] for name in (*REWARDS, 'action', 'new_cells', 'distance')}
    action, previous, start = None, None, None   # start: (features, cells, pose) when the hold began
    path = 0.0
    for _ in range(int(round(minutes * 60.0 * fps))):
        frame = cv2.resize(world.render(), (image_size, image_size), interpolation=cv2.INTER_AREA)
        features = perception.step(frame, action).features
        path += 0.0 if previous is None else float(np.mean((features - previous) ** 2))
        previous = features
        stamp_ns = round(world.time * 1e9)
        if start is not None and not 0 <= stamp_ns - hold.hold_start_ns < hold.hold_ns:   # the hold ends here
            first_features, cells, pose = start
            rows['knn_end'].append(float(knn.raw(features[None])[0]))
            rows['view_change'].append(float(np.mean((features - first_features) ** 2)))
            rows['path_change'].append(path)
            rows['place_novelty'].append(place)
            rows['odometry_distance'].append(travelled)
            rows['action'].append(action)
            rows['new_cells'].append(len(world.cells_visited) - cells)
            rows['distance'].append(float(np.hypot(world.pose.x - pose.x, world.pose.y - pose.y)))
            if bandit is not None:
                bandit.update(action, rows['new_cells' if bandit_reward == 'oracle' else bandit_reward][-1])
        next_action, began = hold(stamp_ns, lambda f=features: choose(f))
        if began:
            start, path, place, travelled = (features, len(world.cells_visited), world.pose), 0.0, 0.0, 0.0
        action = next_action
        drive(world, action, limits)
        world.step(1.0 / fps)
        odometry.step(*world.velocity, 1.0 / fps)
        place += places.observe(odometry.x, odometry.y)
        travelled += float(np.hypot(world.velocity.forward, world.velocity.left)) / fps
    out = {name: np.asarray(values, dtype=np.float64) for name, values in rows.items() if name != 'action'}
    out['action'] = np.asarray(rows['action'], dtype=np.int64)
    out['coverage'] = np.asarray(world.coverage())
    if bandit is not None and not contextual:
        out['bandit_probabilities'] = np.concatenate(bandit.probabilities())
    return out


def alignment(holds: dict[str, np.ndarray]) -> dict:
    """Each candidate's correlation with the hold's new cells and distance, and its mean
    standardised value per action group beside the group's new cells and distance."""
    actions = holds['action']
    groups = {}
    for name, move, run in GROUPS:
        mask = _mask(actions, move, run)
        groups[name] = {'holds': int(mask.sum()),
                        'new_cells_mean': float(holds['new_cells'][mask].mean()) if mask.any() else None,
                        'distance_mean': float(holds['distance'][mask].mean()) if mask.any() else None}
    rewards = {}
    for name in REWARDS:
        values = holds[name]
        z = (values - values.mean()) / (values.std() + 1e-12)
        rewards[name] = {
            'corr_new_cells': float(np.corrcoef(values, holds['new_cells'])[0, 1]),
            'corr_found_any': float(np.corrcoef(values, holds['new_cells'] > 0)[0, 1]),
            'corr_distance': float(np.corrcoef(values, holds['distance'])[0, 1]),
            'group_z': {group: float(z[_mask(actions, move, run)].mean()) if _mask(actions, move, run).any() else None
                        for group, move, run in GROUPS},
        }
    return {'holds': len(actions), 'holds_finding_cells': float((holds['new_cells'] > 0).mean()),
            'coverage': float(holds['coverage']), 'groups': groups, 'rewards': rewards}


def _mask(actions: np.ndarray, move: int, run: int | None) -> np.ndarray:
    """Holds whose move head is `move` and, unless None, whose run head is `run`."""
    mask = actions[:, 0] == move
    return mask if run is None else mask & (actions[:, 4] == run)


def summary_markdown(report: dict) -> str:
    bandit = 'ContextualHeadBandit' if report.get('contextual') else 'HeadBandit'
    walker = f'a {bandit} learning from `{report["bandit"]}`' if report.get('bandit') else 'sticky random holds'
    lines = ['# Does the intrinsic reward pay for exploring?', '', f'Command: `{report["command"]}`', '',
             f'Per world seed, under {walker}: the coverage reached, and the correlation of each candidate '
             'hold reward with the cells the hold visited first and with the distance it moved.', '',
             '| seed | coverage | holds | holds finding cells | '
             + ' | '.join(f'{r}: corr cells / distance' for r in REWARDS) + ' |',
             '|---|---|---|---|' + '---|' * len(REWARDS)]
    for seed, result in report['per_seed'].items():
        corr = result['rewards']
        cells = ' | '.join(f'{corr[r]["corr_new_cells"]:+.3f} / {corr[r]["corr_distance"]:+.3f}' for r in REWARDS)
        lines.append(f'| {seed} | {result["coverage"]:.3f} | {result["holds"]} | '
                     f'{result["holds_finding_cells"]:.3f} | {cells} |')
    lines += ['', 'Per action group (all seeds pooled by mean): new cells and distance per hold, and each '
              "candidate's mean standardised value (how far above the average hold it pays that group).", '',
              '| group | new cells | distance (cells) | ' + ' | '.join(REWARDS) + ' |',
              '|---|---|---|' + '---|' * len(REWARDS)]
    for group, *_ in GROUPS:
        per_seed = report['per_seed'].values()
        cells = np.mean([r['groups'][group]['new_cells_mean'] or 0.0 for r in per_seed])
        distance = np.mean([r['groups'][group]['distance_mean'] or 0.0 for r in per_seed])
        z = ' | '.join(f'{np.mean([r["rewards"][name]["group_z"][group] or 0.0 for r in per_seed]):+.2f}'
                       for name in REWARDS)
        lines.append(f'| {group} | {cells:.2f} | {distance:.2f} | {z} |')
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--minutes', type=float, default=10.0)
    parser.add_argument('--layout', default='rooms')
    parser.add_argument('--out', type=Path, default=Path('bench/results/exploration_reward_alignment'))
    parser.add_argument('--bandit', choices=('oracle', *REWARDS),
                        help="choose each hold's action with a HeadBandit learning from this reward "
                             "('oracle': the cells the hold found first) instead of uniformly")
    parser.add_argument('--plausible-z', type=float,
                        help='the bandit acts uniformly among choices within z standard errors of the best '
                             '(default: Thompson sampling)')
    parser.add_argument('--contextual', action='store_true',
                        help='the bandit is a ContextualHeadBandit on the features the hold began with')
    parser.add_argument('--held-out', action='store_true', help=f'allow world seeds >= {HELD_OUT_SEEDS}')
    args = parser.parse_args(argv)
    if args.contextual and not args.bandit:
        parser.error('--contextual needs --bandit')
    if not args.held_out and any(seed >= HELD_OUT_SEEDS for seed in args.seeds):
        parser.error(f'world seeds >= {HELD_OUT_SEEDS} are kept for evaluations nobody tunes on (--held-out)')
    command = 'python -m ami_nodes.eval.reward_alignment ' + ' '.join(argv if argv is not None else sys.argv[1:])
    report: dict = {'command': command, 'minutes': args.minutes, 'layout': args.layout, 'bandit': args.bandit,
                    'plausible_z': args.plausible_z, 'contextual': args.contextual, 'per_seed': {}}
    for seed in args.seeds:
        holds = record_holds(seed, args.minutes, args.layout, bandit_reward=args.bandit, plausible_z=args.plausible_z,
                             contextual=args.contextual)
        report['per_seed'][str(seed)] = result = alignment(holds)
        if args.bandit:
            late = holds['action'][-LATE_HOLDS:]
            result['late_action_shares'] = {
                name: (np.bincount(late[:, head], minlength=size) / len(late)).round(3).tolist()
                for head, (name, size) in enumerate(zip(HEAD_NAMES, ACTION_DIMS))}
        if 'bandit_probabilities' in holds:
            result['bandit_probabilities'] = {name: [round(float(p), 3) for p in probabilities] for name, probabilities
                                              in zip(HEAD_NAMES, np.split(holds['bandit_probabilities'],
                                                                          np.cumsum(ACTION_DIMS)[:-1]))}
        print(f'seed {seed}: {result["holds"]} holds, coverage {result["coverage"]:.3f}, knn_end corr with new cells '
              f'{result["rewards"]["knn_end"]["corr_new_cells"]:+.3f}', file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'results.json').write_text(json.dumps(report, indent=2))
    (args.out / 'summary.md').write_text(summary_markdown(report))
    return report


if __name__ == '__main__':
    main()
