"""The bridge to ImageJ: the only module that imports scyjava and JPype.

Everything on the Java side uses the ImageJ1 API (ImagePlus, RoiManager, ResultsTable, Roi),
which is the same in a plain ImageJ 1.x and inside Fiji. This module starts a JVM with an
ImageJ 1.x jar in this process (scyjava/JPype) and hands out Java classes.

scyjava would otherwise download a Java runtime on first use; here it always uses the Java
installed on the machine (``JAVA_HOME`` or ``java`` on PATH), which works offline.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .model_cache import ModelCache

IJ_JAR_VARIABLE = "MICROCRYSTALNET_IJ_JAR"
DEFAULT_IJ_JARS = (Path("/usr/share/java/ij.jar"),)


class ImageJUnavailableError(RuntimeError):
    """ImageJ or Java cannot be found or started; the message says what to install."""


def _first_file(explicit: str | Path | None, variable: str, defaults: tuple[Path, ...], missing: str) -> Path:
    """The first existing file of: ``explicit``, the path in environment ``variable``, ``defaults``."""
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get(variable):
        candidates.append(Path(os.environ[variable]))
    candidates += defaults
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ImageJUnavailableError(f"{missing} (looked at {', '.join(map(str, candidates))})")


def find_ij_jar(explicit: str | Path | None = None) -> Path:
    """The ImageJ 1.x jar: explicit path, ``MICROCRYSTALNET_IJ_JAR``, or Debian's libij-java."""
    return _first_file(explicit, IJ_JAR_VARIABLE, DEFAULT_IJ_JARS,
                       "no ImageJ 1.x jar found. Install it (Debian/Ubuntu: apt-get install libij-java) or set "
                       f"{IJ_JAR_VARIABLE} to an ij.jar")


def start_imagej1(ij_jar: str | Path | None = None, headless: bool = True, plugin_jar: str | Path | None = None,
                  home: str | Path | None = None, jvm_options: tuple[str, ...] = ()) -> Any:
    """Start a JVM with ImageJ 1.x in this process (once) and return the ``ij.IJ`` class.

    ``headless``: no display needed, but window classes (RoiManager's frame) are unavailable;
    give a display (e.g. Xvfb and ``DISPLAY``) and ``headless=False`` for those.
    ``plugin_jar``: the MicroCrystalNet plugin, put on the class path (so a backend registered
    from Python is the one the command sees) and in the plugins folder of ``home`` (so ImageJ's
    menus list its commands); ``home`` defaults to a temporary folder, removed when Python exits.
    ``jvm_options``: more JVM options, e.g. ``-Duser.home=...`` to keep ImageJ's preferences elsewhere.
    """
    import scyjava

    if scyjava.jvm_started():
        return scyjava.jimport("ij.IJ")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ImageJUnavailableError("Java is not installed (apt-get install default-jdk-headless, or set JAVA_HOME)")
    scyjava.config.set_java_constraints(fetch="never")
    scyjava.config.add_classpath(str(find_ij_jar(ij_jar)))
    if plugin_jar is not None:
        jar = Path(plugin_jar)
        scyjava.config.add_classpath(str(jar))
        if home is None:
            home = tempfile.mkdtemp(prefix="microcrystalnet-ij-")
            atexit.register(shutil.rmtree, home, ignore_errors=True)
        folder = plugins_folder_with(jar, Path(home))
        scyjava.config.add_option(f"-Dplugins.dir={folder}")
    if headless:
        scyjava.config.add_option("-Djava.awt.headless=true")
    for option in jvm_options:
        scyjava.config.add_option(option)
    scyjava.start_jvm()
    return scyjava.jimport("ij.IJ")


def jimport(name: str) -> Any:
    """A Java class of the running JVM (see :func:`start_imagej1`)."""
    import scyjava

    return scyjava.jimport(name)


# --- the plugin and the in-process backend --------------------------------------------------

PLUGIN_JAR_VARIABLE = "MICROCRYSTALNET_PLUGIN_JAR"
PLUGIN_JAR_NAME = "MicroCrystalNet_.jar"


def find_plugin_jar(explicit: str | Path | None = None) -> Path:
    """The Fiji plugin jar: explicit path, ``MICROCRYSTALNET_PLUGIN_JAR``, or this checkout's build."""
    checkout_build = Path(__file__).resolve().parents[2] / "fiji_plugin" / "target" / PLUGIN_JAR_NAME
    return _first_file(explicit, PLUGIN_JAR_VARIABLE, (checkout_build,),
                       "the MicroCrystalNet plugin jar was not found. Build it with scripts/build-plugin, or set "
                       f"{PLUGIN_JAR_VARIABLE}")


def plugins_folder_with(jar: Path, folder: Path) -> Path:
    """An ImageJ home folder whose ``plugins/`` holds ``jar`` (ImageJ reads its menus from there)."""
    plugins = folder / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    target = plugins / jar.name
    if not target.exists():
        target.symlink_to(jar.resolve())
    return folder


def imageplus_pixels(image: Any) -> "np.ndarray":
    """The pixels of an ImageJ ``ImagePlus`` (current slice) as a numpy array (Y, X) or (Y, X, 3).

    8-bit -> uint8, 16-bit -> uint16, 32-bit -> float32, RGB -> uint8 (Y, X, 3).
    """
    import numpy as np

    processor = image.getProcessor()
    data = np.array(processor.getPixels())  # JPype hands primitive arrays over through the buffer protocol
    return imagej_pixels_as_array(data, int(image.getBitDepth()), int(processor.getHeight()),
                                  int(processor.getWidth()))


def imagej_pixels_as_array(data: Any, bit_depth: int, height: int, width: int) -> "np.ndarray":
    """ImageJ's pixel array of one slice (byte, short, float or packed-RGB int values, row by
    row; any buffer) as numpy (Y, X) or (Y, X, 3): 8-bit -> uint8, 16-bit -> uint16, 32-bit ->
    float32, RGB -> uint8 (Y, X, 3)."""
    import numpy as np

    data = np.asarray(data)
    if bit_depth == 8:
        return data.view(np.uint8).reshape(height, width)
    if bit_depth == 16:
        return data.view(np.uint16).reshape(height, width)
    if bit_depth == 32:
        return data.astype(np.float32, copy=False).reshape(height, width)
    packed = data.view(np.uint32).reshape(height, width)
    return np.stack([(packed >> shift) & 0xFF for shift in (16, 8, 0)], axis=-1).astype(np.uint8)


def imageplus_palette(image: Any) -> "np.ndarray | None":
    """The colour table, (256, 3) uint8 R, G, B, of an 8-bit ``ImagePlus`` whose LUT is not
    ImageJ's gray ramp (a palette image, e.g. an SEM's TIFF with a colour map), else None.

    ImageJ keeps such an image's pixels as table indices; the command line converts them to gray
    through the table (:func:`microcrystalnet.io.palette_to_gray`), and so must the Fiji command."""
    import numpy as np
    from jpype import JArray, JByte

    processor = image.getProcessor()
    if int(image.getBitDepth()) != 8 or processor.isDefaultLut():
        return None
    model = processor.getColorModel()
    channels = []
    for read in (model.getReds, model.getGreens, model.getBlues):
        entries = JArray(JByte)(int(model.getMapSize()))
        read(entries)
        channels.append(np.array(entries, dtype=np.int8).view(np.uint8))
    return np.stack(channels, axis=1)


class InProcessAnalysis:
    """What the in-process backend does for the Fiji command, without any Java in it.

    Keeps loaded models (classifier, learned segmenter, SAM, Noise2Void) between calls in
    ``models`` (:class:`microcrystalnet.model_cache.ModelCache`), so only the first call with a
    model's settings loads it. By default Noise2Void runs in a worker process of its own
    (:class:`microcrystalnet.preprocess.Noise2VoidProcess`): PyTorch beside ImageJ's JVM crashed
    the process in testing. The Fiji command's resident worker (:mod:`microcrystalnet.fiji_worker`)
    has no JVM beside it: its cache loads Noise2Void in the worker itself.
    """

    def __init__(self, models: "ModelCache | None" = None) -> None:
        from .model_cache import ModelCache
        from .preprocess import Noise2VoidProcess

        self.models = models or ModelCache(load_n2v=Noise2VoidProcess)

    def analyze(self, pixels: "np.ndarray", title: str, pixel_size_um: float | None, settings_json: str,
                report: Callable[[str, float], None], overlay: bool = False,
                metadata_file: str | None = None, palette: "np.ndarray | None" = None) -> Path:
        """Analyse pixels handed over by ImageJ; return the result folder (inside a new temporary folder).
        ``pixel_size_um``: ImageJ's calibration (None: uncalibrated); the settings' input.pixel_size_um
        overrides it, as on the command line. ``metadata_file``: the file an uncalibrated image
        was opened from, whose instrument metadata gives its pixel size, as the command line reads
        it. ``palette``: the colour table of a palette image, whose ``pixels`` are its indices
        (:func:`imageplus_palette`). ``overlay``: also write overlay.png (wanted when the user saves
        the results)."""
        from .config import AnalysisConfig
        from .io import instrument_calibration, sem_image_from_array
        from .io.image_file import palette_to_gray
        from .io.outputs import write_analysis
        from .pipeline import analyze_image

        config = AnalysisConfig.from_dict(json.loads(settings_json))
        source, bar_row, notices = "ImageJ calibration", None, []
        if palette is not None:
            pixels, notice = palette_to_gray(pixels, palette)
            notices.append(notice)
        if config.input.pixel_size_um is not None:
            pixel_size_um, source = config.input.pixel_size_um, "given by the user"
        elif pixel_size_um is None and metadata_file:
            calibration = instrument_calibration(metadata_file, pixels.shape[:2])
            pixel_size_um, source, bar_row = calibration.pixel_size_um, calibration.source, calibration.data_bar_row
            notices.append(calibration.notice)
        image = sem_image_from_array(pixels, Path(title), pixel_size_um, source, config.input.exclude_data_bar,
                                     bar_row, notices)
        models = self.models.models(config)
        analysis = analyze_image(image, models.classifier, config, report, models.segmenter, models.n2v)
        return write_analysis(Path(tempfile.mkdtemp(prefix="microcrystalnet-")), analysis, overlay=overlay)

    def denoise(self, pixels: "np.ndarray", title: str, pixel_size_um: float | None, model_path: str,
                tile_px: int) -> Path:
        """Noise2Void on pixels handed over by ImageJ, as ``microcrystalnet n2v denoise`` does it;
        return a temporary calibrated 32-bit TIFF."""
        from .config import InputConfig
        from .io import sem_image_from_array, to_unit_range
        from .io.outputs import write_calibrated_tiff
        from .preprocess import denoise_as_trained

        image = sem_image_from_array(pixels, Path(title), pixel_size_um, "ImageJ calibration", exclude_data_bar=False)
        denoiser = self.models.n2v(model_path)
        denoised = denoise_as_trained(denoiser, to_unit_range(image.analysed_pixels),
                                      image.pixel_size_um or InputConfig().assumed_pixel_size_um, tile_px)
        target = Path(tempfile.mkdtemp(prefix="microcrystalnet-")) / "image_n2v.tif"
        write_calibrated_tiff(target, denoised, image.pixel_size_um)
        return target


def user_error_types() -> tuple[type[Exception], ...]:
    """The errors of an analysis whose message is for the user as it stands (the image, its output
    folder, the settings, a model); any other is a bug, whose details belong in a log."""
    from .io import ImageInputError
    from .io.result_folder import OutputFolderError, OutputWriteError

    return (ImageInputError, OutputFolderError, OutputWriteError, ValueError, RuntimeError)


_registered: list[Any] = []  # keeps the proxy alive while Java holds it


def register_backend() -> Any:
    """Register this Python session as the Fiji command's in-process backend (JVM must be running)."""
    import platform

    from jpype import JImplements, JOverride

    from .io import ImageInputError, pixel_size_from_unit

    core = InProcessAnalysis()
    user_errors = user_error_types()
    java_exception = jimport("java.lang.Exception")
    cancelled_exception = jimport("microcrystalnet.fiji.CancelledException")
    file_calibration = jimport("microcrystalnet.fiji.FileCalibration")

    class _Cancelled(Exception):
        pass

    def pixel_size(image) -> float | None:
        calibration = image.getCalibration()
        return pixel_size_from_unit(float(calibration.pixelWidth), str(calibration.getUnit())) \
            if calibration.scaled() else None

    @JImplements("microcrystalnet.fiji.Backend")
    class PythonBackend:
        @JOverride
        def analyze(self, image, settings_json, overlay, progress):
            def report(stage: str, fraction: float) -> None:
                if progress.isCancelled():
                    raise _Cancelled()
                progress.update(float(fraction), stage)

            try:
                metadata_file = file_calibration.metadataFile(image)
                folder = core.analyze(imageplus_pixels(image), str(image.getTitle()), pixel_size(image),
                                      str(settings_json), report, bool(overlay),
                                      None if metadata_file is None else str(metadata_file), imageplus_palette(image))
            except _Cancelled:
                raise cancelled_exception() from None
            except user_errors as error:
                raise java_exception(str(error)) from None
            return str(folder)

        @JOverride
        def denoise(self, image, model_path, tile_size, progress):
            progress.update(0.0, "Noise2Void")
            try:
                tiff = core.denoise(imageplus_pixels(image), str(image.getTitle()), pixel_size(image), str(model_path),
                                    int(tile_size))
            except (ImageInputError, ValueError, RuntimeError) as error:
                raise java_exception(str(error)) from None
            return str(tiff)

        @JOverride
        def describe(self):
            return f"in-process Python {platform.python_version()}"

    backend = PythonBackend()
    jimport("microcrystalnet.fiji.BackendRegistry").register(backend)
    _registered[:] = [backend]
    return backend


def start_fiji(fiji: str | Path, headless: bool = False, plugin_jar: str | Path | None = None) -> Any:
    """Start an existing Fiji installation in this process with pyimagej and return ``ij.IJ``.

    The plugin jar is copied into ``Fiji.app/plugins`` first if it is not there (pyimagej puts
    that folder's jars on the class path, so the in-process backend registry is shared).
    """
    fiji = Path(fiji)
    if not (fiji / "jars").is_dir() or not (fiji / "plugins").is_dir():
        raise ImageJUnavailableError(f"{fiji} is not a Fiji installation (no jars/ and plugins/ folders in it)")
    installed = fiji / "plugins" / PLUGIN_JAR_NAME
    if not installed.exists():
        shutil.copy2(find_plugin_jar(plugin_jar), installed)
    import imagej

    import scyjava

    # pyimagej guesses the Java version before starting it, and with fetch "never" its guess fails
    # (UnboundLocalError in imagej._guess_java_version). "auto" with the installed Java's version
    # gives it the right answer and makes scyjava use that Java, offline; it would download one
    # only if none were installed, which system_java_major_version has ruled out.
    scyjava.config.set_java_constraints(fetch="auto", version=str(system_java_major_version()))
    logging.getLogger("scyjava._jdk_fetch").setLevel(logging.WARNING)  # "Fetching zulu-jre" even when nothing is
    try:
        imagej.init(str(fiji), mode="headless" if headless else "interactive")
    except Exception as error:  # pyimagej, jgo, JPype: whatever they raise, the user needs the same advice
        raise ImageJUnavailableError(
            f"pyimagej could not start the Fiji at {fiji}: {type(error).__name__}: {error}. It needs a complete "
            "Fiji.app (and, on its first start, network access to maven.scijava.org for pyimagej's own jars); "
            "without one, start ImageJ 1.x with 'microcrystalnet imagej' (no --fiji), or install the plugin jar into "
            "your Fiji and use its external backend") from error
    return jimport("ij.IJ")


def system_java_major_version() -> int:
    """The major version of the installed Java (``JAVA_HOME``'s, else ``java`` on PATH): 8, 11, 17, ..."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).is_file():
        raise ImageJUnavailableError("Java is not installed (apt-get install default-jdk-headless, or set JAVA_HOME)")
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ImageJUnavailableError(f"{java} -version failed: {error}") from error
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not found:
        raise ImageJUnavailableError(f"cannot read the Java version from '{java} -version': {done.stderr.strip()}")
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8.0_292" is Java 8
