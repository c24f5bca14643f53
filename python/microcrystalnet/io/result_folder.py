"""Result folders this program owns: marked, replaced whole, and never anyone else's.

Every result folder (``OUT/<image name>/``) holds a marker file, ``.microcrystalnet-result``
(JSON: program, version, created, host, pid). A folder without it was not written by
MicroCrystalNet and is never moved, replaced or deleted: writing there is refused with
:class:`OutputFolderError`. Neither is a marked folder that holds files MicroCrystalNet does
not write (a user's notes, an input image).

A folder is written as ``OUT/.<name>.partial-<pid>`` (marked first), flushed to disk, and
swapped into place: the old folder, if any, is renamed to ``.<name>.previous-<pid>``, the new
one to ``<name>``, the folder entries flushed, and the old one removed. A process killed at any
moment leaves at most those two; :func:`recover_leftovers` finishes or undoes the swap of
processes that are gone and leaves those of running processes alone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from .. import __version__
from .atomic import fsync_file, fsync_folder

log = logging.getLogger(__name__)

MARKER_NAME = ".microcrystalnet-result"
PROGRAM = "MicroCrystalNet"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|previous)-(?P<pid>\d+)$")


class OutputFolderError(Exception):
    """A folder this program refuses to write to or replace: not its own, holding inputs or files
    it did not write, or in use by another run. The message names it and says what to do."""


class OutputWriteError(Exception):
    """Results could not be written (a read-only folder, a file where a folder belongs, a full
    disk). The message names the path and says what to do."""


def output_write_error(error: OSError, path: Path) -> OutputWriteError:
    """``error``, raised while writing at or under ``path``, as a message that says what to do."""
    where = Path(error.filename) if error.filename else path
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "no permission to write there (or the disk is read-only): choose a folder you can write to with --out"
    elif error.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "the disk is full: free some space, or choose a folder on another disk with --out"
    elif error.errno in (errno.EEXIST, errno.ENOTDIR) and where.exists() and not where.is_dir():
        advice = "a file is in the way where a folder belongs: choose another folder with --out, or move that file"
    else:
        advice = f"{error.strerror or error}: check the folder, or choose another one with --out"
    return OutputWriteError(f"cannot write the results to {where}: {advice}")


def write_marker(folder: Path) -> None:
    """Mark ``folder`` as a result folder of this program (and of this process, while it writes)."""
    content = {"program": PROGRAM, "version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "host": socket.gethostname(), "pid": os.getpid()}
    (folder / MARKER_NAME).write_text(json.dumps(content) + "\n", encoding="utf-8")


def is_result_folder(folder: Path) -> bool:
    """Whether ``folder`` is a folder (not a link to one) that carries this program's marker."""
    return folder.is_dir() and not folder.is_symlink() and (folder / MARKER_NAME).is_file()


def _written_by_an_earlier_version(folder: Path, own_names: Collection[str]) -> bool:
    """Whether an unmarked ``folder`` is a result folder of a version before markers: it holds
    only files this program writes, and a summary.json that names MicroCrystalNet's version."""
    try:
        entries = {entry.name for entry in folder.iterdir()}
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return entries <= set(own_names) and isinstance(summary, dict) and \
        isinstance(summary.get("versions"), dict) and "microcrystalnet" in summary["versions"]


def check_replaceable(final: Path, own_names: Collection[str], inputs: Sequence[Path] = ()) -> None:
    """Raise :class:`OutputFolderError` unless a result folder may be written at ``final``.

    It may when nothing is there, or a result folder of this program that holds nothing but
    ``own_names`` (the files it writes) and none of ``inputs``. A result folder of an earlier
    version, from before markers (only our files, and a summary.json naming MicroCrystalNet), is
    marked as ours first.
    """
    if not final.exists() and not final.is_symlink():
        return
    choose = "choose another --out, or rename or move it away"
    if final.is_symlink() or not final.is_dir():
        kind = "a link" if final.is_symlink() else "a file"
        raise OutputFolderError(f"{final} exists and is not a result folder ({kind}); MicroCrystalNet never "
                                f"replaces it: {choose}")
    if not is_result_folder(final) and _written_by_an_earlier_version(final, own_names):
        write_marker(final)
        log.warning("%s: a result folder of an earlier MicroCrystalNet version (before result-folder markers); "
                    "marked as ours", final)
    if not is_result_folder(final):
        raise OutputFolderError(f"{final} exists and was not written by MicroCrystalNet (it has no {MARKER_NAME} "
                                f"file); MicroCrystalNet never replaces or deletes such a folder: {choose}")
    resolved = final.resolve()
    held_inputs = [str(path) for path in inputs if resolved in Path(path).resolve().parents]
    if held_inputs:
        raise OutputFolderError(f"{final} holds the input(s) {', '.join(held_inputs)}, which replacing it would "
                                f"delete: move them out, or {choose}")
    foreign = sorted(entry.name for entry in final.iterdir() if entry.name not in {*own_names, MARKER_NAME})
    if foreign:
        raise OutputFolderError(f"{final} holds files MicroCrystalNet did not write ({', '.join(foreign)}), which "
                                f"replacing it would delete: move them out, or {choose}")


def remove_result_folder(folder: Path) -> None:
    """Delete a result folder of this program; its marker goes last, so a removal cut short
    leaves a folder still known as ours (removed by the next :func:`recover_leftovers`)."""
    for entry in folder.iterdir():
        if entry.name == MARKER_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (folder / MARKER_NAME).unlink(missing_ok=True)
    folder.rmdir()


def _process_running(host: str, pid: int) -> bool:
    """Whether the process that named a leftover may still be writing it.

    One on another host cannot be checked, so counts as running. A leftover named with this
    process's id is from an earlier process that had the same id: this one writes one folder of
    a name at a time and removes its own leftovers.
    """
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    except (OverflowError, ValueError):  # no process can have this id
        return False
    return True


def _writer_host(leftover: Path) -> str:
    """The host named in a leftover's marker; this host when the marker was cut short
    (a process killed while writing it)."""
    try:
        return str(json.loads((leftover / MARKER_NAME).read_text(encoding="utf-8"))["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return socket.gethostname()


def recover_leftovers(out_dir: Path, name: str | None = None) -> list[str]:
    """Finish or undo the folder swaps that processes now gone left in ``out_dir`` (for result
    folder ``name`` only, when given); returns a notice for each leftover found.

    A ``.previous-`` folder whose result folder is missing is the last complete result: it is
    put back. Every other leftover of ours is removed. A leftover of a running process, or one
    without our marker, is left where it is.
    """
    notices: list[str] = []
    try:
        with os.scandir(out_dir) as listing:  # thousands of result folders: match names before making paths
            matches = sorted(((Path(entry.path), match) for entry in listing
                              if (match := _LEFTOVER.match(entry.name)) and name in (None, match["name"])),
                             key=lambda found: found[0])
    except FileNotFoundError:
        return notices
    for leftover, match in matches:
        if leftover.is_symlink() or not leftover.is_dir():
            continue
        final = out_dir / match["name"]
        host, pid = _writer_host(leftover), int(match["pid"])
        if not is_result_folder(leftover):
            if not any(leftover.iterdir()):  # a process killed right after creating it
                leftover.rmdir()
            else:
                notices.append(f"{leftover} looks like an unfinished result folder but has no {MARKER_NAME} "
                               f"file, so it is left alone: remove it yourself if it is not needed")
        elif _process_running(host, pid):
            if host != socket.gethostname():
                notices.append(f"{leftover} is being written, or was left, by process {pid} on {host}: left "
                               f"alone; remove it yourself if no MicroCrystalNet run is active there")
        elif match["kind"] == "previous" and not final.exists() and not final.is_symlink():
            os.replace(leftover, final)
            fsync_folder(out_dir)
            notices.append(f"{final}: put back the last complete result, which an interrupted run (process "
                           f"{pid}) had moved aside to replace it")
        else:
            remove_result_folder(leftover)
            notices.append(f"{leftover}: removed what an interrupted run (process {pid}) left "
                           f"{'half-written' if match['kind'] == 'partial' else 'after replacing it'}")
    return notices


def _crash_point(point: str) -> None:
    """Tests kill the process at ``point`` (``MICROCRYSTALNET_TEST_CRASH_AT=written``,
    ``previous-moved`` or ``final-placed``) to prove that a rerun recovers: a kill at a random
    moment almost never lands between two renames."""
    if os.environ.get("MICROCRYSTALNET_TEST_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _flush_tree(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_file() and not entry.is_symlink():
            fsync_file(entry)
    fsync_folder(folder)


@contextlib.contextmanager
def result_folder_written(final: Path, own_names: Collection[str], inputs: Sequence[Path] = ()) -> Iterator[Path]:
    """A new, marked folder to write a result folder's files (named in ``own_names``) into;
    when the block ends it is flushed to disk and swapped into place as ``final``.

    Raises :class:`OutputFolderError` when ``final`` may not be replaced (see
    :func:`check_replaceable`; ``inputs``: the files the results come from), and
    :class:`OutputWriteError` when the files cannot be written. If the block raises, nothing at
    ``final`` changes and the new folder is removed.
    """
    out_dir = final.parent
    partial = out_dir / f".{final.name}.partial-{os.getpid()}"
    previous = out_dir / f".{final.name}.previous-{os.getpid()}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for notice in recover_leftovers(out_dir, final.name):
            log.warning("%s", notice)
        check_replaceable(final, own_names, inputs)
        partial.mkdir()
    except OSError as error:
        raise output_write_error(error, final) from error
    try:
        write_marker(partial)
        yield partial
        _crash_point("written")
        _flush_tree(partial)
        if final.exists() or final.is_symlink():
            check_replaceable(final, own_names, inputs)  # again: the analysis took a while
            os.replace(final, previous)
            _crash_point("previous-moved")
        try:
            os.replace(partial, final)
        except OSError:
            if previous.exists():
                os.replace(previous, final)
            raise
        fsync_folder(out_dir)
        _crash_point("final-placed")
        if previous.exists():
            remove_result_folder(previous)
    except OSError as error:
        raise output_write_error(error, final) from error
    finally:
        if partial.exists():
            with contextlib.suppress(OSError):  # what stays is reported and removed by the next run
                remove_result_folder(partial)
