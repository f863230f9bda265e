"""The thesis's future work (3.3) as numbers per run: aggregations, calibration and ensembles.

Each function turns outputs the pipeline already has (face predictions, video predictions,
the validation scores in a run folder) into a small JSON-ready record, so each study is its own
cached stage that reuses the expensive predictions instead of running the models again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from facesleuth.evaluate.calibration import apply_temperature, calibration_record
from facesleuth.evaluate.ensembles import combine_videos
from facesleuth.evaluate.metrics import (
    MetricsError,
    evaluate,
    evaluated_videos,
    roc_auc,
    video_log_loss,
)
from facesleuth.evaluate.predict import aggregate_videos, validation_threshold

log = logging.getLogger(__name__)


def _labelled_scores(videos_df: pd.DataFrame, what: str) -> tuple[np.ndarray, np.ndarray]:
    videos, _ = evaluated_videos(videos_df)
    if videos.empty:
        raise MetricsError(f"{what}: no video can be evaluated")
    return videos["label"].to_numpy(dtype=np.int8), videos["score"].to_numpy(dtype=float)


def aggregation_metrics(
    face_scores_df: pd.DataFrame,
    status_df: pd.DataFrame | None,
    manifest_df: pd.DataFrame,
    aggregations: Sequence[str],
    no_face_score: float | None = 0.5,
) -> dict[str, dict[str, Any]]:
    """Video log loss and ROC-AUC of one run on one test set under each aggregation of its face scores.

    Both are threshold-free, so no validation threshold is needed to compare aggregations.
    Videos without faces are handled as in the pipeline's predictions (``no_face_score``).
    """
    result = {}
    for aggregation in aggregations:
        videos = aggregate_videos(face_scores_df, status_df, manifest_df, aggregation, no_face_score)
        y_true, y_score = _labelled_scores(videos, f"aggregation {aggregation}")
        result[aggregation] = {
            "log_loss": video_log_loss(y_true, y_score),
            "auc": roc_auc(y_true, y_score),
            "n_videos": len(y_true),
        }
    return result


def fit_calibration(validation_videos_df: pd.DataFrame, aggregation: str) -> dict[str, Any]:
    """Temperature fitted on a run's (or ensemble's) validation video scores (``validation.parquet``)."""
    y_true, y_score = _labelled_scores(validation_videos_df, "calibration")
    return calibration_record(y_true, y_score, aggregation)


def calibrated_metrics(videos_df: pd.DataFrame, calibration: dict[str, Any]) -> dict[str, Any]:
    """Test log loss of a run's video scores before and after its validation temperature."""
    y_true, y_score = _labelled_scores(videos_df, "calibrated log loss")
    temperature = float(calibration["temperature"])
    return {
        "temperature": temperature,
        "log_loss_before": video_log_loss(y_true, y_score),
        "log_loss_after": video_log_loss(y_true, apply_temperature(y_score, temperature)),
        "n_videos": len(y_true),
    }


def ensemble_validation(member_validation: Sequence[pd.DataFrame], method: str, aggregation: str,
                        name: str, validation: dict[str, Any] | None = None) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """An ensemble's validation video scores, its EER threshold and its temperature.

    The members must share the validation data (one training set), so their videos match;
    ``validation`` says which it was (config.validation_source), as a run's threshold.json does.
    """
    videos = combine_videos(member_validation, method)
    threshold = validation_threshold(videos, aggregation, f"ensemble {name}", validation)
    threshold["ensemble_method"] = method
    return videos, threshold, fit_calibration(videos, aggregation)


def ensemble_metrics(member_videos: Sequence[pd.DataFrame], method: str, threshold: dict[str, Any],
                     name: str, members: Sequence[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """An ensemble's video scores on a test set and its metrics (as :func:`metrics.evaluate`)."""
    videos = combine_videos(member_videos, method)
    result = evaluate(videos, float(threshold["eer_threshold"]))
    result.update({"ensemble": name, "method": method, "members": list(members)})
    return videos, result
