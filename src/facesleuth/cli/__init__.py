"""The ``facesleuth`` command. Each subcommand lives in its own module with ``register``.

Only the module of the subcommand being run is imported (with the libraries it needs), so
``facesleuth --help`` lists the commands without loading any of them.

Exit codes: 0 success, 1 when any input failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple

from facesleuth import __version__


class Subcommand(NamedTuple):
    module: str  # provides register(subparsers) and run(args) -> int
    summary: str  # what `facesleuth --help` says of it


SUBCOMMANDS = {
    "config-docs": Subcommand("facesleuth.cli.config_docs", "print or write the documentation of every config key, from the schema"),
    "faces": Subcommand("facesleuth.cli.faces", "extract the faces of one video (train or test flow) and draw a contact sheet"),
    "samples": Subcommand("facesleuth.cli.samples", "download (fetch) or check (verify) the sample media the tests read"),
    "scan": Subcommand("facesleuth.cli.scan", "check videos and images for manipulated faces with a trained run"),
    "serve": Subcommand("facesleuth.cli.serve", "run the upload-checking web service (HTTP API and upload page) with a trained run"),
    "worker": Subcommand("facesleuth.cli.worker", "scan the jobs of `facesleuth serve --broker` (any number, on any machine)"),
    "track": Subcommand("facesleuth.cli.track", "log a study's run folders and results to MLflow, W&B or TensorBoard (backfill)"),
    "weights": Subcommand("facesleuth.cli.weights", "import (or fetch) published detectors' weights as run folders"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported and given its full arguments.

    The other subcommands are listed with their summary only, which is all ``--help`` shows.
    """
    parser = argparse.ArgumentParser(
        prog="facesleuth",
        description="Detect manipulated faces (deepfakes) in videos and images.",
    )
    parser.add_argument("--version", action="version", version=f"facesleuth {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, subcommand in SUBCOMMANDS.items():
        if name == command:
            importlib.import_module(subcommand.module).register(subparsers)
        else:
            subparsers.add_parser(name, help=subcommand.summary, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    # The top-level parser takes no option with a value, so the first non-option is the command.
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.run(args) or 0)

