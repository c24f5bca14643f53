"""A real ImageJ 1.x (Debian's libij-java) in the test process, with an X display from Xvfb."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def x_display():
    """A display for ImageJ's window classes: the existing one, or a private Xvfb."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is needed for ImageJ's RoiManager (apt-get install xvfb); scripts/test installs it")
    # Xvfb picks a free display number itself and writes it once it accepts connections (two test
    # processes that looked for a free number at once would both have taken the same one)
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as announced:
        number = announced.readline().strip()
    if not number:
        pytest.fail(f"Xvfb did not start (exit status {server.wait(timeout=10)})")
    display = f":{number}"
    os.environ["DISPLAY"] = display
    # Stop Xvfb only at interpreter exit: killing it while the JVM holds an X connection makes
    # AWT end the whole process. JPype's own exit handler is registered later (on import), so it
    # runs first and the JVM is gone before the display is.
    atexit.register(server.terminate)
    yield display


@pytest.fixture(scope="session")
def plugin_jar():
    """The plugin jar that the Maven build made (scripts/test builds it first)."""
    from microcrystalnet.imagej import ImageJUnavailableError, find_plugin_jar

    try:
        return find_plugin_jar()
    except ImageJUnavailableError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def imagej_home(tmp_path_factory):
    """ImageJ's folder (plugins/) and user home (preferences) for the tests, never the user's own."""
    return tmp_path_factory.mktemp("imagej-home")


@pytest.fixture(scope="session")
def imagej1(x_display, plugin_jar, imagej_home):
    """The ``ij.IJ`` class of a real ImageJ 1.x started in this process, with the plugin installed."""
    from microcrystalnet.imagej import start_imagej1

    # the JVM, and the external Python processes it starts, take their environment from here
    shared_models = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                 "..", "shared", "reference-model")
    os.environ.setdefault("MICROCRYSTALNET_MODEL_DIR", os.path.abspath(shared_models))
    return start_imagej1(headless=False, plugin_jar=plugin_jar, home=imagej_home,
                         jvm_options=(f"-Duser.home={imagej_home}",))
