"""Video-level metrics of one run on one test set (thesis section 3).

The thesis scores a video by the mean fake confidence of its sampled faces and reports:
video log loss (Table 3.1), the equal error rate and its threshold (Fig. 3.1, 3.2), ROC-AUC
(Fig. 3.7), sensitivity/specificity (Table 3.6) and F1 (Table 3.7) with *fake* as the positive
class, and the share of misclassified videos per DFDC augmenter/distractor (Tables 3.2-3.5).

Conventions used everywhere here: label 1 is fake, 0 real; a video is called fake when its
score is **>= threshold**. The thesis picked each run's threshold at the EER of the test set
itself; a deployed scanner can only use a threshold chosen beforehand (on the validation
split), so :func:`evaluate` reports the threshold-dependent numbers at both, labelled.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("facesleuth.evaluate.metrics")

EPS = 1e-15
MAX_ROC_POINTS = 512

# How the JSON, tables and figures name the two thresholds, and what they mean.
THRESHOLD_KINDS = {
    "validation": "the run's validation EER threshold (chosen on the validation data before testing)",
    "test_eer": "the test set's own EER threshold (as in the thesis)",
}

NO_TAG = "none"


class MetricsError(ValueError):
    """The inputs cannot give a meaningful metric (empty, one class, bad labels)."""


def _as_arrays(y_true, y_score, what: str) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_score = np.asarray(y_score, dtype=float).ravel()
    if y_true.size == 0:
        raise MetricsError(f"{what}: no videos to evaluate (empty input)")
    if y_true.shape != y_score.shape:
        raise MetricsError(f"{what}: {y_true.size} labels but {y_score.size} scores")
    bad_labels = sorted(set(np.unique(y_true)) - {0.0, 1.0})
    if bad_labels:
        raise MetricsError(f"{what}: labels must be 0 (real) or 1 (fake), found {bad_labels}")
    if not np.all(np.isfinite(y_score)):
        raise MetricsError(f"{what}: {int((~np.isfinite(y_score)).sum())} scores are NaN or infinite")
    return y_true.astype(np.int8), y_score


def _require_both_classes(y_true: np.ndarray, what: str) -> None:
    n_fake = int((y_true == 1).sum())
    n_real = int((y_true == 0).sum())
    if n_fake == 0 or n_real == 0:
        missing = "fake" if n_fake == 0 else "real"
        raise MetricsError(
            f"{what} needs both classes but there are no {missing} videos ({n_fake} fake, {n_real} real)"
        )


def video_log_loss(y_true, y_prob) -> float:
    """Mean binary cross-entropy (thesis eq. 3.1), probabilities clipped to [1e-15, 1 - 1e-15].

    Clipping keeps one confidently wrong video from making the loss infinite, as in the DFDC
    competition's scoring.
    """
    y_true, y_prob = _as_arrays(y_true, y_prob, "log loss")
    p = np.clip(y_prob, EPS, 1 - EPS)
    return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))


def roc_curve(y_true, y_score, drop_intermediate: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` with thresholds decreasing and all finite.

    scikit-learn puts ``inf`` first (the point where nothing is called fake); it is replaced by
    the next float above the highest score, which means the same and survives JSON.
    """
    from sklearn.metrics import roc_curve as sk_roc_curve  # over a second to import; the scanner never needs it

    y_true, y_score = _as_arrays(y_true, y_score, "ROC curve")
    _require_both_classes(y_true, "ROC curve")
    fpr, tpr, thresholds = sk_roc_curve(y_true, y_score, pos_label=1, drop_intermediate=drop_intermediate)
    thresholds = thresholds.astype(float)
    if not np.isfinite(thresholds[0]):
        thresholds[0] = np.nextafter(float(y_score.max()), np.inf)
    return fpr, tpr, thresholds


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve (fake = positive)."""
    from sklearn.metrics import roc_auc_score  # over a second to import; the scanner never needs it

    y_true, y_score = _as_arrays(y_true, y_score, "ROC-AUC")
    _require_both_classes(y_true, "ROC-AUC")
    return float(roc_auc_score(y_true, y_score))


def equal_error_rate(y_true, y_score) -> tuple[float, float]:
    """``(eer, threshold)`` where the false positive and false negative rates cross.

    Walking the ROC from the strictest threshold down, FPR - FNR rises from -1 to +1; the
    crossing is linearly interpolated between the two ROC points around the sign change, both
    the rate and the threshold, so the result does not jump with one video's score.
    """
    fpr, tpr, thresholds = roc_curve(y_true, y_score, drop_intermediate=False)
    fnr = 1.0 - tpr
    gap = fpr - fnr
    i = int(np.argmax(gap >= 0))  # first point at or past the crossing; gap[-1] = fpr 1 - fnr 0 = 1
    if gap[i] == 0 or i == 0:
        return float(fpr[i]), float(thresholds[i])
    t = -gap[i - 1] / (gap[i] - gap[i - 1])
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    threshold = thresholds[i - 1] + t * (thresholds[i] - thresholds[i - 1])
    return float(eer), float(threshold)


def confusion_at(y_true, y_score, threshold: float) -> dict[str, int]:
    """Counts with fake (1) as positive and ``score >= threshold`` meaning fake."""
    y_true, y_score = _as_arrays(y_true, y_score, "confusion matrix")
    predicted_fake = y_score >= threshold
    is_fake = y_true == 1
    return {
        "tp": int((predicted_fake & is_fake).sum()),
        "fp": int((predicted_fake & ~is_fake).sum()),
        "tn": int((~predicted_fake & ~is_fake).sum()),
        "fn": int((~predicted_fake & is_fake).sum()),
    }


def _rate(numerator: int, denominator: int, what: str) -> float:
    if denominator == 0:
        raise MetricsError(f"{what} is undefined: no videos of the class it is measured on")
    return numerator / denominator


def sensitivity(y_true, y_score, threshold: float) -> float:
    """True positive rate: share of fake videos called fake (thesis eq. 3.2)."""
    c = confusion_at(y_true, y_score, threshold)
    return _rate(c["tp"], c["tp"] + c["fn"], "sensitivity (no fake videos)")


def specificity(y_true, y_score, threshold: float) -> float:
    """True negative rate: share of real videos called real (thesis eq. 3.3)."""
    c = confusion_at(y_true, y_score, threshold)
    return _rate(c["tn"], c["tn"] + c["fp"], "specificity (no real videos)")


def f1(y_true, y_score, threshold: float) -> float:
    """F1 with fake as the positive class; 0 when nothing is called fake correctly."""
    c = confusion_at(y_true, y_score, threshold)
    denominator = 2 * c["tp"] + c["fp"] + c["fn"]
    return 0.0 if c["tp"] == 0 else 2 * c["tp"] / denominator


def _tags_of(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, float) and math.isnan(value):
        return []
    return [str(t) for t in list(value) if t is not None and str(t) != ""]


def _split_tag(tag: str) -> tuple[str, str]:
    kind, sep, name = tag.partition(":")
    return (kind, name) if sep else ("tag", tag)


def error_rates_by_tag(videos_df: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per tag and class: videos, misclassified videos and their percentage.

    ``videos_df`` needs ``label``, ``score`` and ``tags`` (strings ``augmenter:<name>`` /
    ``distractor:<name>``). Videos with no tag form the ``none`` row. Classes are reported
    separately (a fake called real and a real called fake are different failures). Returns
    columns ``tag, kind, name, label, videos, misclassified, percent`` with label ``fake`` or
    ``real``; a tag absent from a class has no row there (never a NaN).
    """
    for column in ("label", "score", "tags"):
        if column not in videos_df.columns:
            raise MetricsError(f"error rates by tag: column {column!r} missing (have {list(videos_df.columns)})")
    rows = []
    for label, score, tags in zip(videos_df["label"], videos_df["score"], videos_df["tags"]):
        wrong = (float(score) >= threshold) != (int(label) == 1)
        for tag in _tags_of(tags) or [NO_TAG]:
            rows.append((tag, "fake" if int(label) == 1 else "real", wrong))
    columns = ["tag", "kind", "name", "label", "videos", "misclassified", "percent"]
    if not rows:
        return pd.DataFrame(columns=columns)
    long = pd.DataFrame(rows, columns=["tag", "label", "wrong"])
    table = long.groupby(["tag", "label"], sort=True)["wrong"].agg(videos="size", misclassified="sum").reset_index()
    table["misclassified"] = table["misclassified"].astype(int)
    table["percent"] = 100.0 * table["misclassified"] / table["videos"]
    kinds_names = [(NO_TAG, NO_TAG) if t == NO_TAG else _split_tag(t) for t in table["tag"]]
    table["kind"] = [k for k, _ in kinds_names]
    table["name"] = [n for _, n in kinds_names]
    return table[columns]


def _downsample_roc(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, limit: int) -> dict[str, list[float]]:
    """At most ``limit`` ROC points, evenly spread along the curve, ends kept (for JSON and plots)."""
    if len(fpr) > limit:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, limit)).astype(int))
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    return {
        "fpr": [float(v) for v in fpr],
        "tpr": [float(v) for v in tpr],
        "thresholds": [float(v) for v in thresholds],
    }


def _at_threshold(y_true: np.ndarray, y_score: np.ndarray, threshold: float, kind: str) -> dict[str, Any]:
    counts = confusion_at(y_true, y_score, threshold)
    return {
        "threshold": float(threshold),
        "description": THRESHOLD_KINDS[kind],
        **counts,
        "sensitivity": sensitivity(y_true, y_score, threshold),
        "specificity": specificity(y_true, y_score, threshold),
        "f1": f1(y_true, y_score, threshold),
        "accuracy": (counts["tp"] + counts["tn"]) / len(y_true),
    }


def evaluated_videos(videos_df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The videos that enter the metrics, and the counts of those that do not.

    Videos without faces carry the configured no-face score (``scored`` False) and are kept;
    where that score is null they are left out and counted as ``unscored``. Videos of unknown
    label (-1) are left out and counted as ``unlabelled``. A video *with* faces but a NaN score
    means the model diverged: that is an error, not a video to drop.
    """
    missing = [c for c in ("label", "score") if c not in videos_df.columns]
    if missing:
        raise MetricsError(f"video predictions lack columns {missing} (have {list(videos_df.columns)})")
    if "scored" in videos_df.columns:
        scored_flag = videos_df["scored"].fillna(False).astype(bool)
    else:
        scored_flag = pd.Series(True, index=videos_df.index)
    has_score = videos_df["score"].notna()
    labelled = videos_df["label"].isin([0, 1])
    diverged = scored_flag & ~has_score
    if diverged.any():
        examples = videos_df.loc[diverged, "video_id"].head(3).tolist() if "video_id" in videos_df else []
        raise MetricsError(
            f"{int(diverged.sum())} videos have faces but a NaN score (e.g. {examples}): the model produced "
            f"NaN outputs; check the run's history.csv for a diverged loss and retrain"
        )
    keep = has_score & labelled
    counts = {
        "total": int(len(videos_df)),
        "unscored": int((~has_score & labelled).sum()),
        "unlabelled": int((~labelled).sum()),
        "fallback_score": int((has_score & labelled & ~scored_flag).sum()),
    }
    return videos_df.loc[keep].reset_index(drop=True), counts


def evaluate(videos_df: pd.DataFrame, validation_threshold: float) -> dict[str, Any]:
    """Everything the tables and figures need about one run on one test set, JSON-ready.

    ``videos_df`` is a video predictions table (``facesleuth.io.VIDEO_PREDICTIONS_SCHEMA``);
    ``validation_threshold`` is the run's EER threshold chosen on its validation split
    (``threshold.json``). Raises :class:`MetricsError` when the videos left are empty or hold
    only one class, so no table ever shows a NaN.
    """
    if validation_threshold is None or not np.isfinite(float(validation_threshold)):
        raise MetricsError(f"validation threshold must be a finite number, got {validation_threshold!r}")
    videos, counts = evaluated_videos(videos_df)
    if videos.empty:
        raise MetricsError(
            f"no video can be evaluated: {counts['total']} videos, {counts['unscored']} without a score "
            f"(no face and evaluation.no_face_score null), {counts['unlabelled']} without a label"
        )
    y_true = videos["label"].to_numpy(dtype=np.int8)
    y_score = videos["score"].to_numpy(dtype=float)
    n_fake, n_real = int((y_true == 1).sum()), int((y_true == 0).sum())
    if n_fake == 0 or n_real == 0:
        missing = "fake" if n_fake == 0 else "real"
        raise MetricsError(
            f"the test set has no {missing} videos to evaluate ({n_fake} fake, {n_real} real, "
            f"{counts['unscored']} unscored, {counts['unlabelled']} unlabelled): check its labels"
        )
    eer, eer_threshold = equal_error_rate(y_true, y_score)
    # every point kept (then thinned evenly): the EER figure plots the rates against the threshold,
    # where points that are collinear in ROC space still matter
    fpr, tpr, thresholds = roc_curve(y_true, y_score, drop_intermediate=False)
    thresholds_by_kind = {"validation": float(validation_threshold), "test_eer": eer_threshold}
    result = {
        "n_videos": {**counts, "evaluated": int(len(videos)), "fakes": n_fake, "reals": n_real},
        "log_loss": video_log_loss(y_true, y_score),
        "auc": roc_auc(y_true, y_score),
        "roc": _downsample_roc(fpr, tpr, thresholds, MAX_ROC_POINTS),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "validation_threshold": float(validation_threshold),
        "thresholds": {kind: {"value": value, "description": THRESHOLD_KINDS[kind]} for kind, value in thresholds_by_kind.items()},
        "at_threshold": {kind: _at_threshold(y_true, y_score, value, kind) for kind, value in thresholds_by_kind.items()},
        "errors_by_tag": {
            kind: error_rates_by_tag(videos, value).to_dict(orient="records") for kind, value in thresholds_by_kind.items()
        },
    }
    log.info(
        "%d videos (%d fake, %d real): log loss %.4f, AUC %.4f, EER %.4f at %.4f; validation threshold %.4f",
        len(videos), n_fake, n_real, result["log_loss"], result["auc"], eer, eer_threshold, validation_threshold,
    )
    return result
