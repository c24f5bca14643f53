"""Files that appear complete or not at all, and stay so through a power cut: written beside
their place, flushed to disk, then renamed into it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk (a rename alone can reach the disk before the data)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_folder(path: Path) -> None:
    """Flush a folder's entries (names created, renamed, removed in it) to disk.

    Windows cannot open a folder to flush it, and its file system orders renames itself.
    """
    if os.name == "nt":
        return
    fsync_file(path)


@contextlib.contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A hidden path beside ``path`` to write to (same suffix, so writers that go by it still
    work); flushed and renamed to ``path`` when the block ends, removed if it raises."""
    partial = path.with_name(f".{path.name}.partial{path.suffix}")
    try:
        yield partial
        fsync_file(partial)
        os.replace(partial, path)
        fsync_folder(path.parent)
    finally:
        partial.unlink(missing_ok=True)
