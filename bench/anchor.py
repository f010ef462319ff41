"""Anchor: pamiq-core's design (inference and training threads in ONE process, one GIL)
against ours (training in another process), with our own models, since pamiq-core itself
needs Python >= 3.12 and cannot be installed into this project's 3.11 venv.

The inference loop is the floor's per-frame work without perception training (inference
only, as pamiq-core's inference thread), paced at 20 Hz like pamiq-core's interaction loop
(sleep the remainder). Training load is `CuriosityPPOLearner.step()` on 128-sample batches,
back to back. Figures: step time, wake-up lateness (jitter) and missed 50 ms deadlines with
no training, with a training thread in the same process, with a training process beside it.
"""
from __future__ import annotations

import multiprocessing as mp
import shutil
import subprocess
import threading
import time

import numpy as np
import torch

from bench.floor import FloorPipeline
from bench.learner_throughput import ROLLOUT, _learner, _rollout
from bench.stats import summary

PERIOD_S = 0.05


def train_until(stop, updates, ready) -> None:
    """Training load: learner updates back to back until `stop` is set, counting them."""
    torch.set_num_threads(1)
    learner, rng = _learner(ROLLOUT), np.random.default_rng(0)
    while not stop.is_set():
        learner.add(_rollout(rng, ROLLOUT, learner.actor_critic.feature_dim))
        learner.step()
        with updates.get_lock():
            updates.value += 1
        ready.set()


def inference(seconds: float) -> dict:
    """20 Hz paced inference: per-step time and how late each step started."""
    pipeline = FloorPipeline.build(train=False)
    for _ in range(10):
        pipeline.step()
    steps, lateness = [], []
    next_tick = time.perf_counter()
    end = next_tick + seconds
    while next_tick < end:
        delay = next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        lateness.append((start - next_tick) * 1e3)
        pipeline.step()
        steps.append((time.perf_counter() - start) * 1e3)
        next_tick += PERIOD_S
        if time.perf_counter() > next_tick + PERIOD_S / 2:  # missed: skip, as a 20 Hz loop does
            next_tick = time.perf_counter()
    total = np.array(steps) + np.array(lateness)
    return {'step_ms': summary(steps), 'lateness_ms': summary(lateness),
            'missed_deadline_fraction': float((total > PERIOD_S * 1e3).mean())}


def _with_load(kind: str, seconds: float) -> dict:
    """Inference while a trainer runs as a thread here or as a separate process."""
    ctx = mp.get_context('spawn')
    stop, ready, updates = ctx.Event(), ctx.Event(), ctx.Value('l', 0)
    worker = (threading.Thread(target=train_until, args=(stop, updates, ready), daemon=True)
              if kind == 'thread' else ctx.Process(target=train_until, args=(stop, updates, ready)))
    worker.start()
    ready.wait(120)
    first = updates.value
    started = time.monotonic()
    result = inference(seconds)
    result['training_updates_per_s'] = (updates.value - first) / (time.monotonic() - started)
    stop.set()
    worker.join(60)
    return result


def python312_status() -> dict:
    """Whether pamiq-core's interpreter exists here and whether it has pamiq_core + torch."""
    exe = shutil.which('python3.12')
    probe = subprocess.run(['env', 'PYENV_VERSION=3.12.1', 'python3.12', '-c',
                            'import sys; print(sys.version.split()[0]); import pamiq_core, torch'],
                           capture_output=True, text=True) if exe else None
    return {'python3.12_on_path': exe,
            'python3.12_runs': bool(probe and probe.stdout.strip()),
            'pamiq_core_and_torch_importable': bool(probe and probe.returncode == 0)}


def run(quick: bool) -> dict:
    torch.set_num_threads(1)
    seconds = 4.0 if quick else 25.0
    return {
        'how': f'{seconds:g} s per arrangement. ' + (__doc__ or '').split('\n\n')[1].replace('\n', ' '),
        'pamiq_core': {**python312_status(), 'note': (
            'pip download pamiq-core with this 3.11 venv finds no version (all releases '
            '0.0.2..0.6.0 require Python >= 3.12); with --python-version 3.12 it resolves to '
            'pamiq_core-0.6.0 (pure Python; torch is an extra). pyenv has 3.12.1, but this '
            'project forbids pip installs and a 3.12 torch wheel would have to be downloaded, '
            'so pamiq-core itself is not run: its threading design is reproduced here.')},
        'alone': inference(seconds),
        'training_thread_same_process': _with_load('thread', seconds),
        'training_separate_process': _with_load('process', seconds),
    }
