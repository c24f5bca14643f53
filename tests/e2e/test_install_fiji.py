"""``microcrystalnet install-fiji``: into a real ImageJ 1.x folder, started afterwards, and out again."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tifffile

from microcrystalnet.imagej import find_ij_jar
from microcrystalnet.synth import SceneSpec, render_scene

pytestmark = pytest.mark.imagej


def install_fiji(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "microcrystalnet", "install-fiji", *arguments], capture_output=True,
                          text=True, timeout=120)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file (its sha256) and folder below ``folder``."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            for path in sorted(folder.rglob("*"))}


@pytest.fixture
def imagej_folder(tmp_path) -> Path:
    """A fresh ImageJ 1.x as its zip unpacks: ij.jar, plugins/, macros/ with ImageJ's own files."""
    folder = tmp_path / "ImageJ"
    (folder / "plugins").mkdir(parents=True)
    (folder / "macros").mkdir()
    shutil.copyfile(find_ij_jar(), folder / "ij.jar")
    (folder / "macros" / "StartupMacros.txt").write_text("// ImageJ's own\n")
    (folder / "plugins" / "README.txt").write_text("ImageJ's own\n")
    return folder


CHECK_MACRO = """
List.setCommands;
print("COMMAND " + List.get("Analyze Crystals..."));
print("PYTHON " + call("microcrystalnet.fiji.Settings.python"));
open(getArgument());
run("Analyze Crystals...", "roi_manager=[Replace existing ROIs] save_results_to=[" + File.getParent(getArgument())
    + "/saved]");
print("ERROR [" + call("microcrystalnet.fiji.AnalyzeCrystals.lastError") + "]");
"""


def test_install_into_imagej_start_it_reinstall_and_uninstall_exactly(x_display, plugin_jar, imagej_folder, tmp_path,
                                                                     reference_model_path):
    before = snapshot(imagej_folder)
    done = install_fiji(str(imagej_folder), "--python", sys.executable, "--model-dir",
                        str(reference_model_path.parent), "--plugin-jar", str(plugin_jar))
    assert done.returncode == 0, done.stderr
    installed = snapshot(imagej_folder)
    assert {"plugins/MicroCrystalNet_.jar", "plugins/MicroCrystalNet.properties", "plugins/MicroCrystalNet.install.json",
            "macros/MicroCrystalNet/analyze_current_image.ijm", "macros/MicroCrystalNet/batch_analyze_folder.ijm"} \
        <= set(installed)
    assert all(installed[path] == digest for path, digest in before.items())  # ImageJ's own files untouched

    again = install_fiji(str(imagej_folder), "--python", sys.executable, "--model-dir",
                         str(reference_model_path.parent), "--plugin-jar", str(plugin_jar))
    assert again.returncode == 0, again.stderr
    assert snapshot(imagej_folder) == installed  # idempotent

    # that ImageJ, started as its launcher does (in its folder), with nothing set in the environment: the
    # command is in its menu, and its external backend runs the installed Python with the installed models
    image = tmp_path / "scene.tif"
    size = 0.04
    tifffile.imwrite(image, render_scene(SceneSpec(shape=(256, 256), pixel_size_um=size, seed=5)).image, imagej=True,
                     resolution=(1 / size, 1 / size), metadata={"unit": "um"})
    macro = tmp_path / "check.ijm"
    macro.write_text(CHECK_MACRO)
    env = {key: value for key, value in os.environ.items()
           if key not in ("MICROCRYSTALNET_PYTHON", "MICROCRYSTALNET_MODEL_DIR")}
    env["MICROCRYSTALNET_CACHE_DIR"] = str(tmp_path / "empty-cache")  # no model but the installed folder's
    started = subprocess.run(["java", f"-Duser.home={tmp_path / 'user'}", "-jar", "ij.jar", "-batch", str(macro),
                              str(image)], cwd=imagej_folder, capture_output=True, text=True, env=env, timeout=600)
    log = started.stdout + started.stderr
    assert "COMMAND microcrystalnet.fiji.AnalyzeCrystals" in log, log
    assert f"PYTHON {sys.executable}" in log, log
    assert "ERROR []" in log, log
    assert int(log.split(" crystals in scene.tif")[0].split()[-1]) > 0, log
    model_file = json.loads((tmp_path / "saved" / "scene" / "summary.json").read_text())["model"]["file"]
    assert Path(model_file).parent == reference_model_path.parent  # the installed model folder

    done = install_fiji(str(imagej_folder), "--uninstall")
    assert done.returncode == 0, done.stderr
    assert snapshot(imagej_folder) == before  # exactly as it was


def test_install_refuses_what_is_no_imagej_and_files_it_did_not_create(plugin_jar, imagej_folder, tmp_path):
    other = tmp_path / "Documents"
    other.mkdir()
    done = install_fiji(str(other), "--plugin-jar", str(plugin_jar))
    assert done.returncode == 2 and "is not an ImageJ or Fiji installation" in done.stderr, done.stderr
    assert not any(other.iterdir())

    by_hand = imagej_folder / "plugins" / "MicroCrystalNet_.jar"  # as the README used to say: copied by hand
    by_hand.write_bytes(b"an older jar")
    before = snapshot(imagej_folder)
    done = install_fiji(str(imagej_folder), "--plugin-jar", str(plugin_jar))
    assert done.returncode == 2 and "were not installed by 'microcrystalnet install-fiji'" in done.stderr
    assert snapshot(imagej_folder) == before
    done = install_fiji(str(imagej_folder), "--uninstall")
    assert done.returncode == 2 and "nothing was removed" in done.stderr
    assert by_hand.read_bytes() == b"an older jar"


def test_install_into_a_fiji_app_layout(plugin_jar, tmp_path):
    fiji = tmp_path / "Fiji.app"
    (fiji / "jars").mkdir(parents=True)
    (fiji / "plugins").mkdir()
    (fiji / "jars" / "ij-1.54f.jar").write_bytes(b"")
    before = snapshot(fiji)
    done = install_fiji(str(fiji), "--plugin-jar", str(plugin_jar), "--python", "/opt/mcn/python")
    assert done.returncode == 0, done.stderr
    assert (fiji / "plugins" / "MicroCrystalNet_.jar").read_bytes() == plugin_jar.read_bytes()
    assert "python=/opt/mcn/python" in (fiji / "plugins" / "MicroCrystalNet.properties").read_text()
    assert (fiji / "macros" / "MicroCrystalNet" / "batch_analyze_folder.ijm").is_file()  # macros/ made for it
    assert install_fiji(str(fiji), "--uninstall").returncode == 0
    assert snapshot(fiji) == before


def test_update_site_has_the_files_and_the_index_the_imagej_updater_reads(plugin_jar, tmp_path):
    import gzip
    import xml.etree.ElementTree as ElementTree

    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "fiji-update-site", str(site), "--plugin-jar",
                           str(plugin_jar)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    records = ElementTree.fromstring(gzip.decompress((site / "db.xml.gz").read_bytes()))
    assert records.tag == "pluginRecords"
    files = {plugin.get("filename"): plugin.find("version") for plugin in records.findall("plugin")}
    assert {"plugins/MicroCrystalNet_.jar", "macros/MicroCrystalNet/analyze_current_image.ijm",
            "macros/MicroCrystalNet/batch_analyze_folder.ijm"} == set(files)
    for filename, version in files.items():
        uploaded = site / f"{filename}-{version.get('timestamp')}"  # as the Updater downloads it
        assert len(version.get("timestamp")) == 14 and uploaded.is_file()
        assert int(version.get("filesize")) == uploaded.stat().st_size
    assert (site / f"plugins/MicroCrystalNet_.jar-{files['plugins/MicroCrystalNet_.jar'].get('timestamp')}"
            ).read_bytes() == plugin_jar.read_bytes()
    macro = "macros/MicroCrystalNet/analyze_current_image.ijm"
    expected = hashlib.sha1(macro.encode() + (Path(__file__).parents[2] / "macros" / macro.split("/")[-1]).read_bytes())
    assert files[macro].get("checksum") == expected.hexdigest()  # a plain file: SHA-1 of its path and bytes

    again = subprocess.run([sys.executable, "-m", "microcrystalnet", "fiji-update-site", str(site)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_a_jars_updater_checksum_ignores_build_dates_but_not_content(tmp_path):
    """As the ImageJ Updater checksums jars: a rebuild (new manifest, new date comment in a
    .properties file) is the same version; changed classes or settings are a new one."""
    import zipfile

    from microcrystalnet.fiji_install import updater_checksum

    def jar(name: str, manifest: str, properties: str, class_bytes: bytes) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("META-INF/MANIFEST.MF", manifest)
            archive.writestr("microcrystalnet/fiji/defaults.properties", properties)
            archive.writestr("microcrystalnet/fiji/AnalyzeCrystals.class", class_bytes)
        return path

    first = jar("a.jar", "Manifest-Version: 1.0\nCreated-By: 17\n", "#Mon Nov 28 2026\nkey=1\n", b"\xca\xfe")
    rebuilt = jar("b.jar", "Manifest-Version: 1.0\nCreated-By: 21\n", "#Tue Nov 29 2026\nkey=1\n", b"\xca\xfe")
    changed = jar("c.jar", "Manifest-Version: 1.0\n", "#Mon Nov 28 2026\nkey=2\n", b"\xca\xfe")
    path = "plugins/MicroCrystalNet_.jar"
    assert updater_checksum(path, first) == updater_checksum(path, rebuilt)
    assert updater_checksum(path, first) != updater_checksum(path, changed)
    assert len(updater_checksum(path, first)) == 40
