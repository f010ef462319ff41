"""CartPole-v1 with the learner's own PPOTrainer: evidence that the PPO core learns.

    python -m bench.cartpole_ppo --seeds 5 --steps 100000
    python -m bench.cartpole_ppo --seeds 5 --steps 100000 --lag 2 --vtrace   # stale behaviour policy

`--lag K` makes the environments act with the weights of K updates ago, as the robot's policy
node does while the learner runs ahead; the trainer then sees lag K on every sample.
Hyper-parameters follow RL Zoo's tuned PPO for CartPole-v1 (8 envs x 32 steps, 20 epochs,
gamma 0.98, lambda 0.8, lr 1e-3 annealed to 0, 64x64 tanh), which solves it in 1e5 steps.
Writes bench/results/cartpole_ppo[_lagK[_vtrace]].{json,md}.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.learning.ppo import PPOConfig, PPOTrainer, Segment

FIELDS = ('features', 'actions', 'log_probs', 'rewards', 'next_features', 'terminated', 'truncated')
SOLVED = 475.0
WINDOW = 20
RESULTS = Path(__file__).resolve().parent / 'results'


def cartpole_config(lag: int = 0, use_vtrace: bool = False) -> PPOConfig:
    return PPOConfig(learning_rate=1e-3, gamma=0.98, gae_lambda=0.8, clip=0.2, epochs=20, minibatch_size=256,
                     entropy_coef=0.0, value_coef=0.5, max_grad_norm=0.5, normalize_advantages=True,
                     max_policy_lag=lag, vtrace=use_vtrace)


def evaluate(model: ActorCritic, seed: int, episodes: int) -> float:
    """Mean return of the greedy policy."""
    env = gym.make('CartPole-v1')
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(model.act(obs, deterministic=True).action[0]))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def train(seed: int, total_steps: int, n_envs: int = 8, n_steps: int = 32, config: PPOConfig | None = None,
          eval_episodes: int = 10, lag: int = 0) -> dict:
    """Train one seed; returns steps to a rolling mean >= 475, final returns and wall time."""
    config = config or cartpole_config()
    torch.manual_seed(seed)
    np.random.seed(seed)
    start = time.perf_counter()
    envs = gym.vector.SyncVectorEnv([lambda: gym.make('CartPole-v1') for _ in range(n_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    model = ActorCritic(feature_dim=4, action_dims=(2,), hidden=64)
    trainer = PPOTrainer(model, config)
    snapshots = deque([(0, copy.deepcopy(model))], maxlen=lag + 1)  # (version, weights) the envs may act with
    obs, _ = envs.reset(seed=seed)
    running = np.zeros(n_envs)
    recent: deque[float] = deque(maxlen=WINDOW)
    episodes, steps, steps_to_solve = 0, 0, None
    curve, lags = [], []
    n_updates = total_steps // (n_envs * n_steps)
    for update in range(n_updates):
        trainer.set_learning_rate(config.learning_rate * (1.0 - update / n_updates))
        behaviour_version, behaviour = snapshots[0]
        buf = {k: [] for k in FIELDS}
        for _ in range(n_steps):
            out = behaviour.act_batch(obs)
            next_obs, reward, terminated, truncated, info = envs.step(out.actions[:, 0])
            final = next_obs.copy()
            if '_final_obs' in info:
                for i in np.flatnonzero(info['_final_obs']):
                    final[i] = info['final_obs'][i]
            for key, value in zip(FIELDS, (obs, out.actions, out.log_probs, reward, final, terminated, truncated)):
                buf[key].append(value)
            running += reward
            for i in np.flatnonzero(terminated | truncated):
                recent.append(running[i])
                running[i] = 0.0
                episodes += 1
            obs = next_obs
            steps += n_envs
            if steps_to_solve is None and len(recent) == WINDOW and np.mean(recent) >= SOLVED:
                steps_to_solve = steps
        arrays = {k: np.stack(v, axis=0) for k, v in buf.items()}  # (T, envs, ...)
        segments = [Segment(policy_versions=np.full(n_steps, behaviour_version),
                            **{k: v[:, i] for k, v in arrays.items()}) for i in range(n_envs)]
        lags.append(trainer.update(segments)['lag_mean'])
        snapshots.append((trainer.version, copy.deepcopy(model)))
        if recent:
            curve.append((steps, float(np.mean(recent))))
    envs.close()
    return {
        'seed': seed,
        'env_steps': steps,
        'episodes': episodes,
        'steps_to_rolling_mean_475': steps_to_solve,
        'final_rolling_mean': float(np.mean(recent)) if recent else 0.0,
        'final_greedy_eval_mean': evaluate(model, seed=10_000 + seed, episodes=eval_episodes),
        'wall_s': round(time.perf_counter() - start, 2),
        'policy_lag_mean': float(np.mean(lags)),
        'samples_dropped_lag': trainer.samples_dropped_lag,
        'curve': curve[:: max(1, len(curve) // 50)],
    }


def machine() -> dict:
    cpu = next((line.split(':', 1)[1].strip() for line in Path('/proc/cpuinfo').read_text().splitlines()
                if line.startswith('model name')), platform.processor())
    return {'nproc': os.cpu_count(), 'cpu_model': cpu, 'torch': torch.__version__,
            'torch_threads': torch.get_num_threads(), 'load_average_1m': os.getloadavg()[0],
            'gymnasium': gym.__version__, 'python': platform.python_version()}


def write_report(runs: list[dict], command: str, config: PPOConfig, name: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    solved = [r['steps_to_rolling_mean_475'] for r in runs if r['steps_to_rolling_mean_475'] is not None]
    summary = {
        'seeds_solved': f'{len(solved)}/{len(runs)}',
        'median_steps_to_475': float(np.median(solved)) if solved else None,
        'mean_final_rolling_mean': float(np.mean([r['final_rolling_mean'] for r in runs])),
        'mean_final_greedy_eval': float(np.mean([r['final_greedy_eval_mean'] for r in runs])),
        'mean_wall_s': float(np.mean([r['wall_s'] for r in runs])),
    }
    report = {'command': command, 'machine': machine(), 'config': asdict(config), 'summary': summary, 'runs': runs}
    (RESULTS / f'{name}.json').write_text(json.dumps(report, indent=2) + '\n')
    m = report['machine']
    lines = [
        '# PPO on CartPole-v1 (the learner\'s PPOTrainer)', '',
        f'Command: `{command}`', '',
        f'Machine: {m["nproc"]} cores, {m["cpu_model"]} (load average {m["load_average_1m"]:.1f} at the end: '
        f'wall times grow with it), torch {m["torch"]} ({m["torch_threads"]} thread), '
        f'gymnasium {m["gymnasium"]}, Python {m["python"]}', '',
        f'Behaviour policy lag: {config.max_policy_lag} versions (mean measured '
        f'{np.mean([r["policy_lag_mean"] for r in runs]):.2f}); advantages: '
        f'{"V-trace" if config.vtrace else "GAE"}.', '',
        f'Goal: rolling mean of the last {WINDOW} episodes >= {SOLVED:.0f} within the step budget.', '',
        '| seed | steps to rolling mean >= 475 | final rolling mean | final greedy eval (10 ep) | wall s |',
        '|---:|---:|---:|---:|---:|',
    ]
    for r in runs:
        lines.append(f'| {r["seed"]} | {r["steps_to_rolling_mean_475"] or "not reached"} '
                     f'| {r["final_rolling_mean"]:.1f} '
                     f'| {r["final_greedy_eval_mean"]:.1f} | {r["wall_s"]:.1f} |')
    lines += ['', f'Solved: {summary["seeds_solved"]} seeds; median steps to 475: {summary["median_steps_to_475"]}; '
              f'mean final rolling mean {summary["mean_final_rolling_mean"]:.1f}; '
              f'mean greedy eval {summary["mean_final_greedy_eval"]:.1f}; '
              f'mean wall {summary["mean_wall_s"]:.1f} s.', '']
    (RESULTS / f'{name}.md').write_text('\n'.join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=5)
    parser.add_argument('--steps', type=int, default=100_000)
    parser.add_argument('--lag', type=int, default=0, help='act with the weights of this many updates ago')
    parser.add_argument('--vtrace', action='store_true', help='V-trace advantages instead of GAE')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = cartpole_config(args.lag, args.vtrace)
    name = 'cartpole_ppo' + (f'_lag{args.lag}' if args.lag else '') + ('_vtrace' if args.vtrace else '')
    runs = []
    for seed in range(args.seeds):
        run = train(seed, args.steps, config=config, lag=args.lag)
        print(f'seed {seed}: steps to 475 {run["steps_to_rolling_mean_475"]}, final rolling mean '
              f'{run["final_rolling_mean"]:.1f}, greedy {run["final_greedy_eval_mean"]:.1f}, {run["wall_s"]:.1f} s',
              flush=True)
        runs.append(run)
    write_report(runs, 'python -m bench.cartpole_ppo ' + ' '.join(sys.argv[1:] if argv is None else argv), config, name)


if __name__ == '__main__':
    main()
