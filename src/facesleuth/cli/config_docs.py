"""``facesleuth config-docs [--output FILE]``: every config key with its type, default and meaning.

The text is config/README.md, generated from the schema the package ships
(:func:`facesleuth.config.schema_markdown`); regenerate that file with
``facesleuth config-docs --output config/README.md`` after changing the schema.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facesleuth.config import write_docs


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "config-docs",
        help="print (or write) the documentation of every config key, from the schema",
        description="Markdown list of every config key with its type, default and meaning (config/README.md).",
    )
    parser.add_argument("--output", type=Path, default=None, help="file to write (default: standard output)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    return write_docs(args.output)
