"""Parts 1, 3 and 7 from a few runs of the whole system (starting it costs ~20 s each, so one
run serves several figures): hot path with perception training on and off, each while the
learner trains and while it is paused; tick stability and memory over the long run."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench import hot_path, memory, ticks
from bench.system_session import SystemSession

PERIOD_S = 0.05  # ami_world fps and camera framerate 20 in config/ami.yaml


def _session(name: str, domain_id: int, overrides: dict, warmup_s: float, training_s: float,
             paused_s: float) -> dict:
    """One system run: warm up, a window with the learner training, then one paused."""
    with tempfile.TemporaryDirectory(prefix=f'bench_{name}_') as tmp:
        session = SystemSession(Path(tmp), domain_id, overrides)
        result: dict = {'overrides': overrides}
        try:
            result['startup_s'] = session.start()
            session.window(warmup_s)
            training = session.window(training_s)
            result['learner_training'] = hot_path.latencies(session.records, training)
            result['ticks'] = ticks.analyze(session.records, training, PERIOD_S)
            if paused_s:
                result['pause_acknowledged'] = session.set_learning(False)
                session.window(2.0)  # let an update in flight finish
                paused = session.window(paused_s)
                result['learner_paused'] = hot_path.latencies(session.records, paused)
        finally:
            result['exit_code'] = session.stop()
        result['memory'] = memory.analyze(session.records)
        return result


def run(quick: bool, domain_ids: list[int]) -> dict:
    """Hot path (part 1), tick stability (3) and memory (7)."""
    warm, long_s, short_s = (3.0, 8.0, 6.0) if quick else (20.0, 300.0, 60.0)
    started = time.monotonic()
    on = _session('train_on', domain_ids[0], {}, warm, long_s, short_s)
    off = _session('train_off', domain_ids[1], {'perception_node': {'train_online': False}},
                   warm, short_s, short_s)
    runs = {'train_on': on, 'train_off': off}
    if not quick:
        big = {'camera_node': {'image_width': 128, 'image_height': 128},
               'perception_node': {'image_size': 128}}
        runs['image_128_train_on'] = _session('image_128', domain_ids[2], big, warm, short_s, 0.0)
    return {
        'hot_path': {
            'how': f'ami_launch on free ports, world 20 Hz, camera 84x84 (128x128 where named); '
                   f'{warm:g} s warm-up after the first cmd_vel, then {long_s:g} s (train_on) or '
                   f'{short_s:g} s windows with the learner training, then {short_s:g} s after '
                   f'/learner_node/set_learning false. ' + (hot_path.__doc__ or '').strip(),
            **{name: {k: v for k, v in r.items() if k not in ('ticks', 'memory')}
               for name, r in runs.items()}},
        'ticks': {'how': (ticks.__doc__ or '').strip() + f' Window: the train_on run, '
                  f'{long_s:g} s with the learner training and shipping weights.',
                  **on['ticks']},
        'memory': {'how': (memory.__doc__ or '').strip() + ' From the train_on run (the longest).',
                   'per_node': on['memory']},
        'seconds': time.monotonic() - started,
    }
