"""What the numbers were measured on: a benchmark without its machine is not a result."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def loadavg() -> list[float]:
    """1, 5 and 15 minute load averages: other engineers share these two cores."""
    return [float(v) for v in Path('/proc/loadavg').read_text().split()[:3]]


def _cpu_model() -> str:
    for line in Path('/proc/cpuinfo').read_text().splitlines():
        if line.startswith('model name'):
            return line.split(':', 1)[1].strip()
    return platform.processor() or 'unknown'


def _ram_gib() -> float:
    for line in Path('/proc/meminfo').read_text().splitlines():
        if line.startswith('MemTotal:'):
            return round(int(line.split()[1]) / 2**20, 1)
    return float('nan')


def _git_commit() -> str:
    result = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return result.stdout.strip() + (' (+ uncommitted changes)' if dirty else '')


def describe() -> dict:
    return {'cpu': _cpu_model(), 'nproc': os.cpu_count(), 'ram_gib': _ram_gib(),
            'python': platform.python_version(), 'torch': torch.__version__,
            'torch_threads': torch.get_num_threads(), 'platform': platform.platform(),
            'git_commit': _git_commit()}
