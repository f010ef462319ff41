"""A checkpoint appears whole or not at all: kill -9 mid-save, full disks, partial writes."""
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from ami_nodes.persistence import CheckpointError, CheckpointStore, clean_staging, fsio, list_checkpoints, load_part

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


def _part(fill: int, mb: int = 1) -> dict:
    return {'learner_node': {
        'models': {'policy': {'w': torch.full((256, 256), float(fill))}},
        'data': {'frames': np.full((mb, 1024, 1024), fill % 256, np.uint8)},
        'params': {'fill': fill}}}


def _assert_intact(root: Path, previous: Path, fill: int) -> None:
    """Only complete checkpoints are visible, and `previous` still holds what it held."""
    visible = sorted(p for p in root.iterdir() if not p.name.startswith('.'))
    assert sorted(list_checkpoints(root)) == visible, 'a half-written checkpoint is visible'
    part = load_part(previous, 'learner_node')
    assert part.params == {'fill': fill}
    assert torch.equal(part.models['policy']['w'], torch.full((256, 256), float(fill)))
    assert (part.data['frames'] == fill % 256).all()


def _save_forever(root: Path) -> None:
    store, part = CheckpointStore(root), _part(1, mb=12)
    while True:
        store.save(part)


def test_kill_9_during_saves_never_shows_half_a_checkpoint(tmp_path):
    seed = int.from_bytes(os.urandom(4), 'little')
    rng = random.Random(seed)
    previous = CheckpointStore(tmp_path).save(_part(7))
    staging = tmp_path / '.staging'
    litter_seen = 0
    for _ in range(5):
        pid = os.fork()
        if pid == 0:
            try:
                _save_forever(tmp_path)
            except BaseException:
                traceback.print_exc()
            os._exit(1)
        deadline = time.monotonic() + 30
        while not any(p.name[0] != '.' for p in staging.iterdir()):
            assert time.monotonic() < deadline, 'the child never started saving'
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.3))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f'child ended on its own (seed {seed})'
        litter_seen += any(staging.iterdir())
        _assert_intact(tmp_path, previous, 7)
        for path in list_checkpoints(tmp_path):
            if path != previous:
                load_part(path, 'learner_node')  # verifies every checksum
                shutil.rmtree(path)  # keep the disk use of the test bounded
    assert litter_seen, f'no kill landed mid-save (seed {seed})'
    clean_staging(tmp_path, older_than_s=0)
    assert not any(staging.iterdir())
    newest = CheckpointStore(tmp_path).save(_part(9))
    assert list_checkpoints(tmp_path)[-1] == newest


def _bytes_of_one_save(root: Path) -> int:
    counted = []
    real = fsio._write_all

    def counting(fd, data):
        counted.append(len(data))
        real(fd, data)

    fsio._write_all = counting
    try:
        CheckpointStore(root).save(_part(3))
    finally:
        fsio._write_all = real
    return sum(counted)


@pytest.mark.parametrize('fraction', [0.0, 0.4, 0.8, 0.9999])
def test_full_disk_mid_save_is_a_clear_error_and_leaves_no_litter(tmp_path, monkeypatch,
                                                                  fraction):
    total = _bytes_of_one_save(tmp_path / 'probe')
    tmp_path = tmp_path / 'checkpoints'
    previous = CheckpointStore(tmp_path).save(_part(5))
    budget = [int(total * fraction)]
    real = fsio._write_all

    def disk_fills_up(fd, data):
        if len(data) > budget[0]:
            real(fd, data[:budget[0]])
            budget[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        budget[0] -= len(data)
        real(fd, data)

    monkeypatch.setattr(fsio, '_write_all', disk_fills_up)
    with pytest.raises(CheckpointError, match=r'disk under .* is full .*free space.*untouched'):
        CheckpointStore(tmp_path).save(_part(6))
    assert list_checkpoints(tmp_path) == [previous]
    assert not any((tmp_path / '.staging').iterdir())
    _assert_intact(tmp_path, previous, 5)


def test_full_disk_in_one_node_leaves_its_part_unwritten(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path)
    name = store.begin()

    def no_space(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fsio, '_write_all', no_space)
    with pytest.raises(CheckpointError, match="part 'learner_node'.*full"):
        store.write_part(name, 'learner_node', **_part(1)['learner_node'])
    assert list((tmp_path / '.staging' / name).iterdir()) == []
    store.abort(name)
    assert not any((tmp_path / '.staging').iterdir())


SMALL_DISK = '''
import json, sys
from pathlib import Path
import numpy as np
from ami_nodes.persistence import CheckpointError, CheckpointStore, list_checkpoints, load_part
store = CheckpointStore(Path(sys.argv[1]) / "checkpoints")
part = lambda fill, n: {"n": {"data": {"buf": np.full(n, fill, np.uint8)}}}
first = store.save(part(1, 2_000_000))
try:
    store.save(part(2, 5_000_000))
    error = None
except CheckpointError as exc:
    error = str(exc)
report = {"error": error, "listed": [p.name for p in list_checkpoints(store.root)],
          "first": first.name, "staging": [p.name for p in store.staging.iterdir()],
          "first_ok": bool((load_part(first, "n").data["buf"] == 1).all())}
report["after"] = store.save(part(3, 1_000_000)).name
print(json.dumps(report))
'''


def test_real_full_filesystem(tmp_path):
    """A 6 MB tmpfs in a private mount namespace; skipped where namespaces are not allowed."""
    if not shutil.which('unshare'):
        pytest.skip('no unshare command')
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    ns = ['unshare', '--user', '--map-root-user', '--mount', 'sh', '-c',
          'mount -t tmpfs -o size=6m tmpfs "$0" && exec "$@"', str(mnt)]
    probe = subprocess.run(ns + ['true'], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f'cannot mount a private tmpfs here: {probe.stderr.decode().strip()}')
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    run = subprocess.run(ns + [sys.executable, '-c', SMALL_DISK, str(mnt)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert 'is full (No space left on device)' in report['error']
    assert report['listed'] == [report['first']] and report['first_ok']
    assert report['staging'] == []
    assert report['after']
