"""``microcrystalnet imagej``: ImageJ (or Fiji) in this process, with this Python as the plugin's backend."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .common import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, add_quiet_option, log


def add_parsers(commands: argparse._SubParsersAction) -> None:
    imagej = commands.add_parser(
        "imagej", help="start ImageJ with the MicroCrystalNet plugin, this Python registered as its backend",
        description="Start ImageJ in this process with Plugins > MicroCrystalNet installed and this Python session "
                    "registered as its in-process backend (images are handed over without files). Without --fiji, "
                    "ImageJ 1.x from --ij-jar (default: Debian's libij-java) is started with scyjava; with --fiji, "
                    "that Fiji installation is started with pyimagej (the plugin jar is copied into its plugins "
                    "folder if missing).")
    imagej.add_argument("--fiji", type=Path, metavar="FIJI_APP", help="a Fiji installation (Fiji.app folder)")
    imagej.add_argument("--ij-jar", type=Path, metavar="JAR", help="ImageJ 1.x jar (default /usr/share/java/ij.jar)")
    imagej.add_argument("--plugin-jar", type=Path, metavar="JAR",
                        help="MicroCrystalNet_.jar (default: fiji_plugin/target/ of this checkout)")
    imagej.add_argument("--macro", type=Path, metavar="IJM",
                        help="run this macro, then quit (no main window); exit status 1 if it was aborted or left an "
                             "error in AnalyzeCrystals.lastError (e.g. an image of a batch failed)")
    imagej.add_argument("--macro-argument", default="", metavar="TEXT", help="argument passed to the macro")
    add_quiet_option(imagej)
    imagej.set_defaults(run=run_imagej)


def run_imagej(arguments: argparse.Namespace) -> int:
    from .. import imagej as bridge

    if not os.environ.get("DISPLAY"):
        log.error("ImageJ's windows and dialogs need a display: set DISPLAY, or run under xvfb-run")
        return EXIT_USAGE
    # the commands that run Python as a process (Train ... from ROIs, Batch Analyze Folder) run this one
    # unless Settings... names another
    os.environ.setdefault("MICROCRYSTALNET_PYTHON", sys.executable)
    try:
        if arguments.fiji:
            ij = bridge.start_fiji(arguments.fiji, plugin_jar=arguments.plugin_jar)
        else:
            ij = bridge.start_imagej1(arguments.ij_jar, headless=False,
                                      plugin_jar=bridge.find_plugin_jar(arguments.plugin_jar))
    except bridge.ImageJUnavailableError as error:
        log.error("%s", error)
        return EXIT_USAGE
    bridge.register_backend()
    if arguments.macro:
        result = ij.runMacroFile(str(arguments.macro.resolve()), arguments.macro_argument)
        if result is not None and str(result) == "[aborted]":
            log.error("the macro %s was aborted", arguments.macro)
            return EXIT_SOME_FAILED
        # a macro that went on after a failure (as the batch macro does) leaves it here
        failure = str(bridge.jimport("microcrystalnet.fiji.AnalyzeCrystals").lastError())
        if failure:
            log.error("the macro %s ended with an error: %s", arguments.macro, failure)
            return EXIT_SOME_FAILED
        return EXIT_OK
    if ij.getInstance() is None:
        main_window = bridge.jimport("ij.ImageJ")
        main_window(main_window.EMBEDDED)  # quitting closes ImageJ, not this Python process
    log.info("ImageJ is running with Plugins > MicroCrystalNet; this Python session is its backend. "
             "Quit ImageJ to end.")
    while ij.getInstance() is not None:
        time.sleep(0.5)
    return EXIT_OK
