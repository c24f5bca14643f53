"""Files this program writes into folders of the user's, replaced only while they are as it wrote them.

Result folders carry a marker of their own (:mod:`.result_folder`). Other outputs go straight into
a folder the user names: the batch tables beside the result folders, the demo's scene and report,
a Noise2Void model, denoised images. Each such folder gets a ledger, ``.microcrystalnet-files.json``:
the name and sha256 of every file this program wrote there. A file at an output's path that the
ledger does not list with its present content (the user's own file, or one of ours edited since) is
never replaced: :func:`check_replaceable_files` raises ``OutputFolderError`` naming it, and is
called before any long work so that nothing is computed in vain.

A file is entered with its new checksum beside the old one before it is renamed into place, and
the old one is dropped after: a write cut short at any moment leaves a file the ledger knows.
Processes writing into one folder at once take turns at the ledger (``fcntl.flock``).

Whole folders this program fills (a classifier's training run, an evaluation, class folders of
patches) are claimed by :func:`claim_output_folder`: new, empty, or claimed before (holding the
ledger), else refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..weights import file_sha256
from .atomic import replaced_atomically
from .result_folder import OutputFolderError

LEDGER_NAME = ".microcrystalnet-files.json"
_CHOOSE = "choose another --out, or rename or move it away"

#: whether a file at an output's path that the ledger does not name is one an earlier version of
#: this program wrote there (it is then taken as ours)
EarlierVersionTest = Callable[[Path], bool]


def _entries(content: str) -> dict[str, list[str]]:
    """Name -> the sha256s accepted for it, from a ledger's text ({} if unreadable)."""
    try:
        files = json.loads(content).get("files", {})
    except (ValueError, AttributeError):
        return {}
    if not isinstance(files, dict):
        return {}
    return {str(name): [digest] if isinstance(digest, str) else [str(d) for d in digest]
            for name, digest in files.items() if isinstance(digest, (str, list))}


def _ledger(folder: Path) -> dict[str, list[str]]:
    try:
        return _entries((folder / LEDGER_NAME).read_text(encoding="utf-8"))
    except OSError:
        return {}


@contextlib.contextmanager
def _ledger_for_change(folder: Path) -> Iterator[dict[str, list[str]]]:
    """The ledger of ``folder``, held by this process alone, to change; written back when the block ends."""
    descriptor = os.open(folder / LEDGER_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    with os.fdopen(descriptor, "r+", encoding="utf-8") as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        entries = _entries(stream.read())
        yield entries
        content = {"program": "MicroCrystalNet", "note": "files MicroCrystalNet wrote here (name: sha256); it "
                   "replaces only these, and only while unchanged", "files": dict(sorted(entries.items()))}
        stream.seek(0)
        stream.truncate()
        stream.write(json.dumps(content, indent=1) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def is_own_file(path: Path) -> bool:
    """Whether ``path`` is a plain file (not a link) that this program wrote and nobody changed."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False
    accepted = _ledger(path.parent).get(path.name)
    try:
        return accepted is not None and file_sha256(path) in accepted
    except OSError:
        return False


def json_object_with(*keys: str) -> EarlierVersionTest:
    """An :data:`EarlierVersionTest`: the file holds a JSON object with all of ``keys`` (how a
    settings or scores file an earlier version wrote is recognised)."""

    def test(path: Path) -> bool:
        try:
            content = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return False
        return isinstance(content, dict) and all(key in content for key in keys)

    return test


def table_with_header(start: str) -> EarlierVersionTest:
    """An :data:`EarlierVersionTest`: the file is a CSV table whose header starts with ``start``."""

    def test(path: Path) -> bool:
        try:
            with open(path, encoding="utf-8", newline="") as stream:
                return stream.readline().startswith(start)
        except (OSError, UnicodeDecodeError):
            return False

    return test


def check_replaceable_files(paths: Iterable[Path], *, earlier_version: EarlierVersionTest | None = None) -> None:
    """Raise ``OutputFolderError`` when any of ``paths`` holds something this program may not
    replace: anything there that is not a file it wrote, unchanged since. A file the ledger does
    not name (written before there was one) counts as ours when ``earlier_version`` recognises it."""
    foreign = []
    for path in map(Path, paths):
        if not (path.exists() or path.is_symlink()) or is_own_file(path):
            continue
        older = (earlier_version is not None and path.name not in _ledger(path.parent)
                 and not path.is_symlink() and path.is_file() and earlier_version(path))
        if not older:
            foreign.append(str(path))
    if foreign:
        raise OutputFolderError(
            f"{', '.join(foreign)} {'exists' if len(foreign) == 1 else 'exist'} and "
            f"{'was' if len(foreign) == 1 else 'were'} not written by MicroCrystalNet (or changed since); "
            f"MicroCrystalNet never replaces such a file: {_CHOOSE}")


def record_own_files(paths: Iterable[Path]) -> None:
    """Enter the files at ``paths`` (as they are now) in their folders' ledgers."""
    by_folder: dict[Path, list[Path]] = {}
    for path in map(Path, paths):
        if path.is_file() and not path.is_symlink():
            by_folder.setdefault(path.parent, []).append(path)
    for folder, written in by_folder.items():
        with _ledger_for_change(folder) as entries:
            entries.update({path.name: [file_sha256(path)] for path in written})


@contextlib.contextmanager
def own_file(path: Path, *, earlier_version: EarlierVersionTest | None = None) -> Iterator[Path]:
    """A path to write ``path`` at (atomically, :func:`.atomic.replaced_atomically`): refused
    unless nothing is there or a file this program wrote; entered in the ledger (new checksum
    before the rename, old one dropped after)."""
    path = Path(path)
    check_replaceable_files([path], earlier_version=earlier_version)
    with replaced_atomically(path) as partial:
        yield partial
        digest = file_sha256(partial)
        with _ledger_for_change(path.parent) as entries:
            entries[path.name] = [*entries.get(path.name, []), digest]
    with _ledger_for_change(path.parent) as entries:
        entries[path.name] = [digest]


def claim_output_folder(folder: Path, *, earlier_run_sign: str | None = None) -> Path:
    """Create or take ``folder`` for a program's output written whole into it: it may be new,
    empty, or claimed before (it holds the ledger; also, for folders of versions before the
    ledger, one that holds ``earlier_run_sign``). Raises ``OutputFolderError`` otherwise."""
    folder = Path(folder)
    check_output_folder(folder, earlier_run_sign=earlier_run_sign)
    folder.mkdir(parents=True, exist_ok=True)
    with _ledger_for_change(folder):
        pass  # the ledger marks the folder as ours
    return folder


def check_output_folder(folder: Path, *, earlier_run_sign: str | None = None) -> None:
    """Raise ``OutputFolderError`` unless :func:`claim_output_folder` may take ``folder`` (nothing
    is created: to check before long work)."""
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OutputFolderError(f"{folder} exists and is not a folder; MicroCrystalNet never replaces it: {_CHOOSE}")
    claimed = (folder / LEDGER_NAME).is_file() or (earlier_run_sign is not None
                                                    and (folder / earlier_run_sign).is_file())
    if folder.is_dir() and not claimed and any(folder.iterdir()):
        raise OutputFolderError(f"{folder} holds files MicroCrystalNet did not write; it writes only into a new or "
                                f"empty folder, or one it wrote before: {_CHOOSE}")
