"""``microcrystalnet install-fiji DIR``: the plugin into an existing Fiji or ImageJ, or out of it again;
``microcrystalnet fiji-update-site DIR``: an ImageJ update site of it, to upload."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, EXIT_USAGE, add_quiet_option, log


def add_parsers(commands: argparse._SubParsersAction) -> None:
    install = commands.add_parser(
        "install-fiji", help="install the Fiji plugin into a Fiji.app or ImageJ folder (or --uninstall it)",
        description="Install Plugins > MicroCrystalNet into an existing Fiji.app or ImageJ 1.x folder: the plugin jar "
                    "into plugins/, the macros into macros/MicroCrystalNet/, and the Python to run and the model "
                    "folder into plugins/MicroCrystalNet.properties, which the plugin reads at start. Installing "
                    "again is harmless; --uninstall removes exactly what was installed (a manifest lists it). "
                    "Restart Fiji afterwards.")
    install.add_argument("folder", type=Path, metavar="DIR", help="the Fiji.app or ImageJ folder")
    install.add_argument("--python", metavar="PYTHON",
                         help="the Python the plugin runs (default: this checkout's scripts/python)")
    install.add_argument("--model-dir", type=Path, metavar="DIR",
                         help="the folder of the classifier models, for offline use (default: "
                              "MICROCRYSTALNET_MODEL_DIR if set)")
    install.add_argument("--plugin-jar", type=Path, metavar="JAR",
                         help="MicroCrystalNet_.jar (default: fiji_plugin/target/ of this checkout)")
    install.add_argument("--uninstall", action="store_true", help="remove what an earlier install-fiji installed")
    add_quiet_option(install)
    install.set_defaults(run=run_install_fiji)

    site = commands.add_parser(
        "fiji-update-site", help="lay out an ImageJ update site of the Fiji plugin, to upload",
        description="Write an ImageJ update site into DIR: the plugin jar and the macros, each as <path>-<timestamp>, "
                    "and db.xml.gz, the index the ImageJ Updater reads. Upload DIR's content to the site (e.g. a "
                    "personal site on sites.imagej.net); users add its URL in Help > Update... > Manage update sites.")
    site.add_argument("folder", type=Path, metavar="DIR", help="the folder to write the site into (made if missing)")
    site.add_argument("--plugin-jar", type=Path, metavar="JAR",
                      help="MicroCrystalNet_.jar (default: fiji_plugin/target/ of this checkout)")
    add_quiet_option(site)
    site.set_defaults(run=run_update_site)


def run_update_site(arguments: argparse.Namespace) -> int:
    from ..fiji_install import checkout_source, make_update_site
    from ..imagej import ImageJUnavailableError

    if arguments.folder.exists() and any(arguments.folder.iterdir()):
        log.error("%s is not empty; give a new or empty folder for the update site", arguments.folder)
        return EXIT_USAGE
    try:
        index = make_update_site(arguments.folder, checkout_source(arguments.plugin_jar))
    except ImageJUnavailableError as error:
        log.error("%s", error)
        return EXIT_USAGE
    log.info("update site written: %s; upload the content of %s", index, arguments.folder)
    return EXIT_OK


def run_install_fiji(arguments: argparse.Namespace) -> int:
    from ..fiji_install import InstallError, checkout_source, install, uninstall
    from ..imagej import ImageJUnavailableError

    try:
        if arguments.uninstall:
            removed = uninstall(arguments.folder)
            log.info("removed MicroCrystalNet from %s (%d files and folders); restart Fiji/ImageJ",
                     arguments.folder, len(removed))
            return EXIT_OK
        source = checkout_source(arguments.plugin_jar, arguments.python, arguments.model_dir)
        written = install(arguments.folder, source)
    except (InstallError, ImageJUnavailableError) as error:
        log.error("%s", error)
        return EXIT_USAGE
    log.info("installed MicroCrystalNet into %s: %s", arguments.folder, ", ".join(str(path) for path in written))
    log.info("the plugin runs %s%s; restart Fiji/ImageJ and use Plugins > MicroCrystalNet", source.python,
             f" with the models in {source.model_dir}" if source.model_dir else "")
    return EXIT_OK
