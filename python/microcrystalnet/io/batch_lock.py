"""One batch at a time per output folder: ``OUT/.microcrystalnet-batch.lock``.

The lock file names its owner (JSON: pid, host, started) and is held with ``fcntl.flock``. The
operating system lets go of a flock when its process ends, however it ends, so a batch that was
killed leaves no lock in force: the next run takes it over and says whose it was. The file is
removed when the batch ends; a run that opened it just before checks, once it holds the lock,
that it still holds the file at that name (else it opens the new one).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .result_folder import OutputFolderError, output_write_error

log = logging.getLogger(__name__)

LOCK_NAME = ".microcrystalnet-batch.lock"


class OutputFolderBusyError(OutputFolderError):
    """Another batch is writing into the output folder."""


def lock_owner(path: Path) -> dict[str, object] | None:
    """The owner a lock file names (pid, host, started), or None while it names none: gone, or
    created and not yet (or not wholly) written."""
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # gone, or being written this moment
        return None
    return owner if isinstance(owner, dict) else None


def _describe(owner: dict[str, object] | None) -> str:
    if owner is None:
        return "a batch that is just starting"
    return f"process {owner.get('pid')} on {owner.get('host')}, started {owner.get('started')}"


def _holds_the_file_at(descriptor: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def _acquire(path: Path, wait: bool) -> int:
    announced = False
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = lock_owner(path)
            if not wait:
                os.close(descriptor)
                raise OutputFolderBusyError(
                    f"{path.parent} is in use by another batch ({_describe(owner)}; lock file {path}). Wait for it "
                    f"to finish, add --wait to start when it has, or choose another --out") from None
            if not announced:
                log.info("%s is in use by another batch (%s): waiting for it to finish", path.parent, _describe(owner))
                announced = True
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            except BaseException:
                os.close(descriptor)
                raise
        if _holds_the_file_at(descriptor, path):
            return descriptor
        os.close(descriptor)  # the owner removed it as we opened it: take the new one


@contextlib.contextmanager
def batch_lock(out: Path, wait: bool = False) -> Iterator[None]:
    """Hold ``out``'s batch lock for the block.

    Raises :class:`OutputFolderBusyError` at once when another batch holds it (``wait=True``:
    waits for it instead), ``OutputWriteError`` when ``out`` cannot be written to.
    """
    path = Path(out) / LOCK_NAME
    try:
        descriptor = _acquire(path, wait)
    except OSError as error:
        raise output_write_error(error, path) from error
    try:
        earlier = lock_owner(path)
        if earlier is not None:
            log.warning("%s: took over the lock of %s, which ended without releasing it", path.parent,
                        _describe(earlier))
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(owner) + "\n").encode(), 0)
        os.fsync(descriptor)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # while still held: a run waiting on this file then sees it is gone
        os.close(descriptor)
