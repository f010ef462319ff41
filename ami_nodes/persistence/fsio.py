"""Durable file-system steps: data is on disk before the rename that makes it visible.

A rename within one file system is atomic, but without fsync the kernel may persist the
rename before the data; after a power cut the new name would point at an empty file. So:
write, fsync the file, rename, fsync the directory that holds the new name.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

_CHUNK = 1 << 22


def _write_all(fd: int, data: memoryview) -> None:
    """os.write may write less than asked; loop until every byte is out."""
    while data:
        written = os.write(fd, data[:_CHUNK])
        data = data[written:]


def write_file(path: Path, data: bytes) -> None:
    """Create `path` (it must not exist) with `data`, fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_all(fd, memoryview(data).cast('B'))
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Persist the directory entries (new names, renames) of `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes) -> None:
    """Atomically (re)place `path`: temp file beside it, fsync, rename, fsync the folder."""
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    try:
        write_file(tmp, data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def remove_tree(path: Path) -> None:
    """Delete a folder that may be half written; missing is fine."""
    shutil.rmtree(path, ignore_errors=True)
