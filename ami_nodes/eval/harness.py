"""The live system's core modules in one process, no ROS: fast iteration on exploration.

Per tick of simulated time (1/fps s): the world renders, the frame is resized as camera_node
does, the online perception encoder encodes (and trains every `perception_train_every`
frames), the policy acts, the action becomes cmd_vel and VRChat inputs as the OSC bridge maps
them, and the world steps. Experience goes through the learner's `ExperienceBuffer` into
`CuriosityPPOLearner`, which trains as soon as it is ready and is acted with at once (policy
lag 0). `branching_q` is a candidate learner for the target task (learning/branching_q.py):
one decision every `action_repeat` ticks, paid the touches since the last, trained from replay
after each; it explores with held random actions, as the sticky walker does. Its replay keeps
the frames and re-encodes each batch with the current encoder (`q_replay='frames'`), or keeps
the features as they were published (`'features'`). The random
baselines need no features: they skip perception and learning, which do not change where the
agent goes. `place_bandit` is policy_node's `held_bandit` (PlaceBandit fed the world's
body-frame velocity, as measured_velocity carries it live); it needs no features either.

What differs from the live system: no JPEG round trip; a fixed perception training period
instead of the wall-clock budget; no policy lag; time is simulated, so nothing is ever late.
Its numbers rank candidates; the evidence for the issue comes from the live system.

    nice -n 10 python -m ami_nodes.eval.harness --policies curious uniform sticky --seeds 0 1 2 \\
        --minutes 10 --layout rooms --out /tmp/harness.json
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ami_nodes.action_space import ACTION_DIMS, HEAD_CHOICES, HEAD_NAMES, VelocityLimits, action_to_velocity
from ami_nodes.actuation.vrchat_osc import velocity_to_inputs
from ami_nodes.learning.branching_q import BranchingQConfig, BranchingQLearner
from ami_nodes.learning.experience import ExperienceBuffer, Transition
from ami_nodes.learning.holds import Hold, StickyRandom, uniform_action
from ami_nodes.learning.learner import INTRINSIC_REWARDS, CuriosityPPOLearner, LearnerConfig
from ami_nodes.learning.place_novelty import PlaceBandit
from ami_nodes.learning.ppo import PPOConfig
from ami_nodes.perception.online import FROZEN_TRAIN_EVERY, OnlinePerception, OnlinePerceptionConfig
from ami_nodes.settings import assign
from ami_nodes.world.layout import LAYOUTS
from ami_nodes.world.sim import World, WorldConfig

POLICIES = ('curious', 'branching_q', 'uniform', 'sticky', 'forward_sticky', 'place_bandit')
Q_REPLAYS = ('frames', 'features')
#: forward_sticky, a hand-written reference (harness only): sticky whose move head is forward
#: this often, always running, never jumping; what a learnt action preference alone could reach
FORWARD_SHARE = 0.8
# policy_node's sticky_min_s and sticky_max_s defaults (learning/actor.py holds the semantics)
STICKY_MIN_S, STICKY_MAX_S = 0.25, 2.0
REPORT_MINUTES = (2.0, 5.0, 10.0, 15.0)
HELD_OUT_SEEDS = 100           # world seeds from here on are for evaluations nobody tunes on
CURVE_PERIOD_S = 5.0
ACTION_SHARE_MINUTES = 2.0
LEARNER_STATS = ('entropy', 'prediction_error_mean', 'version', 'novelty_mean', 'extrinsic_reward_mean')


@dataclass
class HarnessConfig:
    """One run: a policy on one world for `minutes` of simulated time."""

    policy: str = 'curious'
    seed: int = 0
    minutes: float = 10.0
    layout: str = 'rooms'
    noisy_tv: bool = False
    fps: float = 20.0
    image_size: int = 84
    perception_train_every: int = 4
    action_repeat: int = 1     # curious and branching_q decide every this many ticks (live acts every tick)
    hold_s: tuple[float, float] | None = None  # curious: hold each decision as policy_node's held_sample does
    rollout_length: int = 128
    # curious: the extrinsic reward of a step is the free cells it visited first, from the world's
    # ground truth; an upper bound on what the learner can do with a reward that pays for coverage
    oracle_reward: bool = False
    # the extrinsic task (issue 10's downstream test): this many targets at once, 0 = off; with
    # it on, the curious learner's extrinsic reward of a step is the targets it touched
    targets: int = 0
    train_perception: bool = True   # False: the encoder stays at its random init (downstream's `frozen`)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    branching_q: BranchingQConfig = field(default_factory=BranchingQConfig)
    q_replay: str = 'frames'   # branching_q's replay: 'frames' (encoded when drawn) or 'features' (as published)
    perception: dict = field(default_factory=dict)   # perception settings over the defaults, by name (ema_decay, ...)


def run(config: HarnessConfig) -> dict:
    """Run one policy; returns coverage at REPORT_MINUTES, the coverage curve and costs."""
    if config.policy not in POLICIES:
        raise ValueError(f'policy is {config.policy!r}; expected one of {POLICIES}')
    torch.set_num_threads(1)   # one core, as each live node gets
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.oracle_reward and config.targets:
        raise ValueError('oracle_reward and targets both set the extrinsic reward: choose one')
    world = World(WorldConfig(seed=config.seed, layout=config.layout, noisy_tv=config.noisy_tv, fps=config.fps,
                              target=config.targets > 0, targets=max(config.targets, 1)))
    limits = VelocityLimits()
    curious = config.policy == 'curious'
    perception = learner = buffer = q_learner = None
    if config.policy in ('curious', 'branching_q'):
        perception_config = OnlinePerceptionConfig(
            image_size=config.image_size, seed=config.seed,
            train_every=config.perception_train_every if config.train_perception else FROZEN_TRAIN_EVERY)
        for name, value in config.perception.items():
            if not assign(name, value, perception_config, perception_config.aux):
                raise ValueError(f'perception has no setting {name!r}')
        perception = OnlinePerception(perception_config)
    if curious:
        learner = CuriosityPPOLearner(perception.config.feature_dim, ACTION_DIMS, config.learner)
        buffer = ExperienceBuffer(rollout_length=config.rollout_length)
    elif config.policy == 'branching_q':
        if config.q_replay not in Q_REPLAYS:
            raise ValueError(f'q_replay is {config.q_replay!r}; expected one of {Q_REPLAYS}')
        q_learner = BranchingQLearner(perception.config.feature_dim, ACTION_DIMS, config.branching_q, config.seed,
                                      encode=perception.encode_frames if config.q_replay == 'frames' else None)
    sticky = StickyRandom(rng, STICKY_MIN_S, STICKY_MAX_S)
    forward_sticky = Hold(rng, STICKY_MIN_S, STICKY_MAX_S)
    place_bandit = PlaceBandit(rng) if config.policy == 'place_bandit' else None
    held_bandit = Hold(rng, STICKY_MIN_S, STICKY_MAX_S)
    dt = 1.0 / config.fps
    ticks = int(round(config.minutes * 60.0 * config.fps))
    report_ticks = {int(round(m * 60.0 * config.fps)): m for m in REPORT_MINUTES if m <= config.minutes}
    curve, touch_curve, coverage_at, learner_stats = [], [], {}, []
    noisy_frames = 0
    late_actions = []   # what the policy does in the last ACTION_SHARE_MINUTES, to see what it learnt
    action: tuple[int, ...] | None = None
    hold = Hold(rng, *config.hold_s) if config.hold_s else None
    decisions = 0
    cells_at_decision = touches_at_decision = 0
    extrinsic_paid = 0.0
    q_observation: np.ndarray | None = None   # branching_q: what its replay keeps of its last decision
    touches_at: dict[str, int] = {}
    started = time.perf_counter()
    for tick in range(ticks):
        noisy_frames += world.noisy_tv_in_view()
        if perception is not None:
            frame = cv2.resize(world.render(), (config.image_size, config.image_size), interpolation=cv2.INTER_AREA)
            features = perception.step(frame, action).features
            stamp_ns = round(world.time * 1e9)
        if curious:
            if hold is not None:   # a new hold is a new decision
                result, decided = hold(stamp_ns, lambda f=features: learner.actor_critic.act(f))
            elif decided := tick % config.action_repeat == 0:
                result = learner.actor_critic.act(features)
            if decided:   # experience is one step per decision
                action = tuple(int(a) for a in result.action)
                decisions += 1
                found = len(world.cells_visited) - cells_at_decision   # during the previous step
                cells_at_decision += found
                touched = world.touches - touches_at_decision
                touches_at_decision += touched
                extrinsic = float(found) if config.oracle_reward else float(touched)
                extrinsic_paid += extrinsic
                buffer.add(Transition(seq=decisions, stamp_ns=stamp_ns,
                                      features=features, action=np.asarray(action), log_prob=result.log_prob,
                                      value=result.value, policy_version=learner.version,
                                      extrinsic_reward=extrinsic))
            while (rollout := buffer.pop()) is not None:
                learner.add(rollout)
                stats = learner.step()
                if stats is not None:
                    learner_stats.append({k: stats[k] for k in LEARNER_STATS if k in stats} | {'t': world.time})
        elif q_learner is not None:
            if tick % config.action_repeat == 0:
                touched = world.touches - touches_at_decision
                touches_at_decision += touched
                extrinsic_paid += touched
                observation = frame if config.q_replay == 'frames' else features
                if q_observation is not None:
                    q_learner.observe(q_observation, action, float(touched), observation)
                    if (loss := q_learner.train()) is not None and q_learner.decisions % 200 == 0:
                        learner_stats.append({'loss': loss, 'epsilon': q_learner.epsilon(), 't': world.time})
                action = q_learner.act(features, stamp_ns)
                q_observation = observation
                decisions += 1
        elif config.policy == 'sticky':
            action = sticky(round(world.time * 1e9))
        elif config.policy == 'forward_sticky':
            action = forward_sticky(round(world.time * 1e9), lambda: forward_running(rng))[0]
        elif place_bandit is not None:
            action = held_bandit(round(world.time * 1e9), place_bandit.choose)[0]
        else:
            action = uniform_action(rng)
        for address, value in velocity_to_inputs(action_to_velocity(action, limits), limits).items():
            world.apply_input(address, value)
        world.step(dt)
        if place_bandit is not None:
            place_bandit.observe_velocity(*world.velocity, round(world.time * 1e9))
        if ticks - tick <= ACTION_SHARE_MINUTES * 60.0 * config.fps:
            late_actions.append(action)
        if (tick + 1) % int(round(CURVE_PERIOD_S * config.fps)) == 0:
            curve.append((round(world.time, 3), world.coverage()))
            touch_curve.append((round(world.time, 3), world.touches))
        if tick + 1 in report_ticks:
            coverage_at[str(report_ticks[tick + 1])] = world.coverage()
            touches_at[str(report_ticks[tick + 1])] = world.touches
    return {
        'policy': config.policy, 'seed': config.seed, 'layout': config.layout, 'noisy_tv': config.noisy_tv,
        'minutes': config.minutes, 'free_cells': world.free_cell_count, 'coverage': world.coverage(),
        'coverage_at_minutes': coverage_at, 'curve': curve,
        'targets': config.targets, 'touches': world.touches, 'touches_at_minutes': touches_at,
        'touch_curve': touch_curve, 'extrinsic_reward_paid': extrinsic_paid,
        'perception_train_steps': perception.train_steps if perception is not None else 0,
        'noisy_tv_view_fraction': noisy_frames / max(ticks, 1),
        'updates': learner.version if learner is not None else q_learner.updates if q_learner is not None else 0,
        'last_entropy': learner_stats[-1].get('entropy') if learner_stats else None,
        'late_action_share': action_share(np.array(late_actions)),
        'learner': learner_stats[::max(1, len(learner_stats) // 20)],
        'wall_s': time.perf_counter() - started,
    }


def forward_running(rng: np.random.Generator) -> tuple[int, ...]:
    """A uniform action, then moving forward with probability FORWARD_SHARE, running, not jumping."""
    move, strafe, turn, _, _ = uniform_action(rng)
    return (1 if rng.random() < FORWARD_SHARE else move), strafe, turn, 0, 1


def action_share(actions: np.ndarray) -> dict[str, dict[str, float]]:
    """For each head, the fraction of ticks each of its choices was taken."""
    return {name: {choice: round(float(np.mean(actions[:, i] == c)), 3) for c, choice in enumerate(HEAD_CHOICES[name])}
            for i, name in enumerate(HEAD_NAMES)} if len(actions) else {}


def _learner_config(args: argparse.Namespace) -> LearnerConfig:
    weights = ({'intrinsic_weight': 0.0, 'extrinsic_weight': 1.0} if args.oracle_reward else
               {'intrinsic_weight': args.intrinsic_weight, 'extrinsic_weight': args.extrinsic_weight})
    return LearnerConfig(
        **weights, intrinsic_reward=args.reward, novelty_window=args.novelty_window,
        min_new_samples=args.min_new_samples,
        ppo=PPOConfig(entropy_coef=args.entropy_coef, learning_rate=args.learning_rate, epochs=args.epochs,
                      gamma=args.gamma))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--policies', nargs='+', choices=POLICIES, default=['curious', 'uniform', 'sticky'])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--minutes', type=float, default=10.0, help='simulated minutes per run')
    parser.add_argument('--layout', choices=LAYOUTS, default='rooms')
    parser.add_argument('--noisy-tv', action='store_true')
    parser.add_argument('--reward', choices=INTRINSIC_REWARDS, default=LearnerConfig.intrinsic_reward)
    parser.add_argument('--novelty-window', type=int, default=LearnerConfig.novelty_window)
    parser.add_argument('--entropy-coef', type=float, default=PPOConfig.entropy_coef)
    parser.add_argument('--learning-rate', type=float, default=PPOConfig.learning_rate)
    parser.add_argument('--epochs', type=int, default=PPOConfig.epochs)
    parser.add_argument('--gamma', type=float, default=PPOConfig.gamma, help='discount per step (per hold with --hold)')
    parser.add_argument('--rollout-length', type=int, default=128, help='as learner_node in config/ami.yaml')
    parser.add_argument('--min-new-samples', type=int, default=LearnerConfig.min_new_samples)
    parser.add_argument('--perception-train-every', type=int, default=4)
    parser.add_argument('--action-repeat', type=int, default=1, help='curious, branching_q: decide every N ticks')
    parser.add_argument('--hold', type=float, nargs=2, metavar=('MIN_S', 'MAX_S'),
                        help='curious: hold each decision for a duration uniform in [MIN_S, MAX_S]')
    parser.add_argument('--oracle-reward', action='store_true',
                        help='curious: reward only the free cells each step visits first (ground truth; '
                             'what the learner does with a reward aligned with coverage)')
    parser.add_argument('--targets', type=int, default=0,
                        help='the extrinsic task: this many targets at once (0: off); curious is paid '
                             'extrinsic_weight per touch')
    parser.add_argument('--frozen-encoder', action='store_true',
                        help='curious: the encoder never trains (stays at its random init)')
    parser.add_argument('--intrinsic-weight', type=float, default=LearnerConfig.intrinsic_weight)
    parser.add_argument('--extrinsic-weight', type=float, default=LearnerConfig.extrinsic_weight)
    parser.add_argument('--held-out', action='store_true', help=f'allow world seeds >= {HELD_OUT_SEEDS}')
    parser.add_argument('--out', type=Path, help='write the runs here as JSON')
    args = parser.parse_args(argv)
    if not args.held_out and any(seed >= HELD_OUT_SEEDS for seed in args.seeds):
        parser.error(f'world seeds >= {HELD_OUT_SEEDS} are held out for final evaluations (--held-out)')
    return args


def run_all(args: argparse.Namespace) -> list[dict]:
    """Every policy on every seed, printing one line per run."""
    runs = []
    for seed in args.seeds:
        for policy in args.policies:
            config = HarnessConfig(policy=policy, seed=seed, minutes=args.minutes, layout=args.layout,
                                   noisy_tv=args.noisy_tv, perception_train_every=args.perception_train_every,
                                   action_repeat=args.action_repeat, hold_s=args.hold,
                                   rollout_length=args.rollout_length, oracle_reward=args.oracle_reward,
                                   targets=args.targets, train_perception=not args.frozen_encoder,
                                   learner=_learner_config(args))
            result = run(config)
            result['settings'] = {k: v for k, v in vars(args).items() if k not in ('out', 'policies', 'seeds')}
            runs.append(result)
            print(f"{policy:8s} seed {seed}: coverage {result['coverage_at_minutes']} "
                  f"touches {result['touches_at_minutes']} "
                  f"noisy {result['noisy_tv_view_fraction']:.3f} updates {result['updates']} "
                  f"entropy {result['last_entropy']} ({result['wall_s']:.0f} s) "
                  f"late actions {result['late_action_share']}",
                  flush=True)
    return runs


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    runs = run_all(args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({'settings': {k: str(v) if isinstance(v, Path) else v
                                                     for k, v in vars(args).items()}, 'runs': runs}, indent=1))
    return runs


if __name__ == '__main__':
    main()
