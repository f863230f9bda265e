"""Scoring faces with a trained run and turning face scores into video scores (thesis 3).

"Sampled frames from each video were passed through a model ... Confidence of the fake class
averaged, and a single confidence value was created for the input video." The mean is the
thesis's aggregation; median, max, the mean of the most confident faces and the largest
track mean are offered in :data:`AGGREGATIONS` for videos where only one of several people, or
a few frames, are fake.

Every video of the manifest gets exactly one row: videos without a kept face (no face found,
unreadable, missing) get ``no_face_score`` with ``scored=False`` (or NaN when it is None), so
nothing disappears silently from the metrics.
"""

from __future__ import annotations

import logging
import math
import os
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from facesleuth import registry
from facesleuth.train.data import FaceDataset, make_loader, read_split
from facesleuth.io import FACE_PREDICTIONS_SCHEMA, VIDEO_PREDICTIONS_SCHEMA, read_parquets
from facesleuth.evaluate.inference import TORCH, load_predictor
from facesleuth.evaluate.metrics import equal_error_rate, roc_auc
from facesleuth.train.preprocess import decode_jpeg, is_published_preprocessing, normalize_batch, prepare_faces
from facesleuth.runtime import available_cpus, resolve_device

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from torch import nn

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- aggregations
# Every aggregation takes a video's face scores and, optionally, their track ids (faces of one
# person across frames; None where the faces were not tracked) and returns the video score.

Aggregation = Callable[..., float]


def _top_mean(scores: np.ndarray, tracks: np.ndarray | None = None) -> float:
    """Mean of the highest quarter of the face scores (at least one face)."""
    count = max(1, math.ceil(len(scores) / 4))
    return float(np.sort(scores)[-count:].mean())


def top_k_mean(k: int) -> Aggregation:
    """Mean of the ``k`` highest face scores (all faces when the video has fewer): the faces the
    model is most sure are fake, as the thesis's discussion suggests (3.3)."""
    if k < 1:
        raise ValueError(f"top-k mean needs k >= 1, got {k}")

    def aggregate(scores: np.ndarray, tracks: np.ndarray | None = None) -> float:
        return float(np.sort(scores)[-k:].mean())

    aggregate.__name__ = f"top{k}_mean"
    return aggregate


def max_track_mean(scores: np.ndarray, tracks: np.ndarray | None = None) -> float:
    """The largest mean score of one track: a video is as fake as its most suspicious person.

    Faces sharing a track id form a person; untracked faces (``tracks`` None) form one group, so
    the result is then the plain mean. A track id of -1 (not tracked) is one group of its own.
    """
    if tracks is None:
        return float(np.mean(scores))
    tracks = np.asarray(tracks)
    return float(max(scores[tracks == track].mean() for track in np.unique(tracks)))


AGGREGATIONS: dict[str, Aggregation] = {
    "mean": lambda scores, tracks=None: float(np.mean(scores)),  # the thesis
    "median": lambda scores, tracks=None: float(np.median(scores)),
    "max": lambda scores, tracks=None: float(np.max(scores)),
    "top_mean": _top_mean,
    "top3_mean": top_k_mean(3),
    "max_track_mean": max_track_mean,
}
registry.require_implemented("face-score aggregations", registry.AGGREGATIONS, AGGREGATIONS)
TOP_K_PATTERN = re.compile(r"top([1-9][0-9]*)_mean")


def get_aggregation(name: str) -> Aggregation:
    """The aggregation called ``name``: one of :data:`AGGREGATIONS`, or ``top<k>_mean`` for any k >= 1."""
    if name in AGGREGATIONS:
        return AGGREGATIONS[name]
    match = TOP_K_PATTERN.fullmatch(str(name))
    if match:
        return top_k_mean(int(match.group(1)))
    raise ValueError(f"unknown aggregation {name!r}; known: {', '.join(AGGREGATIONS)} "
                     "(and top<k>_mean for any k)")


def is_aggregation(name: str) -> bool:
    return name in AGGREGATIONS or TOP_K_PATTERN.fullmatch(str(name)) is not None


def aggregate_videos(
    face_scores_df: pd.DataFrame,
    status_df: pd.DataFrame | None,
    manifest_df: pd.DataFrame,
    aggregation: str = "mean",
    no_face_score: float | None = 0.5,
) -> pd.DataFrame:
    """One row per manifest video (VIDEO_PREDICTIONS_SCHEMA columns) from its faces' scores.

    ``face_scores_df``: ``video_id, score`` per face, and ``track`` where the aggregation may
    use it (``max_track_mean``; without it every face of a video is one track). ``status_df``: extraction status per video
    (``video_id, status``); a video it lacks takes the manifest's status. Videos without faces
    get ``no_face_score`` and ``scored=False`` (NaN score when ``no_face_score`` is None).
    """
    combine = get_aggregation(aggregation)
    if manifest_df["video_id"].duplicated().any():
        dupes = manifest_df.loc[manifest_df["video_id"].duplicated(), "video_id"].head(3).tolist()
        raise ValueError(f"the manifest lists videos more than once, e.g. {dupes}")
    known = set(manifest_df["video_id"])
    strangers = sorted(set(face_scores_df["video_id"]) - known)
    if strangers:
        raise ValueError(f"{len(strangers)} videos have face scores but are not in the manifest, e.g. {strangers[:3]}; "
                         "were faces and manifest made from the same dataset?")
    by_video = face_scores_df.groupby("video_id", sort=False)
    grouped = {video: group["score"].to_numpy(dtype=np.float64) for video, group in by_video}
    tracks_of = ({video: group["track"].to_numpy() for video, group in by_video} if "track" in face_scores_df
                 else {})
    statuses: dict[str, str] = {}
    if status_df is not None and len(status_df):
        statuses = dict(zip(status_df["video_id"], status_df["status"], strict=True))
    fallback = float("nan") if no_face_score is None else float(no_face_score)

    bad = int((~np.isfinite(face_scores_df["score"].to_numpy(dtype=np.float64))).sum())
    if bad:  # kept: a NaN video score shows up in the metrics instead of vanishing here
        log.warning("%d face scores are NaN or infinite; their videos' scores will be too", bad)
    rows = []
    for video in manifest_df.itertuples(index=False):
        scores = grouped.get(video.video_id)
        scored = scores is not None and len(scores) > 0
        tags = getattr(video, "tags", None)
        rows.append({
            "dataset": getattr(video, "dataset", None),
            "video_id": video.video_id,
            "label": int(video.label),
            "tags": list(tags) if tags is not None else [],
            "status": statuses.get(video.video_id, getattr(video, "status", None) or "no_status"),
            "n_faces": int(len(scores)) if scored else 0,
            "score": combine(scores, tracks_of.get(video.video_id)) if scored else fallback,
            "scored": bool(scored),
        })
    return pd.DataFrame(rows, columns=VIDEO_PREDICTIONS_SCHEMA.names)


# ---------------------------------------------------------------------------- models


def _load_for_evaluation(run_dir: str | os.PathLike, device: str, evaluation: dict[str, Any]):
    """A run's model for the workflow's predictions, on the backend ``evaluation`` names."""
    return load_predictor(run_dir, device, evaluation.get("backend") or TORCH)


def predict_faces(
    model: "nn.Module",
    run_info: dict[str, Any],
    faces_df: "pd.DataFrame | pa.Table",
    device: "str | torch.device" = "cpu",
    batch_size: int = 128,
    num_workers: int | None = None,
) -> np.ndarray:
    """Fake probability (softmax of class 1, float32) of each face in ``faces_df`` (``jpeg`` column), in order.

    ``faces_df`` may also be a pyarrow Table (the JPEG bytes then stay in Arrow buffers).

    Inputs are prepared exactly as in training (letterbox to the run's input size, ImageNet
    normalisation); inference runs in float32 (fp16 overflow cost the thesis a validation loss).
    """
    if len(faces_df) == 0:
        return np.zeros(0, dtype=np.float32)
    device = torch.device(device)
    if num_workers is None:
        # decoding workers beside a GPU, from the job's own CPUs (not the node's)
        num_workers = min(8, max(0, available_cpus() - 1)) if device.type == "cuda" else 0
    if is_published_preprocessing(run_info.get("preprocessing")):
        return _predict_published_faces(model, run_info, faces_df, device, batch_size)
    dataset = FaceDataset.from_faces(faces_df, int(run_info["input_size"]))
    loader = make_loader(dataset, batch_size, num_workers=num_workers, device=device)
    scores = []
    with torch.inference_mode():
        for images, _ in tqdm(loader, desc="faces", unit="batch", disable=None, leave=False):
            inputs = normalize_batch(images.to(device, non_blocking=True), channels_last=True)
            # kept on the device: a copy back per batch would wait for the GPU every batch
            scores.append(torch.softmax(model(inputs).float(), dim=1)[:, 1])
    return torch.cat(scores).cpu().numpy().astype(np.float32)


def _predict_published_faces(model: "nn.Module", run_info: dict[str, Any], faces_df: "pd.DataFrame | pa.Table",
                             device: torch.device, batch_size: int) -> np.ndarray:
    """predict_faces for an imported detector: its own preprocessing, decoding one batch at a time."""
    from facesleuth.train.data import JpegColumn

    jpegs = JpegColumn(faces_df.column("jpeg")) if hasattr(faces_df, "column") else faces_df["jpeg"].tolist()
    scores = []
    for start in tqdm(range(0, len(jpegs), batch_size), desc="faces", unit="batch", disable=None, leave=False):
        crops = [decode_jpeg(jpegs[i]) for i in range(start, min(start + batch_size, len(jpegs)))]
        scores.append(predict_crops(model, run_info, crops, device, batch_size))
    return np.concatenate(scores).astype(np.float32)


def predict_crops(
    model: "nn.Module",
    run_info: dict[str, Any],
    crops: "list[np.ndarray]",
    device: "str | torch.device" = "cpu",
    batch_size: int = 64,
    margin: int | None = None,
) -> np.ndarray:
    """Fake probability of RGB uint8 face crops held in memory (the scanner), prepared as in training
    (an imported detector's: as its authors did; ``margin``, the crops' margin, for its re-crop)."""
    device = torch.device(device)
    scores = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            inputs = prepare_faces(crops[start : start + batch_size], run_info, device, margin)
            scores.append(torch.softmax(model(inputs).float(), dim=1)[:, 1].cpu())
    return torch.cat(scores).numpy().astype(np.float32) if scores else np.zeros(0, dtype=np.float32)


def face_predictions(faces_df: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """FACE_PREDICTIONS_SCHEMA rows for scored faces (no JPEG bytes)."""
    frame = pd.DataFrame({name: faces_df[name].to_numpy() if name in faces_df else None
                          for name in FACE_PREDICTIONS_SCHEMA.names if name != "score"})
    if "track" not in faces_df:
        frame["track"] = -1
    if "frame" not in faces_df:
        frame["frame"] = -1
    frame["score"] = scores.astype(np.float32)
    return frame[FACE_PREDICTIONS_SCHEMA.names]


def _read_faces(path: str | os.PathLike) -> "pa.Table":
    wanted = ["dataset", "video_id", "face_id", "frame", "track", "label", "jpeg"]
    names = pq.read_schema(path).names
    missing = [n for n in ("video_id", "face_id", "jpeg") if n not in names]
    if missing:
        raise ValueError(f"{path} is not a faces file: columns {missing} are missing")
    return pq.read_table(path, columns=[n for n in wanted if n in names], memory_map=True)


def predict_testset(
    run_dir: str | os.PathLike,
    faces_paths: Iterable[str | os.PathLike],
    status_paths: Iterable[str | os.PathLike],
    manifest_path: str | os.PathLike,
    evaluation: dict[str, Any],
    device: "str | torch.device" = "auto",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every face of a test set (chunk by chunk) and aggregate per video.

    Returns ``(videos_df, faces_df)`` in VIDEO_PREDICTIONS_SCHEMA and FACE_PREDICTIONS_SCHEMA.
    """
    device = resolve_device(str(device))
    model, info = _load_for_evaluation(run_dir, device, evaluation)
    batch_size = int(evaluation.get("batch_size", 128))
    face_frames = []
    for path in faces_paths:
        faces = _read_faces(path)
        log.info("%s: scoring %d faces with %s/%s", path, len(faces), info.get("model"), info.get("setup"))
        scores = predict_faces(model, info, faces, device, batch_size)
        face_frames.append(face_predictions(faces.drop_columns(["jpeg"]).to_pandas(), scores))
    faces_df = (pd.concat(face_frames, ignore_index=True) if face_frames
                else pd.DataFrame({n: pd.Series(dtype=object) for n in FACE_PREDICTIONS_SCHEMA.names}))
    status_paths = list(status_paths)
    status_df = read_parquets(status_paths, columns=["video_id", "status"]) if status_paths else None
    manifest_df = pd.read_parquet(manifest_path)
    videos_df = aggregate_videos(faces_df, status_df, manifest_df, evaluation.get("aggregation", "mean"),
                                 evaluation.get("no_face_score", 0.5))
    scored = int(videos_df["scored"].sum())
    log.info("%d videos, %d with faces, %d faces scored", len(videos_df), scored, len(faces_df))
    return videos_df, faces_df


# ---------------------------------------------------------------------------- validation
# The validation data is a validation dataset's test-flow faces (splits.validation_dataset,
# DFDC's own validation set in the study), scored as a test set's, or the split's held-out
# train-flow faces. Either way: face scores -> video scores -> EER threshold (and, in rule
# validate, a calibration temperature), recorded with what they were chosen on. A run's whole
# validation, the temperature with it, is facesleuth.evaluate.validation.validate_run.


def score_validation_faces(
    run_dir: str | os.PathLike,
    split_path: str | os.PathLike,
    evaluation: dict[str, Any],
    device: "str | torch.device" = "auto",
) -> pd.DataFrame:
    """Fake probability of every held-out validation face of the split (FACE_PREDICTIONS_SCHEMA rows)."""
    device = resolve_device(str(device))
    model, info = _load_for_evaluation(run_dir, device, evaluation)
    table = read_split(split_path, "val")
    if table.num_rows == 0:
        raise ValueError(f"{split_path} holds no validation faces (made with splits.validation_dataset?); "
                         "validate on the validation dataset instead")
    scores = predict_faces(model, info, table, device, int(evaluation.get("batch_size", 128)))
    return face_predictions(table.drop_columns(["jpeg"]).to_pandas(), scores)


def validation_videos(face_scores_df: pd.DataFrame, aggregation: str = "mean") -> pd.DataFrame:
    """Video scores of validation faces (FACE_PREDICTIONS_SCHEMA rows) by ``aggregation``.

    The videos are those the faces belong to: every video of a split's hold-out; of a validation
    dataset, the videos with a kept face.
    """
    columns = ["video_id", "label"] + (["dataset"] if "dataset" in face_scores_df else [])
    videos = face_scores_df[columns].drop_duplicates("video_id").sort_values("video_id", ignore_index=True)
    videos["tags"] = [[] for _ in range(len(videos))]
    videos["status"] = "ok"
    return aggregate_videos(face_scores_df, None, videos, aggregation, None)


def validation_threshold(
    videos_df: pd.DataFrame,
    aggregation: str,
    where: str = "validation",
    validation: dict[str, Any] | None = None,
    n_unscored: int = 0,
) -> dict[str, Any]:
    """The EER threshold chosen on validation video scores, with the EER, AUC and aggregation.

    Returns ``{eer_threshold, eer, auc, n_videos, n_unscored, source: "validation", aggregation,
    validation}``: ``validation`` says which data (:func:`facesleuth.config.validation_source`),
    ``n_unscored`` how many of its videos had no kept face and were left out (their score would be
    the neutral ``no_face_score``, not the model's; the scanner gives such a video no verdict).
    """
    y_true = videos_df["label"].to_numpy()
    y_score = videos_df["score"].to_numpy(dtype=np.float64)
    labels = set(y_true.tolist())
    if labels != {0, 1}:
        raise ValueError(f"{where}: the validation videos have labels {sorted(labels)}; the EER threshold needs "
                         "real (0) and fake (1) videos and nothing else")
    eer, threshold = equal_error_rate(y_true, y_score)
    result = {
        "eer_threshold": float(threshold),
        "eer": float(eer),
        "auc": float(roc_auc(y_true, y_score)),
        "n_videos": int(len(videos_df)),
        "n_unscored": int(n_unscored),
        "source": "validation",
        "aggregation": aggregation,
        "validation": dict(validation) if validation else None,
    }
    log.info("validation on %s: %d videos (%d without faces left out), EER %.4f at threshold %.4f, AUC %.4f",
             where, result["n_videos"], result["n_unscored"], result["eer"], result["eer_threshold"], result["auc"])
    return result


def validate_on_holdout(
    run_dir: str | os.PathLike,
    split_path: str | os.PathLike,
    evaluation: dict[str, Any],
    device: "str | torch.device" = "auto",
    validation: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Face and video scores on the split's held-out faces, and the EER threshold chosen on them (thesis 3, Fig. 3.1).

    Returns ``(faces_df, videos_df, threshold)`` (see :func:`validation_threshold`), the threshold
    the metrics and the scanner apply to test scores (``aggregation`` names how face scores
    became these video scores, so the scanner aggregates the same way). ``validation`` describes
    the hold-out (:func:`facesleuth.config.validation_source`).
    """
    aggregation = evaluation.get("aggregation") or "mean"
    faces_df = score_validation_faces(run_dir, split_path, evaluation, device)
    videos_df = validation_videos(faces_df, aggregation)
    source = validation or {"kind": "holdout", "flow": "train"}
    return faces_df, videos_df, validation_threshold(videos_df, aggregation, str(split_path), source)


def validate_on_dataset(
    run_dir: str | os.PathLike,
    faces_paths: Iterable[str | os.PathLike],
    status_paths: Iterable[str | os.PathLike],
    manifest_path: str | os.PathLike,
    evaluation: dict[str, Any],
    validation: dict[str, Any],
    device: "str | torch.device" = "auto",
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Face and video scores on a validation dataset's test-flow faces, and the EER threshold chosen on them.

    The faces become video scores exactly as a test set's do (:func:`predict_testset`, the
    configured aggregation), so the threshold is chosen on the kind of score it is applied to.
    Returns ``(faces_df, videos_df, threshold)``: the faces and videos it was chosen on, those
    with a label and a kept face (videos without a face are counted in ``n_unscored``).
    """
    all_videos, faces_df = predict_testset(run_dir, faces_paths, status_paths, manifest_path, evaluation, device)
    labelled = all_videos[all_videos["label"].isin([0, 1])]
    if len(labelled) < len(all_videos):
        log.warning("%d validation videos have no label; left out of the threshold", len(all_videos) - len(labelled))
    videos_df = labelled[labelled["scored"].astype(bool)].reset_index(drop=True)
    faces_df = faces_df[faces_df["video_id"].isin(videos_df["video_id"])].reset_index(drop=True)
    where = str(validation.get("name") or manifest_path)
    threshold = validation_threshold(videos_df, evaluation.get("aggregation", "mean"), where, validation,
                                     n_unscored=len(labelled) - len(videos_df))
    return faces_df, videos_df, threshold
