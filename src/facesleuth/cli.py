"""The ``facesleuth`` command. Each subcommand lives in its own module with ``register``.

Exit codes: 0 success, 1 when any input failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from facesleuth import __version__

# subcommand name -> module providing register(subparsers) and run(args) -> int
SUBCOMMANDS = {
    "faces": "facesleuth.cli_faces",
    "scan": "facesleuth.scan.cli",
    "serve": "facesleuth.serve.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facesleuth",
        description="Detect manipulated faces (deepfakes) in videos and images.",
    )
    parser.add_argument("--version", action="version", version=f"facesleuth {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
