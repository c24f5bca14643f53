"""``microcrystalnet worker``: the Fiji command's resident Python worker (started by Fiji, not by hand)."""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_MODEL, EXIT_OK


def add_parsers(commands: argparse._SubParsersAction) -> None:
    worker = commands.add_parser(
        "worker", help="the Fiji command's resident Python worker (Fiji starts it; see microcrystalnet.fiji_worker)",
        description="Answer analysis and Noise2Void requests from Fiji on standard input, keeping the models "
                    "loaded, until the input closes. The protocol: microcrystalnet.fiji_worker.")
    worker.add_argument("-q", "--quiet", action="store_true", help="log only errors (to standard error)")
    worker.set_defaults(run=run_worker)


def run_worker(arguments: argparse.Namespace) -> int:
    from ..fiji_worker import protocol_channel, serve
    from . import _exit_status_of

    replies = protocol_channel()
    serve(sys.stdin.buffer, replies, lambda error: _exit_status_of(error) == EXIT_MODEL)
    return EXIT_OK
