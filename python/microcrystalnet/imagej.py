"""The bridge to ImageJ: the only module that imports scyjava.

Everything on the Java side uses the ImageJ1 API (ImagePlus, RoiManager, ResultsTable, Roi),
which is the same in a plain ImageJ 1.x and inside Fiji. This module starts a JVM with an
ImageJ 1.x jar in this process (scyjava/JPype) and hands out Java classes.

scyjava would otherwise download a Java runtime on first use; here it always uses the Java
installed on the machine (``JAVA_HOME`` or ``java`` on PATH), which works offline.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

IJ_JAR_VARIABLE = "MICROCRYSTALNET_IJ_JAR"
DEFAULT_IJ_JARS = (Path("/usr/share/java/ij.jar"),)


class ImageJUnavailableError(RuntimeError):
    """ImageJ or Java cannot be found or started; the message says what to install."""


def find_ij_jar(explicit: str | Path | None = None) -> Path:
    """The ImageJ 1.x jar: explicit path, ``MICROCRYSTALNET_IJ_JAR``, or Debian's libij-java."""
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get(IJ_JAR_VARIABLE):
        candidates.append(Path(os.environ[IJ_JAR_VARIABLE]))
    candidates += DEFAULT_IJ_JARS
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ImageJUnavailableError(
        f"no ImageJ 1.x jar found (looked at {', '.join(map(str, candidates))}). Install it "
        f"(Debian/Ubuntu: apt-get install libij-java) or set {IJ_JAR_VARIABLE} to an ij.jar")


def start_imagej1(ij_jar: str | Path | None = None, headless: bool = True, extra_classpath: tuple[str, ...] = ()) -> Any:
    """Start a JVM with ImageJ 1.x in this process (once) and return the ``ij.IJ`` class.

    ``headless``: no display needed, but window classes (RoiManager's frame) are unavailable;
    give a display (e.g. Xvfb and ``DISPLAY``) and ``headless=False`` for those.
    """
    import scyjava

    if scyjava.jvm_started():
        return scyjava.jimport("ij.IJ")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ImageJUnavailableError("Java is not installed (apt-get install default-jdk-headless, or set JAVA_HOME)")
    scyjava.config.set_java_constraints(fetch="never")
    scyjava.config.add_classpath(str(find_ij_jar(ij_jar)), *extra_classpath)
    if headless:
        scyjava.config.add_option("-Djava.awt.headless=true")
    scyjava.start_jvm()
    return scyjava.jimport("ij.IJ")


def jimport(name: str) -> Any:
    """A Java class of the running JVM (see :func:`start_imagej1`)."""
    import scyjava

    return scyjava.jimport(name)
