"""``facesleuth serve --model RUN``: run the scanner as an HTTP service (upload page + JSON API).

Exit codes: a clean stop (Ctrl-C or SIGTERM) ends with the signal that asked for it, as uvicorn
re-raises it once stopped; 2 for a usage error (unusable --model,
--config or --token-file, bad numbers). The web stack (Starlette, uvicorn) loads only when the
command runs: it is the ``[serve]`` extra.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

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

EXIT_OK, EXIT_USAGE = 0, 2

_EPILOG = """\
The data dir keeps the job database (SQLite) and the uploads waiting to be scanned; restart
the server on the same --data-dir and queued jobs resume, finished ones stay available.

With --broker redis://HOST:PORT/DB the jobs go to Redis instead and `facesleuth worker`
processes, on this machine or others, scan them; --workers is then unused (start workers
instead), and --data-dir must be a folder every worker sees (a shared mount on a cluster).

examples:
  facesleuth serve --model results/models/efb0_ns/default --port 8000
  curl -F file=@upload.mp4 http://127.0.0.1:8000/api/scans        # -> {"id": ...}
  curl http://127.0.0.1:8000/api/scans/ID                          # state, then the results
  facesleuth serve --model RUN --broker redis://127.0.0.1:6379/0 --data-dir /shared/facesleuth
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        help="run the scanner as a web service: upload page and JSON API",
        description=(
            "Serve an upload page and a JSON API that scan uploaded videos and images with a trained\n"
            "run, as `facesleuth scan` does, in a pool of worker processes. Jobs and results are kept\n"
            "in SQLite under --data-dir and survive restarts."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", "-m", metavar="RUN", default=None,
                        help="training run folder (or its best.pt), as for facesleuth scan (default: the built-in "
                             "MesoNet ensemble, a 2018 model; see facesleuth weights list)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="worker processes, each with its own copy of the model (default 2)")
    parser.add_argument("--threads", default="auto", metavar="N",
                        help=THREADS_HELP)
    parser.add_argument("--max-upload-mb", type=float, default=200, metavar="MB",
                        help="largest upload accepted, all files of a request together (default 200)")
    parser.add_argument("--max-queue", type=int, default=100, metavar="N",
                        help="jobs waiting at most; more are refused with 429 and Retry-After (default 100)")
    parser.add_argument("--data-dir", type=Path, default=Path("facesleuth-data"), metavar="DIR",
                        help="where the job database and pending uploads live (default ./facesleuth-data)")
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help="file holding the API token; then every endpoint but /healthz needs "
                             "'Authorization: Bearer TOKEN'")
    add_scanning_arguments(parser)
    parser.add_argument("--broker", metavar="URL",
                        help="Redis URL (redis://HOST:PORT/DB): queue jobs there for `facesleuth worker` processes "
                             "instead of a local pool (default: embedded SQLite mode)")
    parser.add_argument("--max-attempts", type=int, default=3, metavar="N",
                        help="broker mode: claims per job (worker lost, or the attempt failed) before it fails "
                             "with a message (default 3)")
    parser.add_argument("--keep-days", type=float, default=0, metavar="D",
                        help="broker mode: delete finished jobs (results and all) D days after upload; Redis holds "
                             "them in memory (default 0: keep every job, as the SQLite mode does)")
    add_logging_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def add_scanning_arguments(parser: argparse.ArgumentParser) -> None:
    """How inputs are scanned, the same for the API's own workers and for `facesleuth worker`."""
    add_frame_arguments(parser)
    parser.add_argument("--device", default="auto", help="auto (GPU when there is one), cpu, cuda or cuda:N")
    add_backend_argument(parser)
    parser.add_argument("--config", type=Path, metavar="YAML",
                        help="config whose extraction.detection and scan.limits settings to use "
                             "(default: the run's run.yaml face_crops and the schema's)")
    add_limit_arguments(parser)  # a worker past --input-seconds is replaced; the input answers timed_out


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    from facesleuth.runtime import LOG_FORMATS

    parser.add_argument("--verbose", "-v", action="store_true", help="log every request and job")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                        help="text (default), or json: one JSON object per line, one line per request and per "
                             "job (implies --verbose)")


def setup_logging_from_args(args: argparse.Namespace) -> None:
    """Logging as :func:`add_logging_arguments`' flags ask (serve and worker alike)."""
    from facesleuth.runtime import setup_logging

    verbose = args.verbose or args.log_format == "json"
    setup_logging(level=logging.INFO if verbose else logging.WARNING, fmt=args.log_format)


def _token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--token-file {path}: cannot read it ({err})") from None
    if not token or any(ch.isspace() for ch in token):
        raise UsageError(f"--token-file {path}: must hold one token without spaces (e.g. from `openssl rand -hex 32`)")
    return token


def settings_from_args(args: argparse.Namespace):
    """The service's settings, every option checked (UsageError says which is wrong)."""
    from facesleuth.scan.scanner import ScanOptions
    from facesleuth.serve.app import ServeSettings

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.max_upload_mb <= 0:
        raise UsageError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if args.max_queue < 1:
        raise UsageError(f"--max-queue must be at least 1, got {args.max_queue}")
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be within 1..65535, got {args.port}")
    broker = None
    if args.broker:
        from facesleuth.serve.broker import BrokerSettings

        try:
            broker = BrokerSettings(args.broker, max_attempts=args.max_attempts, keep_days=args.keep_days).check()
        except ValueError as err:
            raise UsageError(str(err)) from None
    try:
        frames, limits = frame_settings(args), limit_settings(args, args.config)
        ScanOptions(**frames, **limits).check()
        detection = detection_settings(args.config)
    except ValueError as err:
        raise UsageError(str(err)) from None
    try:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--data-dir {args.data_dir}: cannot create it ({err.strerror})") from None
    from facesleuth.published.builtin import DEFAULT_RUN

    return ServeSettings.make(
        args.data_dir, Path(args.model or DEFAULT_RUN).resolve(), workers=args.workers,
        max_upload_bytes=int(args.max_upload_mb * 2**20), max_queued=args.max_queue, token=_token(args.token_file),
        broker=broker,
        sampling=frames, device=args.device, backend=args.backend, detection=detection,
        threads=thread_count(args.threads, args.workers),
        log_format=args.log_format, limits=limits,
    )


def check_model(model: str, device: str, backend: str = "auto") -> tuple[str, ...]:
    """Fail at once with what a run folder holds, not in every worker after the server started;
    the model's limits, for the upload page. With onnx or openvino the model is exported here,
    once, before the workers load it (with openvino MTCNN's networks too)."""
    from facesleuth.scan import RunFolderError, load_scan_run

    backend = backend_setting(backend, device)  # asks whether a GPU is visible; creates no CUDA context
    if backend == "openvino":
        from facesleuth.extract.mtcnn_openvino import exported_networks

        exported_networks()
    try:
        # on the CPU: a GPU copy would hold a CUDA context (and its memory) in the web process for
        # its whole life, while only the workers scan
        return tuple(load_scan_run(model, "cpu", backend=backend).limits)
    except RunFolderError as err:
        raise UsageError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    setup_logging_from_args(args)
    try:
        import uvicorn

        from facesleuth.serve.app import create_app
    except ImportError as err:
        print(f"facesleuth serve: {err.name} is missing; install the web extra: pip install 'facesleuth[serve]'",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = settings_from_args(args)
        settings.model_limits = check_model(settings.worker.model, args.device, args.backend)
    except UsageError as err:
        print(f"facesleuth serve: {err}", file=sys.stderr)
        return EXIT_USAGE
    auth = "with a bearer token" if settings.token else "without a token (anyone who reaches it can upload)"
    # in broker mode the workers scan with their own flags, so only the local pool's are told
    workers = (f"{args.workers} workers, {args.frames} frames per video ({args.frame_policy})"
               if settings.broker is None else
               f"jobs on {settings.broker.url.rpartition('@')[2]} for `facesleuth worker` processes")
    print(f"facesleuth serve: http://{args.host}:{args.port}/ ({workers}, {auth}; "
          f"data in {settings.data_dir})", file=sys.stderr)
    # SIGTERM: uvicorn stops accepting, lets requests in flight finish (10 s at most), then the
    # lifespan stops the pool (its running jobs go back to the queue) or the broker's reaper.
    # Request lines come from RequestLog (one per request, JSON with --log-format json).
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=10, log_config=None)
    return EXIT_OK
