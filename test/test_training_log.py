"""TrainingLog writes what TensorBoard reads, continues curves on resume, survives disk errors."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ami_nodes.monitoring.training_log import TrainingLog

REPO = Path(__file__).resolve().parents[1]


def _read(log_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={'scalars': 0, 'images': 0})
    events.Reload()
    return events


def test_scalars_and_images_read_back(tmp_path):
    image = np.zeros((8, 12, 3), np.uint8)
    image[:, :, 0] = 255
    with TrainingLog(tmp_path, 'learner_node', run_name='run1') as log:
        for step in range(5):
            log.scalar('loss/policy', 1.0 / (step + 1), step)
            log.scalars({'reward/intrinsic': step * 0.5, 'fps': 20}, step)
        log.image('prediction', image, step=4)
    assert log.log_dir == tmp_path / 'run1' / 'learner_node'
    events = _read(log.log_dir)
    assert set(events.Tags()['scalars']) == {'loss/policy', 'reward/intrinsic', 'fps'}
    loss = events.Scalars('loss/policy')
    assert [e.step for e in loss] == [0, 1, 2, 3, 4]
    assert loss[3].value == pytest.approx(0.25)
    (picture,) = events.Images('prediction')
    assert (picture.step, picture.width, picture.height) == (4, 12, 8)


def test_default_run_folder_is_utc_time_and_disabled_writes_nothing(tmp_path):
    log = TrainingLog(tmp_path / 'on', 'policy_node')
    log.close()
    (run,) = (tmp_path / 'on').iterdir()
    assert len(run.name) == len('2024-01-01_00-00-00') and (run / 'policy_node').is_dir()
    off = TrainingLog(tmp_path / 'off', 'policy_node', enabled=False)
    off.scalar('x', 1.0, 0)
    off.image('i', np.zeros((2, 2, 3), np.uint8), 0)
    off.close()
    assert not (tmp_path / 'off').exists()


def test_resume_continues_the_same_curve(tmp_path):
    with TrainingLog(tmp_path, 'learner_node', run_name='run') as log:
        for step in range(10):  # checkpoint at step 6, crash after step 9
            log.scalar('loss', float(step), step)
    with TrainingLog(tmp_path, 'learner_node', run_name='run', resume_step=6) as log:
        for step in range(6, 8):
            log.scalar('loss', 100.0 + step, step)
    points = [(e.step, e.value) for e in _read(tmp_path / 'run' / 'learner_node')
              .Scalars('loss')]
    assert points == [(s, float(s)) for s in range(6)] + [(6, 106.0), (7, 107.0)]


def test_bad_image_is_a_caller_error(tmp_path):
    with TrainingLog(tmp_path, 'n') as log, pytest.raises(ValueError, match='HxWx3 uint8'):
        log.image('x', np.zeros((4, 4), np.float32), 0)


def test_disk_error_is_reported_once_and_swallowed(tmp_path):
    reports = []
    log = TrainingLog(tmp_path, 'n', on_error=reports.append)

    def broken(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    log._writer.add_scalar = log._writer.add_image = log._writer.flush = broken
    for step in range(3):
        log.scalar('x', 1.0, step)
        log.image('i', np.zeros((2, 2, 3), np.uint8), step)
    log.flush()
    assert log.errors == 7 and len(reports) == 1
    assert 'No space left on device' in reports[0] and log.error
    log.close()


FILE_SIZE_LIMIT = '''
import resource, sys
import numpy as np
from ami_nodes.monitoring.training_log import TrainingLog
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # the kernel refuses writes past 4 KB
reports = []
log = TrainingLog(sys.argv[1], "n", on_error=reports.append, flush_secs=0.01)
for step in range(200):
    log.scalar("x", float(step), step)
    log.image("i", np.random.randint(0, 255, (32, 32, 3), np.uint8), step)
    log.flush()
log.close()
print(len(reports), log.errors, reports[0] if reports else "")
'''


def test_real_write_errors_do_not_crash_the_caller(tmp_path):
    run = subprocess.run([sys.executable, '-c', FILE_SIZE_LIMIT, str(tmp_path)],
                         env={**os.environ, 'PYTHONPATH': str(REPO)},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    reported, errors, first = run.stdout.split(' ', 2)
    assert reported == '1' and int(errors) > 1
    assert 'File too large' in first
