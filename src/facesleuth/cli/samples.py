"""``facesleuth samples fetch DIR`` and ``facesleuth samples verify DIR``: the tests' sample media.

``fetch`` downloads the sample videos and images from their public repositories into DIR (in
the layout the tests expect) and checks each file's sha256; run the tests with
``FACESLEUTH_SAMPLES=DIR``. ``verify`` checks a folder that is already there.
"""

from __future__ import annotations

import argparse
import sys

from facesleuth.samples import GITHUB_RAW, SAMPLE_FILES, SamplesError, fetch, verify

EXIT_OK, EXIT_FAILED = 0, 1


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "samples",
        description=(
            f"The {len(SAMPLE_FILES)} sample videos and images the tests and benchmarks read, "
            "from their public GitHub repositories, each checked against its sha256. Exit 0 when "
            "every file is there and right, 1 otherwise."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch_parser = actions.add_parser("fetch", help="download every sample into DIR (kept files that match are not downloaded again)")
    fetch_parser.add_argument("dir", metavar="DIR", help="samples folder (created); then run the tests with FACESLEUTH_SAMPLES=DIR")
    fetch_parser.add_argument("--base-url", default=GITHUB_RAW,
                              help=f"where <repository>/<ref>/<path> is served (default {GITHUB_RAW}; a mirror)")
    verify_parser = actions.add_parser("verify", help="check the sha256 of every sample in DIR")
    verify_parser.add_argument("dir", metavar="DIR", help="samples folder")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        try:
            folder = fetch(args.dir, base_url=args.base_url)
        except SamplesError as err:
            print(f"facesleuth samples fetch: {err}", file=sys.stderr)
            return EXIT_FAILED
        print(f"{len(SAMPLE_FILES)} sample files in {folder}; run the tests with FACESLEUTH_SAMPLES={folder}")
        return EXIT_OK
    problems = verify(args.dir)
    for problem in problems:
        print(f"facesleuth samples verify: {problem}", file=sys.stderr)
    if not problems:
        print(f"{len(SAMPLE_FILES)} sample files in {args.dir} match their sha256")
    return EXIT_FAILED if problems else EXIT_OK
