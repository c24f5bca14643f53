"""Installing the Fiji plugin into an existing Fiji.app or ImageJ 1.x folder, and removing it.

What is installed (paths relative to the installation):

* ``plugins/MicroCrystalNet_.jar``: the plugin (Plugins > MicroCrystalNet);
* ``plugins/MicroCrystalNet.properties``: the Python to run and the model folder, which the
  plugin reads at start (``microcrystalnet.fiji.Settings``). Not ImageJ's ``IJ_Prefs.txt``: that
  file belongs to the user, not to one installation (``~/.imagej/``, shared by every ImageJ and
  Fiji of that user), and a running ImageJ rewrites it when it quits, so what an installer wrote
  there could be lost, or outlive the installation;
* ``macros/MicroCrystalNet/*.ijm``: the macros to copy and adapt;
* ``plugins/MicroCrystalNet.install.json``: the manifest, every file and folder the installer
  created, so that uninstalling removes exactly those and nothing else.

Installing again replaces the installed files (idempotent); a file in the way that the installer
did not create is never overwritten: the installation stops and says which.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .fiji_defaults import write_properties
from .imagej import PLUGIN_JAR_NAME, find_plugin_jar
from .weights import MODEL_DIR_VARIABLE

CHECKOUT = Path(__file__).resolve().parents[2]
SETTINGS_NAME = "MicroCrystalNet.properties"
MANIFEST_NAME = "MicroCrystalNet.install.json"
MACRO_FOLDER = Path("macros") / "MicroCrystalNet"


class InstallError(RuntimeError):
    """The plugin cannot be installed or removed here; the message says why and what to do."""


@dataclass(frozen=True)
class InstallSource:
    """What to install: the plugin jar, the macros, and what the plugin should run."""

    plugin_jar: Path
    macros: tuple[Path, ...]
    python: str
    model_dir: Path | None = None


def checkout_source(plugin_jar: str | Path | None = None, python: str | None = None,
                    model_dir: str | Path | None = None) -> InstallSource:
    """What to install from this checkout: its plugin jar (built by scripts/build-plugin) and
    macros; as Python, by default the checkout's ``scripts/python`` (the environment's Python with
    this checkout's package, as ``scripts/mcn --python-path`` prints it), else this Python; as model
    folder, by default ``MICROCRYSTALNET_MODEL_DIR`` if set (else the plugin's Python finds its models
    as it would anyway)."""
    wrapper = CHECKOUT / "scripts" / "python"
    chosen_python = python or (str(wrapper) if wrapper.is_file() else sys.executable)
    folder = model_dir or os.environ.get(MODEL_DIR_VARIABLE) or None
    return InstallSource(find_plugin_jar(plugin_jar), tuple(sorted((CHECKOUT / "macros").glob("*.ijm"))),
                         chosen_python, Path(folder).resolve() if folder else None)


def check_installation(folder: str | Path) -> Path:
    """``folder`` if it is an ImageJ 1.x or Fiji installation (a ``plugins/`` folder beside
    ImageJ's jar: ``ij.jar``, or Fiji's ``jars/ij-*.jar``); else :class:`InstallError`."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InstallError(f"{folder} does not exist or is not a folder; give the folder of your Fiji (Fiji.app) or "
                           "ImageJ (the one holding ij.jar and plugins/)")
    has_ij = (folder / "ij.jar").is_file() or any((folder / "jars").glob("ij-*.jar")) or \
        (folder / "jars" / "ij.jar").is_file()
    if not has_ij or not (folder / "plugins").is_dir():
        missing = " and ".join(part for part, present in (("ImageJ's jar (ij.jar, or Fiji's jars/ij-*.jar)", has_ij),
                                                           ("a plugins/ folder", (folder / "plugins").is_dir()))
                               if not present)
        raise InstallError(f"{folder} is not an ImageJ or Fiji installation: it has no {missing}. Give the folder of "
                           "your Fiji (e.g. ~/Fiji.app) or ImageJ 1.x (the one holding ij.jar and plugins/)")
    return folder


def _manifest(folder: Path) -> dict[str, list[str]]:
    path = folder / "plugins" / MANIFEST_NAME
    if not path.is_file():
        return {"files": [], "folders": []}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        return {"files": list(manifest["files"]), "folders": list(manifest["folders"])}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InstallError(f"{path}: the installation's manifest cannot be read ({error}); without it nothing is "
                           "changed. Remove the MicroCrystalNet files by hand (see the manifest), then install again"
                           ) from error


def install(folder: str | Path, source: InstallSource) -> list[Path]:
    """Install the plugin into the ImageJ/Fiji ``folder``; returns the files written.

    Idempotent: installing again rewrites the same files. Raises :class:`InstallError` for a folder
    that is no installation, or a file in the way that this installer did not create.
    """
    folder = check_installation(folder)
    if not source.plugin_jar.is_file():
        raise InstallError(f"the plugin jar {source.plugin_jar} does not exist; build it with scripts/build-plugin")
    manifest = _manifest(folder)
    settings = {"python": source.python, "model_dir": str(source.model_dir or "")}
    targets: dict[Path, Path | dict[str, str]] = {Path("plugins") / PLUGIN_JAR_NAME: source.plugin_jar,
                                                  Path("plugins") / SETTINGS_NAME: settings}
    targets.update({MACRO_FOLDER / macro.name: macro for macro in source.macros})
    ours = set(manifest["files"])
    in_the_way = [str(folder / path) for path in targets if (folder / path).exists() and str(path) not in ours]
    if in_the_way:
        raise InstallError(f"{', '.join(in_the_way)} exist(s) but were not installed by 'microcrystalnet "
                           "install-fiji' (e.g. a jar copied by hand): move them away and install again; "
                           "nothing was changed")
    folders = set(manifest["folders"])
    for relative in sorted({path.parent for path in targets}):
        missing = [parent for parent in (relative, *relative.parents) if str(parent) != "." and
                   not (folder / parent).exists()]
        for created in reversed(missing):
            (folder / created).mkdir()
            folders.add(str(created))
    written = []
    for relative, content in targets.items():
        target = folder / relative
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            write_properties(target, content, "MicroCrystalNet: what the plugin runs; written by "
                                              "'microcrystalnet install-fiji', removed by its --uninstall")
        written.append(target)
        ours.add(str(relative))
    manifest = {"files": sorted(ours), "folders": sorted(folders)}
    (folder / "plugins" / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return written


def uninstall(folder: str | Path) -> list[Path]:
    """Remove exactly what :func:`install` put into ``folder`` (its manifest's files, then its
    folders if empty, then the manifest); returns what was removed."""
    folder = check_installation(folder)
    manifest_path = folder / "plugins" / MANIFEST_NAME
    if not manifest_path.is_file():
        raise InstallError(f"{folder} has no MicroCrystalNet installation of 'microcrystalnet install-fiji' (no "
                           f"{manifest_path}); nothing was removed")
    manifest = _manifest(folder)
    removed = []
    for relative in manifest["files"]:
        path = folder / relative
        if path.is_file():
            path.unlink()
            removed.append(path)
    for relative in sorted(manifest["folders"], key=lambda name: -len(Path(name).parts)):
        path = folder / relative
        if path.is_dir() and not any(path.iterdir()):  # a folder the user has put files into stays
            path.rmdir()
            removed.append(path)
    manifest_path.unlink()
    removed.append(manifest_path)
    return removed


# --- an ImageJ update site ---------------------------------------------------------------------

UPDATE_SITE_INDEX = "db.xml.gz"


def _skip_hashed_lines(data: bytes) -> bytes:
    """``data`` as the ImageJ Updater reads a .properties file for its checksum: lines starting
    with '#' (java.util.Properties writes the date there) are left out but for their newline."""
    out = bytearray()
    position = 0
    at_line_start = True

    def read() -> int:
        nonlocal position, at_line_start
        character = data[position] if position < len(data) else -1
        position += 1
        if at_line_start:
            if character == ord("#"):
                while character not in (ord("\n"), -1):
                    character = read()
            else:
                at_line_start = False
        elif character == ord("\n"):
            at_line_start = True
        return character

    while (character := read()) != -1:
        out.append(character)
    return bytes(out)


def updater_checksum(relative_path: str, file: Path) -> str:
    """The checksum the ImageJ Updater gives ``file`` installed at ``relative_path``: SHA-1 of the
    path and the bytes for a plain file; for a jar, SHA-1 of its entries sorted by name, each name
    then content, with comment lines of .properties files and the manifest (which holds build
    dates) left out, so a rebuild of the same sources has the same checksum."""
    import hashlib
    import zipfile

    digest = hashlib.sha1()
    if not relative_path.endswith(".jar"):
        digest.update(relative_path.encode("ascii"))
        digest.update(file.read_bytes())
        return digest.hexdigest()
    with zipfile.ZipFile(file) as jar:
        for entry in sorted(jar.infolist(), key=lambda info: info.filename):
            digest.update(entry.filename.encode("ascii"))
            if entry.filename == "META-INF/MANIFEST.MF":
                continue  # the Updater keeps only a Main-Class line, which a plugin jar has not
            content = jar.read(entry)
            digest.update(_skip_hashed_lines(content) if entry.filename.endswith(".properties") else content)
    return digest.hexdigest()


def make_update_site(folder: str | Path, source: InstallSource, timestamp: str | None = None) -> Path:
    """Lay out an ImageJ update site in ``folder`` for a maintainer to upload (e.g. to
    sites.imagej.net): each file as ``<path>-<timestamp>`` (the plugin jar in plugins/, the macros
    in macros/MicroCrystalNet/) and the index ``db.xml.gz`` the ImageJ Updater reads, with each
    file's checksum, timestamp (yyyyMMddHHmmss) and size. The Python and model folder are not part
    of it: each user sets them in Plugins > MicroCrystalNet > Settings..."""
    import gzip
    import time
    from xml.sax.saxutils import quoteattr

    folder = Path(folder)
    stamp = timestamp or time.strftime("%Y%m%d%H%M%S")
    files = {f"plugins/{PLUGIN_JAR_NAME}": source.plugin_jar}
    files.update({f"{MACRO_FOLDER.as_posix()}/{macro.name}": macro for macro in source.macros})
    records = []
    for relative, file in files.items():
        target = folder / f"{relative}-{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
        records.append(f"    <plugin filename={quoteattr(relative)}>\n"
                       f"        <version checksum=\"{updater_checksum(relative, file)}\" timestamp=\"{stamp}\" "
                       f"filesize=\"{file.stat().st_size}\">\n"
                       "            <description>MicroCrystalNet: segment, classify and measure microcrystals in "
                       "SEM images (Python backend; see its README)</description>\n"
                       "        </version>\n    </plugin>\n")
    index = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pluginRecords>\n" + "".join(records) + "</pluginRecords>\n"
    with gzip.open(folder / UPDATE_SITE_INDEX, "wt", encoding="utf-8") as stream:
        stream.write(index)
    return folder / UPDATE_SITE_INDEX
