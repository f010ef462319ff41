"""Checkpoints: layout, parts from several processes, resume, corruption, retention, no pickle."""
import hashlib
import json
import os
import pickle
import re
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from ami_nodes.persistence import (
    CheckpointError,
    CheckpointStore,
    apply_retention,
    check_compatible,
    clean_staging,
    latest_checkpoint,
    list_checkpoints,
    load_part,
    save_checkpoint,
)
from ami_nodes.persistence.checkpoint import check_generated_name
from ami_nodes.persistence.manifest import MANIFEST

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


def _learner_part(step: int = 3) -> dict:
    policy = torch.nn.Linear(4, 3)
    return dict(models={'policy': policy.state_dict()},
                trainers={'ppo': {'step': step, 'optimizer': torch.optim.Adam(
                    policy.parameters()).state_dict()}},
                data={'rollout': {'obs': np.ones((8, 4), np.float32), 'len': 8}},
                interaction={'agent': {'hidden': torch.zeros(1, 16), 'episode': 2}},
                params={'lr': 0.0003, 'gamma': 0.99, 'device': 'cpu'})


def test_layout_manifest_and_round_trip(tmp_path):
    root = tmp_path / 'checkpoints'
    path = save_checkpoint(root, {'learner_node': _learner_part(step=42),
                                  'perception_node': {'models': {'encoder': {
                                      'w': torch.ones(2, 2)}}}})
    assert path.parent == root and len(path.name) == len('2024-01-01_00-00-00')
    files = {p.relative_to(path).as_posix() for p in path.rglob('*') if p.is_file()}
    assert files == {
        MANIFEST, 'learner_node/params.yaml', 'learner_node/models/policy.safetensors',
        'learner_node/trainers/ppo.json',  # a fresh Adam state holds no tensors
        'learner_node/data/rollout.json', 'learner_node/data/rollout.safetensors',
        'learner_node/interaction/agent.json', 'learner_node/interaction/agent.safetensors',
        'perception_node/params.yaml', 'perception_node/models/encoder.safetensors'}
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest['nodes'] == ['learner_node', 'perception_node']
    assert set(manifest['files']) == files - {MANIFEST}
    assert all(len(e['sha256']) == 64 and e['size'] > 0 for e in manifest['files'].values())
    assert not any((root / '.staging').iterdir())

    part = load_part(path, 'learner_node')
    assert part.params == {'lr': 0.0003, 'gamma': 0.99, 'device': 'cpu'}
    assert part.trainers['ppo']['step'] == 42
    assert part.data['rollout']['obs'].dtype == np.float32
    assert part.interaction['agent']['episode'] == 2
    fresh = torch.nn.Linear(4, 3)
    fresh.load_state_dict(part.model('policy', like=fresh.state_dict()))
    with pytest.raises(CheckpointError, match="no part for 'camera_node'"):
        load_part(path, 'camera_node')
    with pytest.raises(CheckpointError, match=r"no model 'value'.*\['policy'\]"):
        part.model('value')


def test_names_are_unique_and_latest_is_newest(tmp_path):
    store = CheckpointStore(tmp_path)
    assert store.latest() is None
    with pytest.raises(CheckpointError, match='no complete checkpoint'):
        store.resolve('latest')
    paths = [store.save({'n': {'params': {'i': i}}}) for i in range(3)]
    assert len({p.name for p in paths}) == 3
    assert store.checkpoints() == paths and store.latest() == paths[-1]
    assert store.resolve('latest') == paths[-1]
    assert store.resolve(paths[0].name) == paths[0] and store.resolve(str(paths[1])) == paths[1]
    assert load_part(store.resolve('latest'), 'n').params == {'i': 2}
    with pytest.raises(CheckpointError, match='no MANIFEST'):
        store.resolve(tmp_path / 'nope')


@pytest.mark.parametrize('name', [
    '../../etc/evil', '/etc/passwd', '', '.staging', '2026-11-24_01-02-03/../x',
    '2026-11-24_01-02-03\x00', '2026-11-24_01-02-03_1234567', 'a' * 10000, 'ü', None, 5])
def test_only_generated_names_pass_the_strict_check(tmp_path, name):
    with pytest.raises(ValueError, match='not one this store generates'):
        check_generated_name(name)


def test_every_name_the_store_begins_passes_the_strict_check(tmp_path):
    store = CheckpointStore(tmp_path)
    names = [store.begin() for _ in range(3)]  # the same second: _1, _2 follow
    assert [check_generated_name(n) for n in names] == names


def _in_child(fn, *args) -> int:
    """Run fn in a forked process (cheap: torch is already imported); return its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn(*args)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _write_part(root, name, node):
    CheckpointStore(root).write_part(name, node, params={'node': node},
                                     models={'net': {'w': torch.full((64, 64), len(node))}})


def test_parts_from_separate_processes_form_one_checkpoint(tmp_path):
    store = CheckpointStore(tmp_path)
    name = store.begin()
    nodes = ['learner_node', 'perception_node', 'policy_node']
    pids = [_in_child(_write_part, tmp_path, name, node) for node in nodes]
    assert [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids] == [0, 0, 0]
    path = store.finalize(name, nodes)
    assert latest_checkpoint(tmp_path) == path
    for node in nodes:
        part = load_part(path, node)
        assert part.params == {'node': node}
        assert torch.equal(part.models['net']['w'], torch.full((64, 64), len(node)))


def test_finalize_refuses_missing_parts_and_double_writes(tmp_path):
    store = CheckpointStore(tmp_path)
    name = store.begin()
    store.write_part(name, 'policy_node', params={})
    with pytest.raises(CheckpointError, match='already written'):
        store.write_part(name, 'policy_node', params={})
    with pytest.raises(CheckpointError, match=r"lacks parts \['learner_node'\]"):
        store.finalize(name, ['policy_node', 'learner_node'])
    assert list_checkpoints(tmp_path) == []
    store.write_part(name, 'learner_node', params={})
    path = store.finalize(name, ['policy_node', 'learner_node'])
    assert store.finalize(name, ['policy_node']) == path  # idempotent
    with pytest.raises(CheckpointError, match='already finalized'):
        store.write_part(name, 'camera_node')
    with pytest.raises(CheckpointError, match='not begun'):
        store.write_part('2000-01-01_00-00-00', 'camera_node')
    with pytest.raises(ValueError, match='file name'):
        store.write_part(name, '../evil')


def test_crash_between_parts_is_never_visible(tmp_path):
    store = CheckpointStore(tmp_path)
    previous = store.save({'learner_node': _learner_part(step=1)})
    name = store.begin()
    store.write_part(name, 'perception_node', models={'encoder': {'w': torch.ones(3)}})
    # The process dies here: finalize never runs.
    assert list_checkpoints(tmp_path) == [previous]
    assert store.resolve('latest') == previous
    assert not (tmp_path / name).exists()
    assert clean_staging(tmp_path, older_than_s=3600) == []
    assert clean_staging(tmp_path, older_than_s=0) == [tmp_path / '.staging' / name]
    assert not (tmp_path / '.staging' / name).exists()


def test_corruption_is_detected_and_names_the_file(tmp_path):
    path = save_checkpoint(tmp_path, {'learner_node': _learner_part(),
                                      'policy_node': {'params': {'x': 1}}})
    victim = path / 'learner_node' / 'models' / 'policy.safetensors'
    data = bytearray(victim.read_bytes())
    data[-3] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r'checksum mismatch in .*policy\.safetensors'):
        load_part(path, 'learner_node')
    assert load_part(path, 'policy_node').params == {'x': 1}  # other parts still load
    victim.unlink()
    with pytest.raises(CheckpointError, match=r'policy\.safetensors is listed .* unreadable'):
        load_part(path, 'learner_node')
    (path / MANIFEST).write_text('{"format": "ami_nodes.checkpoint/1", "nodes": [')
    assert list_checkpoints(tmp_path) == []


def test_retention_keeps_the_newest(tmp_path):
    store = CheckpointStore(tmp_path, keep=3)
    paths = [store.save({'n': {'params': {'i': i}}}) for i in range(5)]
    assert store.checkpoints() == paths[2:]
    assert [p.name for p in sorted(paths)] == [p.name for p in paths]  # names sort by age
    assert apply_retention(tmp_path, 1) == paths[2:4]
    assert store.checkpoints() == paths[4:]
    assert not any((tmp_path / '.staging').iterdir())
    with pytest.raises(ValueError):
        apply_retention(tmp_path, 0)


def _plant(path: Path, rel: str, payload: bytes) -> None:
    """Put `payload` at `rel` and list it in the manifest with a valid checksum."""
    (path / rel).write_bytes(payload)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest['files'][rel] = {'size': len(payload),
                              'sha256': hashlib.sha256(payload).hexdigest()}
    (path / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize('rel, error', [
    ('learner_node/models/evil.pth', r'refusing .*evil\.pth'),
    ('learner_node/models/policy.safetensors', 'corrupt safetensors'),
    ('learner_node/trainers/ppo.json', 'not a JSON state file'),
    ('learner_node/data/rollout.safetensors', 'corrupt tensor file'),
])
def test_loading_never_executes_pickles(tmp_path, rel, error):
    marker = tmp_path / 'pwned'

    class Exploit:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    path = save_checkpoint(tmp_path / 'ck', {'learner_node': _learner_part()})
    _plant(path, rel, pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match=error):
        load_part(path, 'learner_node')
    assert not marker.exists()


def test_persistence_code_has_no_unsafe_loader():
    source = '\n'.join(p.read_text() for p in (REPO / 'ami_nodes' / 'persistence').glob('*.py'))
    unsafe = r'import pickle|(?<!safetensors\.)torch\.load\(|yaml\.load\(|unsafe_load|\beval\('
    assert re.findall(unsafe, source) == []


def test_incompatible_shapes_are_refused_by_name(tmp_path):
    saved = torch.nn.Linear(4, 3).state_dict()
    with pytest.raises(CheckpointError, match=r"'weight' has shape \[3, 4\], expected \[3, 5\]"):
        check_compatible(saved, torch.nn.Linear(5, 3).state_dict())
    path = save_checkpoint(tmp_path, {'policy_node': {'models': {'policy': saved}}})
    bigger = torch.nn.Linear(4, 6)
    with pytest.raises(CheckpointError, match=r"model 'policy' in .*'bias' has shape \[3\]"):
        load_part(path, 'policy_node').model('policy', like=bigger.state_dict())


def _train(model, optimizer, steps):
    for _ in range(steps):
        x = torch.randn(16, 6)
        loss = (model(x) - x[:, :2].sum(1, keepdim=True)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_resumed_training_matches_uninterrupted_training(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    _train(model, optimizer, 20)
    path = save_checkpoint(tmp_path, {'learner_node': {
        'models': {'net': model.state_dict()},
        'trainers': {'adam': optimizer.state_dict(), 'rng': {'torch': torch.get_rng_state()}}}})
    _train(model, optimizer, 20)

    part = load_part(path, 'learner_node')
    resumed = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(),
                                  torch.nn.Linear(16, 1))
    resumed.load_state_dict(part.model('net', like=resumed.state_dict()))
    resumed_optimizer = torch.optim.Adam(resumed.parameters(), lr=1e-2)
    resumed_optimizer.load_state_dict(part.trainers['adam'])
    torch.set_rng_state(part.trainers['rng']['torch'])
    _train(resumed, resumed_optimizer, 20)
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
