"""The benchmark runs end to end (its cheap, ROS-free parts, in --quick mode) and writes the
figures the docs promise, as finite numbers. The ROS parts run in `make bench`."""
import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PARTS = 'floor,profile,scaling,learner'


def numbers(tree):
    """Every number in a JSON tree."""
    if isinstance(tree, dict):
        for value in tree.values():
            yield from numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from numbers(value)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree


def test_quick_bench_writes_finite_results(tmp_path):
    subprocess.run([sys.executable, '-m', 'bench.run_all', '--quick', '--parts', PARTS,
                    '--out', str(tmp_path)], cwd=REPO, check=True, timeout=60)
    results = json.loads((tmp_path / 'latest.json').read_text())
    assert (tmp_path / 'latest.md').read_text().startswith('# ami_nodes benchmarks')

    machine = results['machine']
    for key in ('cpu', 'nproc', 'ram_gib', 'python', 'torch', 'git_commit', 'loadavg_start',
                'loadavg_end'):
        assert key in machine, key
    parts = results['parts']
    assert set(parts) == set(PARTS.split(',')), parts
    assert all('error' not in part for part in parts.values()), parts

    for key in ('train_on', 'train_off'):
        assert 0 < parts['floor'][key]['p50'] <= parts['floor'][key]['p99']
    assert [r['batch'] for r in parts['learner']['rows']] == [64, 256]
    assert all(r['samples_per_s'] > 0 for r in parts['learner']['rows'])
    assert {'forward_ms', 'train_ms', 'state_params'} <= set(parts['scaling']['vs_image_side'])
    assert len(results['headline']['profile_top3']) == 3
    assert all(math.isfinite(x) for x in numbers(parts)), 'NaN or inf in the results'
