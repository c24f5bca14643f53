"""Command line: ``microcrystalnet analyze``, ``batch``, ``demo``, ``n2v``, ``train``, ``evaluate``,
``patches``, ``tune-sam``, ``compare``, ``train-segmenter``, ``imagej`` and ``worker`` (Fiji's resident worker). One module per command group; they parse arguments and
call the library, nothing more. Heavy frameworks load only once a command runs, so ``--help``
answers at once.

Exit status: 0 all images analysed; 1 some images could not be analysed or written (the others
were); 2 wrong usage or settings, or an output folder refused (not MicroCrystalNet's, or in use by
another batch); 3 a model cannot be had or used; 130 interrupted (Ctrl-C, or SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from .. import __version__
from ..config import ConfigError
from . import analyze, batch, classifier, compare, imagej, install_fiji, n2v, sam, train_segmenter, worker
from .common import EXIT_INTERRUPTED, EXIT_MODEL, EXIT_SOME_FAILED, EXIT_USAGE, log

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microcrystalnet",
        description="Segment, classify (RES, PES, AA, RA/SA) and measure microcrystals in SEM images. "
                    "Results open in Fiji/ImageJ: RoiSet.zip, results.csv, labels.tif, overlay.png, summary.json.")
    parser.add_argument("--version", action="version", version=f"microcrystalnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (analyze, batch, n2v, classifier, sam, compare, train_segmenter, imagej, install_fiji, worker):
        group.add_parsers(commands)
    return parser


#: errors of the library and the exit status they mean, looked up by module and name: importing
#: them at start would load numpy and more, and an error can only come from a loaded module
_EXIT_STATUS_OF_ERRORS = (
    ("microcrystalnet.io.result_folder", "OutputFolderError", EXIT_USAGE),  # not ours, or a batch holds it
    ("microcrystalnet.io.result_folder", "OutputWriteError", EXIT_SOME_FAILED),
    ("microcrystalnet.frameworks", "DeviceUnavailableError", EXIT_USAGE),  # a GPU asked for, none there
    ("microcrystalnet.weights", "ModelUnavailableError", EXIT_MODEL),
    ("microcrystalnet.classify.classifier", "ModelDescriptionError", EXIT_MODEL),
    ("microcrystalnet.preprocess.n2v", "Noise2VoidModelError", EXIT_MODEL),
    ("microcrystalnet.segment.sam", "SamCheckpointError", EXIT_MODEL),
    ("microcrystalnet.segment.learned.model_file", "SegmenterModelError", EXIT_MODEL),
)


def _exit_status_of(error: BaseException) -> int | None:
    """The exit status an error of the library stands for, or None for a bug."""
    for module, name, status in _EXIT_STATUS_OF_ERRORS:
        kind = getattr(sys.modules.get(module), name, None)
        if kind is not None and isinstance(error, kind):
            return status
    return None


def _interrupt(signal_number: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    # a polite stop (Fiji's Esc, a job scheduler, kill) ends as Ctrl-C does: finished results kept,
    # a batch's tables written and its lock let go
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    logging.basicConfig(level=logging.ERROR if arguments.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    logging.getLogger("microcrystalnet.pipeline").setLevel(logging.WARNING)
    logging.getLogger("tifffile").setLevel(logging.ERROR)  # a damaged file gets our message, not its warnings too
    try:
        return arguments.run(arguments)
    except ConfigError as error:
        log.error("invalid settings: %s", error)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted; results of finished images are complete, the image in progress was not written")
        return EXIT_INTERRUPTED
    except Exception as error:
        status = _exit_status_of(error)
        if status is None:
            raise
        log.error("model: %s" if status == EXIT_MODEL else "%s", error)
        return status
