"""The ``facesleuth`` command. Each subcommand lives in its own module with ``register``.

Only the module of the subcommand being run is imported (with the libraries it needs), so
``facesleuth --help`` lists the commands without loading any of them.

Exit codes: 0 success, 1 when any input failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from facesleuth import __version__

# subcommand name -> module providing register(subparsers) and run(args) -> int
SUBCOMMANDS = {
    "config-docs": "facesleuth.cli_config",
    "faces": "facesleuth.cli_faces",
    "scan": "facesleuth.scan.cli",
    "samples": "facesleuth.cli_samples",
}
# what `facesleuth --help` says of each subcommand
SUMMARIES = {
    "faces": "extract the faces of one video (train or test flow) and draw a contact sheet",
    "scan": "check videos and images for manipulated faces with a trained run",
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
    for name, module_name in SUBCOMMANDS.items():
        if name == command:
            importlib.import_module(module_name).register(subparsers)
        else:
            subparsers.add_parser(name, help=SUMMARIES.get(name), add_help=False)
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


if __name__ == "__main__":
    sys.exit(main())
