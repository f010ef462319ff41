"""Checkpoints that several processes write together and that appear whole or not at all.

Layout (see docs/checkpoints.md):

    root/<YYYY-MM-DD_hh-mm-ss>/MANIFEST.json
    root/<YYYY-MM-DD_hh-mm-ss>/<node>/{models,trainers,data,interaction}/..., params.yaml
    root/.staging/<name>/...      parts being written; never read as checkpoints

Each node writes its part into the staging folder (temp folder, fsync, rename); one process
finalizes: it checks the expected parts, writes MANIFEST.json and renames the staging
folder into the root. A rename is atomic, so readers see a whole checkpoint or none.
"""
from __future__ import annotations

import errno
import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ami_nodes.persistence.errors import CheckpointError
from ami_nodes.persistence.fsio import fsync_dir, remove_tree, replace_file, write_file
from ami_nodes.persistence.manifest import MANIFEST, build_manifest, read_manifest, read_verified
from ami_nodes.persistence.part import NodePart, check_name, decode_part, encode_part

STAGING = '.staging'
TIME_FORMAT = '%Y-%m-%d_%H-%M-%S'
#: The names begin() gives checkpoints: the UTC time of TIME_FORMAT, `_n` when it is taken.
GENERATED_NAME = re.compile(r'\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(_\d{1,6})?')


def check_generated_name(name: object) -> str:
    """`name` if begin() could have generated it, else a ValueError (it may come off the network)."""
    if not isinstance(name, str) or not GENERATED_NAME.fullmatch(name):
        shown = repr(name)[:80]
        raise ValueError(f'checkpoint name {shown} is not one this store generates '
                         '(YYYY-MM-DD_hh-mm-ss, optionally _n)')
    return name


def _failure(action: str, exc: OSError, root: Path) -> CheckpointError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = (f'the disk under {root} is full ({exc.strerror}); free space or lower the '
                'number of checkpoints kept')
    else:
        hint = f'{exc}'
    return CheckpointError(f'{action} failed: {hint}. Earlier checkpoints are untouched.')


def list_checkpoints(root: str | Path, run: str | None = None) -> list[Path]:
    """Complete checkpoints under `root` (only those written by `run`, if given), oldest
    first (by manifest creation time)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if child.name.startswith('.') or not child.is_dir():
            continue
        try:
            manifest = read_manifest(child)
        except CheckpointError:
            continue
        if run is None or manifest.get('run') == run:
            found.append((manifest['created_unix'], child.name, child))
    return [path for *_, path in sorted(found)]


def latest_checkpoint(root: str | Path, run: str | None = None) -> Path | None:
    """The newest complete checkpoint (of `run`, if given), or None."""
    complete = list_checkpoints(root, run)
    return complete[-1] if complete else None


def resolve_checkpoint(root: str | Path, ref: str | Path) -> Path:
    """`'latest'`, a checkpoint name under `root`, or a path -> a complete checkpoint."""
    if str(ref) == 'latest':
        path = latest_checkpoint(root)
        if path is None:
            raise CheckpointError(f'no complete checkpoint under {root}; start without '
                                  'resuming or point at a checkpoint path')
        return path
    path = Path(ref)
    if not path.is_dir() and (Path(root) / path).is_dir():
        path = Path(root) / path
    read_manifest(path)
    return path


def load_part(checkpoint: str | Path, node: str) -> NodePart:
    """One node's verified part: every checksum is checked before anything is decoded."""
    checkpoint = Path(checkpoint)
    manifest = read_manifest(checkpoint)
    if node not in manifest['nodes']:
        raise CheckpointError(f'{checkpoint} has no part for {node!r}; it holds '
                              f"{manifest['nodes']}")
    return decode_part(checkpoint, node, read_verified(checkpoint, manifest, node))


def apply_retention(root: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` complete checkpoints; return what was removed.

    Each victim is first renamed into the staging area, so it vanishes from readers at
    once and a crash mid-delete leaves only staging litter.
    """
    if keep < 1:
        raise ValueError(f'keep must be at least 1, got {keep}')
    root = Path(root)
    victims = list_checkpoints(root)[:-keep]
    staging = root / STAGING
    staging.mkdir(exist_ok=True)
    for path in victims:
        trash = staging / f'.trash-{path.name}-{secrets.token_hex(4)}'
        os.rename(path, trash)
        fsync_dir(root)
        remove_tree(trash)
    return victims


def clean_staging(root: str | Path, older_than_s: float) -> list[Path]:
    """Remove staging leftovers (crashed saves, abandoned trash) older than the given age."""
    staging = Path(root) / STAGING
    if not staging.is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for entry in staging.iterdir():
        try:
            stale = entry.name.startswith('.trash-') or entry.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if stale:
            remove_tree(entry)
            removed.append(entry)
    return removed


def _next_suffix(base: str, taken: Iterable[Path]) -> int:
    """0 for a free base name, else one past the highest `_n` used, so names sort by age."""
    used = [0 if p.name == base else int(p.name[len(base) + 1:]) for p in taken
            if p.name == base or re.fullmatch(re.escape(base) + r'_\d+', p.name)]
    return max(used) + 1 if used else 0


class CheckpointStore:
    """Writes and finds checkpoints under one root; safe to use from several processes.

    `keep` (if set) applies retention after each finalize; staging leftovers older than
    `stale_after_s` are removed on begin and finalize.
    """

    def __init__(self, root: str | Path, keep: int | None = None,
                 stale_after_s: float = 3600.0) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f'keep must be at least 1 or None, got {keep}')
        self.root = Path(root)
        self.keep = keep
        self.stale_after_s = stale_after_s

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    def begin(self, name: str | None = None) -> str:
        """Reserve a checkpoint name (UTC time by default, `_1`, `_2`... when taken)."""
        self.staging.mkdir(parents=True, exist_ok=True)
        clean_staging(self.root, self.stale_after_s)
        base = check_name(name, 'checkpoint name') if name else time.strftime(
            TIME_FORMAT, time.gmtime())
        n = _next_suffix(base, [*self.root.iterdir(), *self.staging.iterdir()])
        while True:
            candidate = base if n == 0 else f'{base}_{n}'
            try:
                (self.staging / candidate).mkdir()
            except FileExistsError:
                n += 1
                continue
            if (self.root / candidate).exists():  # finalized meanwhile by another process
                (self.staging / candidate).rmdir()
                n += 1
                continue
            fsync_dir(self.staging)
            return candidate

    def write_part(self, name: str, node: str, *,
                   models: Mapping[str, Mapping[str, Any]] | None = None,
                   trainers: Mapping[str, Any] | None = None,
                   data: Mapping[str, Any] | None = None,
                   interaction: Mapping[str, Any] | None = None,
                   params: Mapping[str, Any] | None = None) -> Path:
        """Durably write one node's part into the staging folder of checkpoint `name`."""
        check_name(name, 'checkpoint name')
        check_name(node, 'node name')
        stage = self.staging / name
        if (self.root / name).exists():
            raise CheckpointError(f'checkpoint {name!r} is already finalized; begin a new one')
        if not stage.is_dir():
            raise CheckpointError(f'checkpoint {name!r} was not begun (or was aborted) under '
                                  f'{self.root}; call begin() first')
        if (stage / node).exists():
            raise CheckpointError(f'part {node!r} of checkpoint {name!r} is already written')
        files = encode_part(models=models, trainers=trainers, data=data,
                            interaction=interaction, params=params)
        tmp = stage / f'.{node}.tmp-{os.getpid()}-{secrets.token_hex(4)}'
        try:
            tmp.mkdir()
            folders = {tmp}
            for rel, content in files.items():
                path = tmp / rel
                if path.parent not in folders:
                    path.parent.mkdir()
                    folders.add(path.parent)
                write_file(path, content)
            for folder in sorted(folders, reverse=True):
                fsync_dir(folder)
            os.rename(tmp, stage / node)
            fsync_dir(stage)
        except BaseException as exc:
            remove_tree(tmp)
            if isinstance(exc, OSError):
                raise _failure(f'writing part {node!r} of checkpoint {name!r}', exc,
                               self.root) from exc
            raise
        return stage / node

    def finalize(self, name: str, expected_nodes: Iterable[str], run: str = '') -> Path:
        """Verify the parts, write MANIFEST.json and publish the checkpoint atomically.

        Missing parts raise without deleting anything (retry later or abort); an I/O error
        aborts the checkpoint, so a full disk leaves no litter.
        """
        check_name(name, 'checkpoint name')
        stage, final = self.staging / name, self.root / name
        if not stage.is_dir():
            if final.is_dir():
                read_manifest(final)
                return final
            raise CheckpointError(f'checkpoint {name!r} was not begun (or was aborted)')
        present = {p.name for p in stage.iterdir() if p.is_dir() and not p.name.startswith('.')}
        missing = sorted(set(expected_nodes) - present)
        if missing:
            raise CheckpointError(f'checkpoint {name!r} lacks parts {missing} (has '
                                  f'{sorted(present)}); retry finalize when they are written '
                                  'or abort it')
        if final.exists():
            raise CheckpointError(f'{final} already exists; abort {name!r} and begin anew')
        try:
            for leftover in stage.glob('.*'):
                remove_tree(leftover)
            manifest = build_manifest(stage, name, present, run)
            replace_file(stage / MANIFEST, json.dumps(manifest, indent=1).encode())
            os.rename(stage, final)
            fsync_dir(self.root)
        except OSError as exc:
            self.abort(name)
            raise _failure(f'finalizing checkpoint {name!r}', exc, self.root) from exc
        try:
            if self.keep is not None:
                apply_retention(self.root, self.keep)
            clean_staging(self.root, self.stale_after_s)
        except OSError as exc:
            raise CheckpointError(f'{final} is saved, but removing old checkpoints failed: '
                                  f'{exc}') from exc
        return final

    def abort(self, name: str) -> None:
        """Drop a checkpoint that will not be finalized."""
        remove_tree(self.staging / name)

    def save(self, parts: Mapping[str, Mapping[str, Any]], name: str | None = None) -> Path:
        """Single-process convenience: `{node: write_part keyword arguments}` -> checkpoint."""
        name = self.begin(name)
        try:
            for node, part in parts.items():
                self.write_part(name, node, **part)
            return self.finalize(name, parts.keys())
        except BaseException:
            self.abort(name)
            raise

    def checkpoints(self) -> list[Path]:
        return list_checkpoints(self.root)

    def latest(self) -> Path | None:
        return latest_checkpoint(self.root)

    def resolve(self, ref: str | Path) -> Path:
        return resolve_checkpoint(self.root, ref)


def save_checkpoint(root: str | Path, parts: Mapping[str, Mapping[str, Any]],
                    keep: int | None = None) -> Path:
    """Write every part from this process and publish them as one checkpoint."""
    return CheckpointStore(root, keep=keep).save(parts)
