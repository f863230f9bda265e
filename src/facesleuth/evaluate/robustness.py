"""The robustness suite: how trained runs score on perturbed copies of a test set.

For each test set x perturbation (:mod:`facesleuth.extract.perturb`, e.g. ``jpeg_70``) every video of a
manifest chunk is perturbed into a lossless file (:func:`perturb_chunk`), the chunk goes through
the test set's own extraction once (cached by the workflow; the perturbed files are temporary),
and each selected run scores the faces as it scores the clean test set. This module turns the
resulting video predictions into scores per run, test set and perturbation (:func:`score_grid`);
their tables are :mod:`facesleuth.report.robustness`, the figure of AUC against severity
:func:`facesleuth.report.figures.severity_curves`.
"""

from __future__ import annotations

import logging
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facesleuth import registry
from facesleuth.extract import perturb
from facesleuth.extract.flows import chunk_rows
from facesleuth.evaluate.metrics import evaluated_videos, roc_auc, video_log_loss
from facesleuth.registry import MISSING
from facesleuth.extract.video import VideoError

log = logging.getLogger(__name__)

CLEAN = registry.CLEAN
METRICS = {"auc": ("ROC-AUC", roc_auc, "higher"), "logloss": ("video log loss", video_log_loss, "lower")}


# ---------------------------------------------------------------------- perturbing a chunk


def video_seed(seed: int, perturbation: str, video_id: str) -> int:
    """Seed of one video's perturbation (noise draws): stable across machines and runs."""
    return zlib.crc32(f"{seed}/{perturbation}/{video_id}".encode("utf-8"))


def perturbed_path(out_dir: str | os.PathLike, video_id: str) -> Path:
    """Where a perturbed video goes: its id (a relative path) under ``out_dir``, lossless AVI."""
    return Path(out_dir) / f"{video_id}{perturb.LOSSLESS_SUFFIX}"


def perturb_chunk(
    manifest: pd.DataFrame, chunk: int, chunks: int, perturbation: str, out_dir: str | os.PathLike, seed: int = 0
) -> pd.DataFrame:
    """Perturb the videos of one manifest chunk (the chunks of extraction) into ``out_dir``.

    Returns the chunk's manifest rows pointing at the perturbed files. A video that cannot be
    perturbed (missing, unreadable) becomes a ``missing`` row whose message says why, so the
    extraction reports it and never falls back to the clean video.
    """
    family, value = registry.parse_perturbation(perturbation)
    if not perturb.family_of(family).needs():
        raise RuntimeError(f"perturbation {perturbation}: this installation cannot run {family} (see facesleuth.extract.perturb)")
    Path(out_dir).mkdir(parents=True, exist_ok=True)  # the rule's output, even for a chunk without videos
    rows = chunk_rows(manifest, chunk, chunks).copy().reset_index(drop=True)
    paths, statuses, messages = [], [], []
    for row in rows.itertuples(index=False):
        target = perturbed_path(out_dir, row.video_id)
        status, message = row.status, row.message
        if row.status != MISSING:
            try:
                counts = perturb.perturb_video(row.path, target, family, value, video_seed(seed, perturbation, row.video_id))
                log.info("%s: %s, %d -> %d frames", row.video_id, perturbation, counts["frames_in"], counts["frames_out"])
            except (VideoError, OSError, ValueError) as err:
                status, message = MISSING, f"could not be perturbed ({perturbation}): {err}"
                log.warning("%s: %s", row.video_id, message)
        paths.append(str(target))
        statuses.append(status)
        messages.append(message)
    return rows.assign(path=paths, status=statuses, message=messages)


# ---------------------------------------------------------------------- scores


def scores(videos_df: pd.DataFrame) -> dict[str, float]:
    """ROC-AUC and video log loss of one run's video predictions (as the metrics rule counts
    videos: no-face fallbacks included, unlabelled and unscored left out); NaN where one class
    is missing."""
    videos, _ = evaluated_videos(videos_df)
    y_true = videos["label"].to_numpy(dtype=np.int8)
    y_score = videos["score"].to_numpy(dtype=float)
    if len(set(y_true.tolist())) < 2:
        return {name: math.nan for name in METRICS}
    return {name: float(function(y_true, y_score)) for name, (_, function, _) in METRICS.items()}


def score_grid(cells: Sequence[Mapping[str, str]], paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Long table (testset, run, perturbation, auc, logloss) from video prediction files, one per
    ``cells`` entry ({testset, run, perturbation}), in the same order."""
    if len(cells) != len(paths):
        raise ValueError(f"{len(cells)} robustness cells but {len(paths)} prediction files")
    rows = []
    for cell, path in zip(cells, paths):
        rows.append({**{key: cell[key] for key in ("testset", "run", "perturbation")}, **scores(pd.read_parquet(path))})
    return pd.DataFrame(rows, columns=["testset", "run", "perturbation", *METRICS])
