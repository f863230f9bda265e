"""``facesleuth scan PATH... --model RUN``: the command line over :mod:`facesleuth.scan`.

Exit codes: 0 when every input was scanned (faces found or not), 1 when any input could not be
(unreadable, unsupported, missing, error) or nothing was found to scan, 2 for a usage error
(bad option, unusable --model or --config, unwritable --output).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from facesleuth import registry
from facesleuth.cli.common import (
    THREADS_HELP,
    UsageError,
    add_backend_argument,
    add_frame_arguments,
    add_limit_arguments,
    backend_setting,
    detection_settings,
    frame_settings,
    limit_settings,
    thread_count,
)

if TYPE_CHECKING:
    from facesleuth.scan.scanner import Scanner

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_EPILOG = """\
RUN is a training run folder of the pipeline, results/models/<model>/<setup>/ (or its best.pt):
best.pt holds the weights and settings, threshold.json the validation EER threshold used for
the verdict (0.5 when absent), calibration.json the temperature that turns the score into a
calibrated probability. Make one with `snakemake results/models/<model>/<setup>/best.pt`
(or .../threshold.json and .../calibration.json). An ensemble folder of the pipeline,
results/ensembles/<name>/, or several --model runs scan as an ensemble.

Without --model the built-in detector scans: MesoNet's published Meso-4 DF and F2F models
(2018), their probabilities averaged; every output states its limits.

examples:
  facesleuth scan upload.mp4
  facesleuth scan upload.mp4 --model results/models/efb0_ns/default
  facesleuth scan uploads/ --model results/models/efb0_ns/default --jsonl --output scan.jsonl
  facesleuth scan uploads/ --model results/models/efb0_ns/default --format html --output report.html
  facesleuth scan upload.mp4 --model results/ensembles/effnets --aggregation max_track_mean
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "scan",
        description=(
            "Check videos and images (files, or folders scanned recursively; recognised by content,\n"
            "not by name) for manipulated faces. Faces are found and tracked with the pipeline's test\n"
            "flow on evenly spaced frames, scored by the run's model and aggregated per input; the\n"
            "verdict applies the run's validation EER threshold. Exit 0 when every input was scanned,\n"
            "1 when any could not be, 2 for a usage error."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="video or image files, or folders")
    parser.add_argument("--model", "-m", metavar="RUN", action="append",
                        help="training run folder (or its best.pt), an ensemble folder, or an imported published "
                             "detector (facesleuth weights import). Give it several times to scan with an ensemble "
                             "of the runs. Default: the built-in MesoNet ensemble (Meso-4 DF + F2F), a 2018 model "
                             "reliable only on FaceForensics++-like fakes")
    parser.add_argument("--ensemble-method", choices=list(registry.ENSEMBLE_METHODS), default="mean_probability",
                        help="how several --model runs join their scores (default mean_probability)")
    parser.add_argument("--aggregation", metavar="NAME",
                        help=f"how face scores become the input's score: {', '.join(registry.AGGREGATIONS)} or "
                             "top<k>_mean for any k (default: the one the run's threshold was chosen with)")
    parser.add_argument("--no-calibration", action="store_true",
                        help="report the model's uncalibrated score even where the run has calibration.json")
    add_frame_arguments(parser)
    parser.add_argument("--device", default="auto", help="auto (GPU when there is one), cpu, cuda or cuda:N")
    parser.add_argument("--config", type=Path, metavar="YAML",
                        help="config whose extraction.detection settings to use (default: the run's run.yaml "
                             "face_crops, else the schema's)")
    parser.add_argument("--format", "-f", dest="fmt", choices=["table", "json", "jsonl", "html"], default=None,
                        help="table (default, on the terminal), json (one document), jsonl, html (self-contained page)")
    parser.add_argument("--jsonl", action="store_true", help="JSON Lines, one object per input as it finishes")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the output here instead of stdout")
    parser.add_argument("--iou", type=float, default=0.3, metavar="T",
                        help="faces in successive sampled frames with IoU above T are one track (default 0.3)")
    parser.add_argument("--min-track", type=float, default=1 / 6, metavar="F",
                        help="score tracks seen in more than this fraction of the sampled frames (default 1/6); "
                             "when none is, all are scored")
    parser.add_argument("--faces", type=int, default=50, metavar="N",
                        help="faces scored per video, shared among tracks by length (default 50, the thesis)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="faces per model batch (default 64)")
    parser.add_argument("--threads", default="auto", metavar="N",
                        help=THREADS_HELP)
    parser.add_argument("--html-faces", type=int, default=12, metavar="N",
                        help="face thumbnails per input in the HTML report, most suspicious first (default 12)")
    add_backend_argument(parser)
    add_limit_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--verbose", "-v", action="store_true", help="log what happens to stderr")
    parser.set_defaults(run=run)
    return parser


def _output_format(args: argparse.Namespace) -> str:
    if args.jsonl and args.fmt not in (None, "jsonl"):
        raise UsageError(f"--jsonl and --format {args.fmt} contradict each other; give one")
    return "jsonl" if args.jsonl else (args.fmt or "table")


def _check_output(path: Path | None) -> None:
    """Fail now, not after an hour of scanning, when ``--output`` cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"--output {path} is a folder; name a file")
    if not path.parent.exists():
        raise UsageError(f"--output {path}: folder {path.parent} does not exist; create it first")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--output {path}: permission denied; choose a file you can write")


def _open_output(path: Path | None, streamed: bool) -> tuple[TextIO | None, Callable[[str], None]]:
    """(stream for the streamed formats, or None; write(text) for whole documents).

    Streamed formats write line by line into ``path`` as inputs finish; documents (JSON, HTML)
    are written atomically at the end, so an interrupted scan never leaves half a document.
    """
    if path is None:
        return None, sys.stdout.write
    if streamed:
        try:
            return open(path, "w", encoding="utf-8"), sys.stdout.write
        except OSError as err:
            raise UsageError(f"--output {path}: cannot write ({err.strerror})") from None
    from facesleuth.io import write_text_atomic

    return None, lambda text: write_text_atomic(text, path)


def _scan(args: argparse.Namespace) -> int:
    from facesleuth.extract.detect import set_cpu_threads
    from facesleuth.scan.runfolder import RunFolderError
    from facesleuth.scan.scanner import Scanner, ScanOptions

    fmt = _output_format(args)
    if not args.model:
        from facesleuth.published.builtin import DEFAULT_RUN

        args.model = [str(DEFAULT_RUN)]
    threads = thread_count(args.threads)
    if args.html_faces < 0:
        raise UsageError(f"--html-faces must be 0 or more, got {args.html_faces}")
    options = ScanOptions(
        **frame_settings(args), device=args.device, detection=detection_settings(args.config),
        iou_threshold=args.iou, min_track_fraction=args.min_track, faces_per_video=args.faces,
        batch_size=args.batch_size, thumbnails=args.html_faces if fmt == "html" else 0,
        aggregation=args.aggregation, calibrate=not args.no_calibration, ensemble_method=args.ensemble_method,
        backend=args.backend, **limit_settings(args, args.config),
    )
    try:
        options.check()
    except ValueError as err:
        raise UsageError(str(err)) from None

    backend_setting(args.backend, args.device)
    set_cpu_threads(threads)
    logging.getLogger(__name__).info("torch and the video decoder use %d CPU threads", threads)
    _check_output(args.output)
    try:
        scanner = Scanner(args.model if len(args.model) > 1 else args.model[0], options)
    except RunFolderError as err:
        raise UsageError(str(err)) from None
    stream, write = _open_output(args.output, streamed=fmt in ("table", "jsonl"))
    try:
        return _report(args, fmt, scanner, stream, write)
    finally:
        if stream is not None:
            stream.close()


def _report(args: argparse.Namespace, fmt: str, scanner: Scanner, stream: TextIO | None,
            write: Callable[[str], None]) -> int:
    """Scan, print or write the results as they come, and return the exit code."""
    from tqdm.auto import tqdm

    from facesleuth.scan.formats import make_writer, summary_line

    if stream is not None:
        def emit(line: str) -> None:
            stream.write(line + "\n")
            stream.flush()
    else:
        def emit(line: str) -> None:
            tqdm.write(line, file=sys.stdout)  # keeps the progress bar on stderr intact
            sys.stdout.flush()

    writer = make_writer(fmt, emit, write, scanner.run, scanner.options)
    progress = not args.no_progress and (len(args.paths) > 1 or any(Path(p).is_dir() for p in args.paths))
    started = time.perf_counter()
    writer.start()
    count = 0
    try:
        for result in scanner.scan_paths(args.paths, progress=progress):
            writer.add(result)
            count += 1
    except KeyboardInterrupt:
        print(f"facesleuth scan: interrupted after {count} inputs", file=sys.stderr)
        return EXIT_INTERRUPTED
    summary = writer.finish(scanner.skipped, time.perf_counter() - started)
    if args.output is not None or fmt != "table":
        print(f"facesleuth scan: {summary_line(summary)}" + (f"; wrote {args.output}" if args.output else ""),
              file=sys.stderr)
    if summary["inputs"] == 0:
        print("facesleuth scan: no video or image found in the paths given", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if summary["failed"] else EXIT_OK


def run(args: argparse.Namespace) -> int:
    # FFmpeg's and OpenCV's own lines (thousands on a damaged file) would drown the report; the
    # damage reaches the results instead (frames_failed, unreadable inputs with a message).
    from facesleuth.extract.video import quiet_decoder_logs
    from facesleuth.runtime import setup_logging

    quiet_decoder_logs()
    setup_logging(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return _scan(args)
    except UsageError as err:
        print(f"facesleuth scan: {err}", file=sys.stderr)
        return EXIT_USAGE
