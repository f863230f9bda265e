"""``facesleuth track RESULTS --to mlflow``: log a study's run folders and results to experiment trackers.

The backfill of a study that ran without tracking (or with other trackers): every run folder's
settings, epochs, threshold, calibration and test metrics, the ensembles, the generalisation
matrix and the robustness suite (:func:`facesleuth.train.experiments.sync_results`). What a tracker
already holds (the run folder's ``tracking.json``) is not sent again, so running it twice, or
after the workflow's own tracking, adds nothing.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from facesleuth.registry import TRACKING_BACKENDS as BACKENDS
    from facesleuth.registry import WANDB_MODES

    parser = subparsers.add_parser(
        "track",
        help="log a study's run folders and results to MLflow, W&B or TensorBoard (backfill)",
        description="Send what results/ holds (runs, epochs, thresholds, metrics, ensembles, generalisation, "
                    "robustness) to experiment trackers; what they already hold is not sent again.",
    )
    parser.add_argument("results", type=Path, help="the study's results folder, e.g. results/")
    parser.add_argument("--to", dest="backends", action="append", choices=BACKENDS,
                        help="a tracker to feed (repeatable; default: the config's tracking.backends)")
    parser.add_argument("--config", type=Path, default=None,
                        help="config file whose tracking section to use (default: the schema's defaults)")
    parser.add_argument("--experiment", default=None, help="MLflow experiment / W&B project (default: the config's)")
    parser.add_argument("--mlflow-uri", default=None,
                        help="MLflow tracking URI or SQLite file (default: the config's, else RESULTS/mlflow.db)")
    parser.add_argument("--wandb-mode", choices=WANDB_MODES, default=None, help="W&B mode (default: the config's)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from facesleuth.train.experiments import TrackingSettings, sync_results
    from facesleuth.runtime import setup_logging

    setup_logging(None)
    log = logging.getLogger("facesleuth.train.experiments")
    if not args.results.is_dir():
        log.error("%s is not a folder", args.results)
        return 2
    section = {}
    if args.config is not None:
        section = dict((yaml.safe_load(args.config.read_text()) or {}).get("tracking") or {})
    overrides = {k: v for k, v in (("backends", args.backends), ("experiment", args.experiment),
                                   ("mlflow_uri", args.mlflow_uri), ("wandb_mode", args.wandb_mode)) if v}
    settings = TrackingSettings.from_config({**section, **overrides}, args.results)
    if not settings.enabled:
        log.error("no tracker named: pass --to mlflow (or wandb, tensorboard), or a --config with tracking.backends")
        return 2
    counts = sync_results(args.results, settings)
    if not counts["run"]:
        log.warning("%s holds no run folder (models/<model>/<run>/run.yaml)", args.results)
        return 1
    return 0
