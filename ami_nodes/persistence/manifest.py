"""MANIFEST.json: the list of every file of a checkpoint with its size and sha256.

Written last, inside the staging folder, so its presence in a visible checkpoint means
every part was complete; its checksums catch later corruption on load.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ami_nodes.persistence.errors import CheckpointError

MANIFEST = 'MANIFEST.json'
FORMAT = 'ami_nodes.checkpoint/1'
_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(folder: Path, name: str, nodes: Iterable[str], run: str = '') -> dict[str, Any]:
    """Describe every file under the given node folders of `folder`, and the run (the
    launch's run name) that wrote it, so a restarted node can find its own run's newest."""
    nodes = sorted(nodes)
    files = {}
    for node in nodes:
        for path in sorted(p for p in (folder / node).rglob('*') if p.is_file()):
            files[path.relative_to(folder).as_posix()] = {
                'size': path.stat().st_size, 'sha256': sha256_file(path)}
    now = time.time()
    return {'format': FORMAT, 'name': name, 'run': run, 'nodes': nodes,
            'created': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now)),
            'created_unix': now, 'files': files}


def read_manifest(folder: Path) -> dict[str, Any]:
    """The parsed manifest, or CheckpointError when `folder` is not a complete checkpoint."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f'{folder} is not a complete checkpoint: it has no {MANIFEST}'
                              ) from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f'{path} is unreadable ({exc}); use another checkpoint'
                              ) from None
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        raise CheckpointError(f'{path} is not a {FORMAT} manifest')
    for key, kind in (('nodes', list), ('files', dict), ('created_unix', (int, float))):
        if not isinstance(manifest.get(key), kind):
            raise CheckpointError(f'{path} lacks a valid {key!r}; use another checkpoint')
    return manifest


def read_verified(folder: Path, manifest: dict[str, Any], node: str) -> dict[str, bytes]:
    """Every file of one node's part, each checked against its size and sha256."""
    prefix = f'{node}/'
    files: dict[str, bytes] = {}
    for rel, entry in manifest['files'].items():
        if not rel.startswith(prefix):
            continue
        if '..' in rel.split('/'):
            raise CheckpointError(f'{folder / MANIFEST} lists {rel!r}, outside the checkpoint')
        path = folder / rel
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f'{path} is listed in the manifest but unreadable ({exc}); '
                                  'the checkpoint is damaged, use an older one') from None
        if len(content) != entry.get('size') or (
                hashlib.sha256(content).hexdigest() != entry.get('sha256')):
            raise CheckpointError(f'checksum mismatch in {path}: the file is corrupted '
                                  f'({len(content)} bytes, manifest says {entry.get("size")}); '
                                  'use an older checkpoint')
        files[rel[len(prefix):]] = content
    return files
