"""``facesleuth weights``: published detectors as run folders.

``import FORMAT SOURCE OUT`` makes a run folder from a checkpoint file its authors published,
``fetch NAME DIR`` downloads publicly hosted ones and imports them, ``list`` shows the formats,
their variants and the built-in detectors. A run folder made here is given to ``--model`` like a
trained one (docs/weights.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "weights",
        description="Published detectors (their authors' weights) as run folders for --model.",
        epilog=("examples:\n"
                "  facesleuth weights import mesonet Meso4_DF.h5 runs/meso4_df\n"
                "  facesleuth scan upload.mp4 --model runs/meso4_df\n"
                "  facesleuth weights fetch mesonet runs/\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    importing = actions.add_parser("import", help="make a run folder from a published checkpoint file")
    importing.add_argument("format", metavar="FORMAT", help="checkpoint format (facesleuth weights list)")
    importing.add_argument("source", metavar="SOURCE", type=Path, help="the checkpoint file")
    importing.add_argument("out", metavar="OUT", type=Path, help="run folder to make (created)")
    importing.add_argument("--variant", help="which published checkpoint it is (default: known by its sha256 "
                                             "or file name)")
    fetching = actions.add_parser("fetch", help="download publicly hosted checkpoints and import them")
    fetching.add_argument("name", metavar="NAME", help="FORMAT/VARIANT, or FORMAT for all its variants")
    fetching.add_argument("dir", metavar="DIR", type=Path, help="folder for the run folders (DIR/VARIANT)")
    fetching.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds per download (10)")
    actions.add_parser("list", help="formats, their published variants, and the built-in detectors")
    parser.set_defaults(run=run)
    return parser


def _list() -> int:
    from facesleuth.published import formats
    from facesleuth.published.builtin import BUILTIN_RUNS, DEFAULT_RUN

    for fmt in formats().values():
        print(f"{fmt.name}:")
        for variant, entry in fmt.variants.items():
            where = entry.get("url") or "not publicly hosted (import a file you have)"
            digest = (f"sha256 {entry['sha256']}" if entry.get("sha256")
                      else "no published sha256 (fetch cannot verify the download)")
            print(f"  {variant:24s} {entry.get('architecture')}, trained on {entry.get('training_data')}")
            print(f"  {'':24s} {where}; {digest}")
    print("built in (used when --model is not given):")
    for name, folder in BUILTIN_RUNS.items():
        print(f"  {name:24s} {folder}")
    print(f"  default: {DEFAULT_RUN}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list()
    if args.action == "import":
        from facesleuth.published.runfolder import import_detector

        try:
            folder = import_detector(args.format, args.source, args.out, args.variant)
        except ValueError as err:
            print(f"facesleuth weights import: {err}", file=sys.stderr)
            return EXIT_FAILED
        print(f"{folder}: run folder of {args.format} {args.source.name}; scan with --model {folder}")
        return EXIT_OK
    from facesleuth.published.catalogue import DOWNLOAD_TIMEOUT, FetchError, fetch

    try:
        folders = fetch(args.name, args.dir, args.timeout or DOWNLOAD_TIMEOUT)
    except FetchError as err:
        print(f"facesleuth weights fetch: {err}", file=sys.stderr)
        return EXIT_FAILED
    for folder in folders:
        print(f"{folder}: scan with --model {folder}")
    return EXIT_OK
