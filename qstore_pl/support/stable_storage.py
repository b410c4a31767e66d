"""fsync by path: what makes a file's contents and its directory entry survive an
operating-system crash or power loss (a write or rename alone reaches only the page
cache; a new or renamed file also needs its directory synced)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or directory by path (on Linux an fsync through any descriptor
    flushes the file's dirty pages)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(root: str | os.PathLike[str]) -> None:
    """fsync every file and directory under ``root`` and ``root`` itself, each folder
    after its contents, so that new files' directory entries are durable too."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(os.path.join(folder, name))
        fsync_path(folder)


def missing_directories(path: Path) -> list[Path]:
    """The directories of ``path``'s folder chain that do not exist yet, innermost first
    (to pass to :func:`fsync_new_entries` once they and ``path`` are created)."""
    return [p for p in (path.parent, *path.parent.parents) if not p.exists()]


def fsync_new_entries(path: Path, created_directories: Iterable[Path]) -> None:
    """Make a newly created file's entry durable: fsync the file, its folder and the
    parent of every directory created for it."""
    fsync_path(path)
    fsync_path(path.parent)
    for directory in created_directories:
        fsync_path(directory.parent)
