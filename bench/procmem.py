"""Resident memory of a process tree from /proc (psutil is not in the venv)."""
from __future__ import annotations

import os
from pathlib import Path


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        key, _, value = line.partition(':')
        fields[key] = value.strip()
    return fields


def _kib(value: str) -> float:
    return float(value.split()[0]) if value else 0.0


def descendants(root: int) -> list[int]:
    """Every live process below `root`, found through PPid (no /proc children file needed)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                ppid = int(_status(int(entry)).get('PPid', '0'))
            except (OSError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def label(pid: int) -> str:
    """The module a node process runs (`ami_nodes.nodes.policy_node` -> policy_node)."""
    args = Path(f'/proc/{pid}/cmdline').read_bytes().split(b'\0')
    for arg in args:
        text = arg.decode(errors='replace')
        if text.startswith('ami_nodes.'):
            return text.rsplit('.', 1)[-1] if '.nodes.' in text else 'ami_world'
    return f'pid{pid}'


def sample(root: int) -> dict[str, dict[str, float]]:
    """VmRSS and VmHWM (peak) in MB of each labelled descendant; a name seen twice is summed
    (the ROS wheels may re-execute the interpreter as a child)."""
    out: dict[str, dict[str, float]] = {}
    for pid in descendants(root):
        try:
            status, name = _status(pid), label(pid)
        except OSError:
            continue
        row = out.setdefault(name, {'rss_mb': 0.0, 'peak_mb': 0.0})
        row['rss_mb'] += _kib(status.get('VmRSS', '')) / 1024
        row['peak_mb'] += _kib(status.get('VmHWM', '')) / 1024
    return out
