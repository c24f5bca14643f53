"""A real ImageJ 1.x (Debian's libij-java) in the test process, with an X display from Xvfb."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time

import pytest


@pytest.fixture(scope="session")
def x_display():
    """A display for ImageJ's window classes: the existing one, or a private Xvfb."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is needed for ImageJ's RoiManager (apt-get install xvfb); scripts/test installs it")
    for number in range(91, 120):
        if not os.path.exists(f"/tmp/.X11-unix/X{number}") and not os.path.exists(f"/tmp/.X{number}-lock"):
            break
    display = f":{number}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(f"/tmp/.X11-unix/X{number}"):
            break
        time.sleep(0.05)
    os.environ["DISPLAY"] = display
    # Stop Xvfb only at interpreter exit: killing it while the JVM holds an X connection makes
    # AWT end the whole process. JPype's own exit handler is registered later (on import), so it
    # runs first and the JVM is gone before the display is.
    atexit.register(server.terminate)
    yield display


@pytest.fixture(scope="session")
def imagej1(x_display):
    """The ``ij.IJ`` class of a real ImageJ 1.x started in this process."""
    from microcrystalnet.imagej import start_imagej1

    return start_imagej1(headless=False)
