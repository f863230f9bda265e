"""``facesleuth worker --broker URL --model RUN --data-dir DIR``: scan the broker mode's jobs.

Start one per GPU, or one per few cores, on any machine that reaches Redis and sees the API's
data dir (a shared mount on a cluster). Each loads the run once, then takes jobs one at a time
(:mod:`facesleuth.serve.broker`). SIGTERM: take no new job, finish the one being scanned within
``--stop-timeout`` seconds or give it back to the queue, then exit 0. Exit 2 for a usage error, 3
when one input ran past ``--input-seconds`` and the worker ended itself (the input answers
``timed_out``; a supervisor starts the worker again).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facesleuth.cli.common import (
    THREADS_HELP,
    UsageError,
    detection_settings,
    frame_settings,
    limit_settings,
    thread_count,
)
from facesleuth.cli.serve import (
    EXIT_USAGE,
    add_logging_arguments,
    add_scanning_arguments,
    check_model,
    setup_logging_from_args,
)

_EPILOG = """\
examples:
  redis-server --appendonly yes --port 6379 &
  facesleuth serve --model RUN --broker redis://127.0.0.1:6379/0 --data-dir /shared/facesleuth &
  facesleuth worker --model RUN --broker redis://127.0.0.1:6379/0 --data-dir /shared/facesleuth --threads 1 &
  facesleuth worker --model RUN --broker redis://127.0.0.1:6379/0 --data-dir /shared/facesleuth --threads 1 &

Run every worker under a supervisor that starts it again when it exits (systemd Restart=always,
a Kubernetes Deployment, a SLURM job array with --requeue): a worker whose input runs past
--input-seconds (stuck inside a decoder) marks that input timed_out in the data dir, gives its job
back and exits with code 3; the next worker answers that input timed_out and scans the others.
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "worker",
        help="scan the jobs `facesleuth serve --broker URL` queues (on this or any other machine)",
        description=(
            "Take scan jobs from the Redis broker of `facesleuth serve --broker URL`, scan their uploads\n"
            "with the run loaded once (as `facesleuth scan` does) and store each result once."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--broker", metavar="URL", required=True, help="Redis URL, the same as the API's --broker")
    parser.add_argument("--model", "-m", metavar="RUN", default=None,
                        help="training run folder (or its best.pt), the same run as the API's (default, as the "
                             "API's: the built-in MesoNet ensemble)")
    parser.add_argument("--data-dir", type=Path, required=True, metavar="DIR",
                        help="the API's --data-dir, as this machine sees it (a shared mount on a cluster): "
                             "the uploads are read from DIR/uploads")
    parser.add_argument("--threads", default="auto", metavar="N",
                        help=THREADS_HELP)
    add_scanning_arguments(parser)  # as the API's; an input stuck past --input-seconds ends this worker (exit 3)
    parser.add_argument("--name", metavar="NAME", help="this worker's name in logs and heartbeats (default HOST:PID)")
    parser.add_argument("--heartbeat-seconds", type=float, default=5.0, metavar="S",
                        help="heartbeat period; a worker silent for 3 periods is lost and its job queued again "
                             "(default 5)")
    parser.add_argument("--visibility-timeout", type=float, default=3600.0, metavar="S",
                        help="seconds before a task message a lost machine held is delivered again; longer than "
                             "the longest scan (default 3600)")
    parser.add_argument("--stop-timeout", type=float, default=30.0, metavar="S",
                        help="on SIGTERM, seconds the job being scanned may take to finish before it is given "
                             "back to the queue (default 30)")
    add_logging_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def settings_from_args(args: argparse.Namespace):
    from facesleuth.scan.scanner import ScanOptions
    from facesleuth.published.builtin import DEFAULT_RUN
    from facesleuth.serve.broker import BrokerSettings, BrokerWorkerSettings

    try:
        broker = BrokerSettings(args.broker, visibility_timeout=args.visibility_timeout,
                                heartbeat_seconds=args.heartbeat_seconds, stop_timeout=args.stop_timeout).check()
        frames, limits = frame_settings(args), limit_settings(args, args.config)
        ScanOptions(**frames, **limits).check()
        detection = detection_settings(args.config)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if not (args.data_dir / "uploads").is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no uploads/ folder in it; give the API's --data-dir "
                         "(start the API first; on a cluster, a mount every machine shares)")
    options = {"name": args.name} if args.name else {}
    model = str(Path(args.model or DEFAULT_RUN).resolve())
    return BrokerWorkerSettings(broker=broker, data_dir=args.data_dir.resolve(), model=model,
                                sampling=frames, device=args.device, backend=args.backend, detection=detection,
                                threads=thread_count(args.threads, 1), limits=limits, **options)


def run(args: argparse.Namespace) -> int:
    setup_logging_from_args(args)
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError as err:
        print(f"facesleuth worker: {err.name} is missing; install the web extra: pip install 'facesleuth[serve]'",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = settings_from_args(args)
        check_model(settings.model, args.device, args.backend)
    except UsageError as err:
        print(f"facesleuth worker: {err}", file=sys.stderr)
        return EXIT_USAGE
    from facesleuth.serve.broker import run_worker

    print(f"facesleuth worker {settings.name}: jobs from {settings.broker.url.rpartition('@')[2]}, uploads in "
          f"{settings.data_dir / 'uploads'}", file=sys.stderr)
    return run_worker(settings)
