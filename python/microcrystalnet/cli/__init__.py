"""Command line: ``microcrystalnet analyze``, ``batch``, ``demo``, ``n2v``, ``train``, ``evaluate``,
``patches``, ``tune-sam`` and ``imagej``. One module per command group; they parse arguments and
call the library, nothing more. Heavy frameworks load only once a command runs, so ``--help``
answers at once.

Exit status: 0 all images analysed; 1 some images could not be analysed (the others were);
2 wrong usage or settings; 3 a model cannot be had or used; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..config import ConfigError
from . import analyze, batch, classifier, imagej, n2v, sam
from .common import EXIT_INTERRUPTED, EXIT_MODEL, EXIT_USAGE, log

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microcrystalnet",
        description="Segment, classify (RES, PES, AA, RA/SA) and measure microcrystals in SEM images. "
                    "Results open in Fiji/ImageJ: RoiSet.zip, results.csv, labels.tif, overlay.png, summary.json.")
    parser.add_argument("--version", action="version", version=f"microcrystalnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (analyze, batch, n2v, classifier, sam, imagej):
        group.add_parsers(commands)
    return parser


def _is_model_error(error: BaseException) -> bool:
    """Whether ``error`` says a model (classifier, Noise2Void, SAM) cannot be had or used. The
    error types are looked up here, not imported at start: their modules load numpy and more."""
    model_errors = []
    for module, name in (("microcrystalnet.weights", "ModelUnavailableError"),
                         ("microcrystalnet.classify.classifier", "ModelDescriptionError"),
                         ("microcrystalnet.preprocess.n2v", "Noise2VoidModelError"),
                         ("microcrystalnet.segment.sam", "SamCheckpointError")):
        loaded = sys.modules.get(module)
        if loaded is not None and hasattr(loaded, name):
            model_errors.append(getattr(loaded, name))
    return isinstance(error, tuple(model_errors))


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR if arguments.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    logging.getLogger("microcrystalnet.pipeline").setLevel(logging.WARNING)
    try:
        return arguments.run(arguments)
    except ConfigError as error:
        log.error("invalid settings: %s", error)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted; results of finished images are complete, the image in progress was not written")
        return EXIT_INTERRUPTED
    except Exception as error:
        if not _is_model_error(error):
            raise
        log.error("model: %s", error)
        return EXIT_MODEL
