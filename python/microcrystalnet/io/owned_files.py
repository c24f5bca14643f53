"""Files this program writes into folders of the user's, replaced only while they are as it wrote them.

Result folders carry a marker of their own (:mod:`.result_folder`). Other outputs go straight into
a folder the user names: the batch tables beside the result folders, the demo's scene and report,
a Noise2Void model, denoised images. Each such folder gets a ledger, ``.microcrystalnet-files.json``:
the name and sha256 of every file this program wrote there. A file at an output's path that the
ledger does not list with its present content (the user's own file, or one of ours edited since) is
never replaced: :func:`check_replaceable_files` raises ``OutputFolderError`` naming it, and is
called before any long work so that nothing is computed in vain.

Whole folders this program fills (a classifier's training run, an evaluation, class folders of
patches) are claimed by :func:`claim_output_folder`: new, empty, or claimed before (holding the
ledger), else refused.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..weights import file_sha256
from .atomic import replaced_atomically
from .result_folder import OutputFolderError

LEDGER_NAME = ".microcrystalnet-files.json"
_CHOOSE = "choose another --out, or rename or move it away"


def _ledger(folder: Path) -> dict[str, str]:
    """Name -> sha256 of the files this program wrote in ``folder`` ({} without a readable ledger)."""
    try:
        entries = json.loads((folder / LEDGER_NAME).read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return entries if isinstance(entries, dict) else {}


def is_own_file(path: Path) -> bool:
    """Whether ``path`` is a plain file (not a link) that this program wrote and nobody changed."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False
    recorded = _ledger(path.parent).get(path.name)
    try:
        return recorded is not None and recorded == file_sha256(path)
    except OSError:
        return False


def check_replaceable_files(paths: Iterable[Path]) -> None:
    """Raise ``OutputFolderError`` when any of ``paths`` holds something this program may not
    replace: anything there that is not a file it wrote, unchanged since."""
    foreign = [str(path) for path in map(Path, paths)
               if (path.exists() or path.is_symlink()) and not is_own_file(path)]
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
        _write_ledger(folder, {**_ledger(folder), **{path.name: file_sha256(path) for path in written}})


def _write_ledger(folder: Path, entries: dict[str, str]) -> None:
    content = {"program": "MicroCrystalNet", "note": "files MicroCrystalNet wrote here (name: sha256); "
               "it replaces only these, and only while unchanged", "files": dict(sorted(entries.items()))}
    with replaced_atomically(folder / LEDGER_NAME) as partial:
        partial.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")


@contextlib.contextmanager
def own_file(path: Path) -> Iterator[Path]:
    """A path to write ``path`` at (atomically, :func:`.atomic.replaced_atomically`): refused
    unless nothing is there or a file this program wrote; entered in the ledger once written."""
    path = Path(path)
    check_replaceable_files([path])
    with replaced_atomically(path) as partial:
        yield partial
    record_own_files([path])


def claim_output_folder(folder: Path, *, earlier_run_sign: str | None = None) -> Path:
    """Create or take ``folder`` for a program's output written whole into it: it may be new,
    empty, or claimed before (it holds the ledger; also, for folders of versions before the
    ledger, one that holds ``earlier_run_sign``). Raises ``OutputFolderError`` otherwise."""
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OutputFolderError(f"{folder} exists and is not a folder; MicroCrystalNet never replaces it: {_CHOOSE}")
    claimed = (folder / LEDGER_NAME).is_file() or (earlier_run_sign is not None
                                                    and (folder / earlier_run_sign).is_file())
    if folder.is_dir() and not claimed and any(folder.iterdir()):
        raise OutputFolderError(f"{folder} holds files MicroCrystalNet did not write; it writes only into a new or "
                                f"empty folder, or one it wrote before: {_CHOOSE}")
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / LEDGER_NAME).is_file():
        _write_ledger(folder, {})
    return folder
