"""The two extraction flows of thesis 2.4: videos -> face crops (JPEG in Parquet) + a status row.

Train flow (2.4.1): up to ``frames_per_video`` evenly spaced frames; MTCNN; faces of at least
``min_face_size`` px kept and cropped with ``margin``. A fake reuses the boxes detected on its
original (same frame indices) when the original was readable and has the same frame count and
size: the faces sit in the same place, and detection on the original is both cheaper (done
once per original) and cleaner (no detector drift on manipulated faces).

Test flow (2.4.2): detect on every ``frame_step``-th frame, link faces into tracks by IoU, keep
tracks longer than ``min_track_length``, sample about ``faces_per_video`` faces in proportion to
track length. Crops are cut from the full-resolution frames during the one decoding pass and
only the sampled ones are kept (past a memory budget, the sampled frames are decoded again).

Decoding runs in a background thread (``video.prefetch``), overlapping detection: the next
video's frames in the train flow, the next batch in the test flow (``decode_ahead=False``: in
the detecting thread, for a process that must keep to one core).

Every manifest row yields exactly one status row; one bad video never stops a chunk.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from facesleuth.config import section_defaults
from facesleuth.extract.detect import FaceDetector, FrameFaces
from facesleuth.io import FACES_SCHEMA, LABEL_FAKE, STATUS_SCHEMA
from facesleuth.registry import (
    EMPTY,
    ERROR,
    LIMIT_STATUSES,
    MISSING,
    NO_FACE,
    NO_TRACK,
    OK,
    UNREADABLE,
)
from facesleuth.runtime import chunk_of
from facesleuth.extract.tracking import link_tracks, sample_track_faces
from facesleuth.extract.video import (
    EXACT_FRAMES,
    NEAREST_REFERENCE,
    UNLIMITED,
    DecodeReport,
    FramePolicy,
    MediaLimits,
    VideoError,
    VideoInfo,
    evenly_spaced_indices,
    every_kth_indices,
    iter_frame_batches,
    iter_sampled_batches,
    prefetch,
    probe,
)

log = logging.getLogger(__name__)

FLOWS = ("train", "test")
SOURCE_SELF, SOURCE_ORIGINAL = "self", "original"
# Test flow: crops held from the single decoding pass before falling back to a second pass.
CROP_MEMORY_BUDGET = 256 * 2**20
#: Takes one detected batch's faces as ``((target_frame, face), crop)``: the sampled frame index the
#: face's frame stands for (unique, where two targets could share a decoded frame), the face's index
#: in its frame, and its RGB crop as it will be encoded. Faces the tracks later drop are handed over too.
CropsCallback = Callable[[list[tuple[tuple[int, int], np.ndarray]]], None]


# ---------------------------------------------------------------------- settings


@functools.lru_cache(maxsize=1)
def extraction_defaults() -> dict[str, dict[str, Any]]:
    """Defaults of the ``extraction`` section, read from the config schema (one source of truth)."""
    return {
        "detection": section_defaults("extraction", "detection"),
        "train_flow": section_defaults("extraction", "train_flow"),
        "test_flow": section_defaults("extraction", "test_flow"),
    }


def flow_settings_for(flow: str, flow_settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """``flow_settings`` over the schema's defaults for ``flow``; unknown keys are errors."""
    if flow not in FLOWS:
        raise ValueError(f"extraction flow must be one of {FLOWS}, got {flow!r}")
    defaults = extraction_defaults()[f"{flow}_flow"]
    settings = {**defaults, **(flow_settings or {})}
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise ValueError(f"extraction.{flow}_flow: unknown keys {unknown} (known: {sorted(defaults)})")
    return settings


def make_detector(detection: Mapping[str, Any] | FaceDetector | None) -> FaceDetector:
    if isinstance(detection, FaceDetector):
        return detection
    defaults = extraction_defaults()["detection"]
    return FaceDetector.from_config({**defaults, **(detection or {})})


# ---------------------------------------------------------------------- one video


@dataclass
class VideoBoxes:
    """Boxes detected on a video's train-flow frames, kept for its fakes to reuse: ``frames``
    the frames used, ``targets`` the sampled index each stands for (the same under ``exact``)."""

    video_id: str
    info: VideoInfo
    frames: list[int]
    faces: list[FrameFaces]
    targets: list[int] | None = None


@dataclass(frozen=True)
class FramesUsed:
    """The frames a train-flow video was read at: sampled targets and the frames used for them."""

    targets: list[int]
    used: list[int]


@dataclass
class Decoded:
    """Train flow: a video's sampled frames, decoded (possibly ahead, in another thread)."""

    info: VideoInfo
    indices: list[int]  # the frames used, one per sampled target that decoded
    frames: np.ndarray
    seconds: float
    report: DecodeReport = field(default_factory=DecodeReport)
    targets: list[int] | None = None  # the sampled index each frame stands for; None: ``indices``

    @property
    def frames_used(self) -> FramesUsed:
        return FramesUsed(list(self.targets if self.targets is not None else self.indices), list(self.indices))


def decode_train_frames(path: str | Path, frames_per_video: int, batch_size: int = 16,
                        limits: MediaLimits = UNLIMITED, policy: FramePolicy = EXACT_FRAMES,
                        original: FramesUsed | None = None) -> Decoded:
    """The train flow's sampled frames of one video under ``policy``.

    ``original``: the frames its original was read at. A fake sampled at the same targets is
    read at the original's frames (exactly, or from the reference frames where they are ones
    here too), so that it can reuse the boxes detected there.
    """
    started = time.perf_counter()
    info = probe(path, limits)
    targets = evenly_spaced_indices(info.frames, int(frames_per_video))
    wanted, target_of = targets, {i: i for i in targets}
    if original is not None and original.targets == targets:  # whatever its own B-frames are
        wanted, target_of = original.used, dict(zip(original.used, original.targets))
        if policy.name == NEAREST_REFERENCE:
            policy = FramePolicy(NEAREST_REFERENCE, 0)  # those very frames, without decoding B-frames to reach them
        else:
            policy = EXACT_FRAMES
    report = DecodeReport()
    decoded: dict[int, tuple[int, np.ndarray]] = {}  # target -> (used, frame)
    for batch_targets, used, frames in iter_sampled_batches(path, wanted, policy, batch_size, limits=limits,
                                                            report=report):
        for target, index, frame in zip(batch_targets, used, frames):
            decoded[target_of[target]] = (index, frame)
    kept = [t for t in targets if t in decoded]  # frames that failed to decode are left out, counted
    frames = (np.stack([decoded[t][1] for t in kept]) if kept
              else np.zeros((0, info.height, info.width, 3), np.uint8))
    return Decoded(info, [decoded[t][0] for t in kept], frames, time.perf_counter() - started, report, kept)


@dataclass
class Extraction:
    """Result of one video: face rows (FACES_SCHEMA dicts), its status row, its boxes."""

    faces: list[dict[str, Any]]
    status: dict[str, Any]
    boxes: VideoBoxes | None = None


def _status_row(dataset: str, video_id: str, path: str, label: int, status: str, message: str, **counts: Any) -> dict:
    row = {
        "dataset": dataset,
        "video_id": video_id,
        "path": path,
        "label": int(label),
        "status": status,
        "message": message,
        "frames_total": None,
        "frames_read": 0,
        "faces_detected": 0,
        "faces_kept": 0,
        "box_source": None,
        "seconds": 0.0,
        "frames_failed": 0,
        "frames_skipped": 0,
    }
    row.update(counts)
    return row


def _damage(counts: dict[str, Any], report: DecodeReport) -> dict[str, Any]:
    """``counts`` with the frames that failed to decode, said in the message too."""
    counts.update(frames_failed=report.frames_failed, frames_skipped=report.frames_skipped)
    if report.damaged:
        counts["message"] = f"{counts['message']}; damaged video: {report.describe()}"
    return counts


class _Crops:
    """Collects face rows for one video (crop, encode, describe)."""

    def __init__(self, detector: FaceDetector, dataset: str, video_id: str, label: int, box_source: str):
        self.detector, self.dataset, self.video_id = detector, dataset, video_id
        self.label, self.box_source = int(label), box_source
        self.rows: list[dict[str, Any]] = []

    def add(
        self, frame: np.ndarray, frame_index: int, face: int, box: np.ndarray, prob: float, landmarks: np.ndarray,
        track: int = -1, target_frame: int | None = None,
    ):
        crop, crop_box = self.detector.crop(frame, box)
        self.add_crop(crop, crop_box, frame_index, face, prob, landmarks, track, target_frame)

    def add_crop(
        self, crop: np.ndarray, crop_box: tuple[int, int, int, int], frame_index: int, face: int, prob: float,
        landmarks: np.ndarray, track: int = -1, target_frame: int | None = None,
    ):
        x0, y0, x1, y1 = crop_box
        points = np.asarray(landmarks, dtype=np.float32).reshape(-1)
        self.rows.append(
            {
                "dataset": self.dataset,
                "video_id": self.video_id,
                "face_id": f"{self.video_id}/{frame_index}/{face}",
                "frame": int(frame_index),
                "target_frame": int(frame_index if target_frame is None else target_frame),
                "face": int(face),
                "track": int(track),
                "x0": float(x0),
                "y0": float(y0),
                "x1": float(x1),
                "y1": float(y1),
                "prob": float(prob),
                "label": self.label,
                "box_source": self.box_source,
                "landmarks": points.tolist() if np.isfinite(points).all() else None,
                "jpeg": self.detector.encode(crop),
            }
        )


def _reuse_problem(original: VideoBoxes, info: VideoInfo) -> str | None:
    """Why the original's boxes do not fit this video, or None when they do."""
    mine = f"{info.frames} frames at {info.width}x{info.height}"
    theirs = f"{original.info.frames} frames at {original.info.width}x{original.info.height}"
    if (original.info.frames, original.info.width, original.info.height) != (info.frames, info.width, info.height):
        return f"original {original.video_id} has {theirs}, this video {mine}"
    return None


def _train_flow(
    decoded: Decoded,
    detector: FaceDetector,
    settings: Mapping[str, Any],
    crops: _Crops,
    original_boxes: VideoBoxes | None,
    note: str,
) -> tuple[dict[str, Any], VideoBoxes]:
    info, indices, frames = decoded.info, decoded.indices, decoded.frames
    notes = [note] if note else []
    faces: list[FrameFaces] | None = None
    if original_boxes is not None and settings["reuse_original_boxes"]:
        problem = _reuse_problem(original_boxes, info)
        if problem is None and list(original_boxes.frames) != list(indices):
            problem = f"frames of original {original_boxes.video_id} or of this video failed to decode"
        if problem is None:
            faces, crops.box_source = original_boxes.faces, SOURCE_ORIGINAL
            notes.append(f"boxes from original {original_boxes.video_id}")
        else:
            notes.append(f"{problem}; detected on this video")
    if faces is None:
        faces, crops.box_source = detector.detect(frames), SOURCE_SELF
    targets = decoded.frames_used.targets
    for frame, frame_index, target, found in zip(frames, indices, targets, faces):
        for face, (box, prob, points) in enumerate(zip(found.boxes, found.probs, found.landmarks)):
            crops.add(frame, frame_index, face, box, prob, points, target_frame=target)
    kept = len(crops.rows)
    with_faces = sum(1 for found in faces if len(found.boxes))
    if kept:
        notes.insert(0, f"{kept} faces in {with_faces} of {len(indices)} frames")
        status = OK
    else:
        where = "its original" if crops.box_source == SOURCE_ORIGINAL else f"{len(indices)} sampled frames"
        notes.insert(0, f"no face of at least {detector.min_face_size} px in {where}")
        status = NO_FACE
    counts = {
        "status": status,
        "message": "; ".join(notes),
        "frames_total": info.frames,
        "frames_read": len(frames),
        "faces_detected": sum(found.detected for found in faces),
        "faces_kept": kept,
        "box_source": crops.box_source,
    }
    return _damage(counts, decoded.report), VideoBoxes(crops.video_id, info, indices, faces, targets)


def _test_flow(path: str, detector: FaceDetector, settings: Mapping[str, Any], crops: _Crops,
               limits: MediaLimits = UNLIMITED, decode_ahead: bool = True,
               on_crops: CropsCallback | None = None) -> dict[str, Any]:
    report = DecodeReport()
    counts = _test_flow_counts(path, detector, settings, crops, limits, report, decode_ahead, on_crops)
    return _damage(counts, report)


def _test_flow_counts(path: str, detector: FaceDetector, settings: Mapping[str, Any], crops: _Crops,
                      limits: MediaLimits, report: DecodeReport, decode_ahead: bool = True,
                      on_crops: CropsCallback | None = None) -> dict[str, Any]:
    info = probe(path, limits)
    indices = every_kth_indices(info.frames, int(settings["frame_step"]), settings.get("max_frames"))
    # One decoding pass: detect on each batch and crop every kept face from the full-size
    # frames while they are at hand, so only crops (not frames) outlive the batch. Past the
    # budget the crops are dropped and the sampled frames decoded a second time instead.
    detections: list[FrameFaces] = []
    held: dict[tuple[int, int], tuple[np.ndarray, tuple[int, int, int, int]]] = {}
    held_bytes, holding = 0, True
    processed: list[int] = []  # the frame index of each detection (damaged frames are skipped)
    targets: list[int] = []  # the sampled index each processed frame stands for (frame_policy)
    policy = FramePolicy.from_settings(settings)
    ahead = 1 if decode_ahead else 0
    decoded = iter_sampled_batches(path, indices, policy, detector.batch_size, limits=limits, report=report,
                                   ramp_up=decode_ahead)
    for batch_targets, batch, frames in prefetch(decoded, ahead):
        processed.extend(batch)
        targets.extend(batch_targets)
        batch_crops: list[tuple[tuple[int, int], np.ndarray]] = []
        for target, frame, found in zip(batch_targets, frames, detector.detect(frames)):
            position = len(detections)
            detections.append(found)
            if not holding:
                continue
            for face, box in enumerate(found.boxes):
                crop, crop_box = detector.crop(frame, box)
                kept = crop.copy()  # outlives the frame it views
                held[(position, face)] = (kept, crop_box)
                held_bytes += kept.nbytes
                batch_crops.append(((target, face), kept))
            if held_bytes > CROP_MEMORY_BUDGET:
                log.info("%s: crops exceed %d MiB; sampled frames will be decoded again", crops.video_id,
                         CROP_MEMORY_BUDGET >> 20)
                held.clear()
                holding = False
        if on_crops is not None and holding and batch_crops:
            on_crops(batch_crops)
        del frames
    indices = processed
    counts: dict[str, Any] = {
        "frames_total": info.frames,
        "frames_read": len(detections),
        "faces_detected": sum(found.detected for found in detections),
        "box_source": SOURCE_SELF,
    }
    found_total = sum(len(found.boxes) for found in detections)
    if found_total == 0:
        counts.update(
            status=NO_FACE,
            message=f"no face of at least {detector.min_face_size} px in {len(indices)} processed frames",
        )
        return counts
    tracks = link_tracks([found.boxes for found in detections], float(settings["iou_threshold"]))
    min_length = int(settings["min_track_length"])
    sampled = sample_track_faces(tracks, min_length, int(settings["faces_per_video"]))
    if not sampled:
        longest = max(len(track) for track in tracks)
        counts.update(
            status=NO_TRACK,
            message=(
                f"{found_total} faces in {len(tracks)} tracks, the longest {longest} processed frames; "
                f"a track needs more than {min_length} (of {len(indices)} processed frames)"
            ),
        )
        return counts
    # (position, face, track number), tracks numbered 0.. in order of their first frame
    chosen = sorted(
        (position, face, number) for number, members in enumerate(sampled.values()) for position, face in members
    )
    if holding:
        for position, face, number in chosen:
            crop, crop_box = held[(position, face)]
            found = detections[position]
            crops.add_crop(crop, crop_box, indices[position], face, found.probs[face], found.landmarks[face],
                           track=number, target_frame=targets[position])
    else:
        by_frame: dict[int, list[tuple[int, int, int]]] = {}
        for position, face, number in chosen:
            by_frame.setdefault(indices[position], []).append((position, face, number))
        for batch, frames in prefetch(iter_frame_batches(path, sorted(by_frame), detector.batch_size), ahead):
            for frame_index, frame in zip(batch, frames):
                for position, face, number in by_frame[frame_index]:
                    found = detections[position]
                    crops.add(
                        frame, frame_index, face, found.boxes[face], found.probs[face], found.landmarks[face],
                        track=number, target_frame=targets[position],
                    )
    lengths = ", ".join(str(len(tracks[i])) for i in sampled)
    counts.update(
        status=OK,
        message=f"{len(crops.rows)} faces from {len(sampled)} of {len(tracks)} tracks (lengths {lengths})",
        faces_kept=len(crops.rows),
    )
    return counts


def _extract(
    path: str | Path,
    flow: str,
    detector: FaceDetector,
    settings: Mapping[str, Any],
    *,
    label: int = -1,
    video_id: str | None = None,
    dataset: str = "",
    original_boxes: VideoBoxes | None = None,
    note: str = "",
    decoded: Decoded | Exception | None = None,
    limits: MediaLimits = UNLIMITED,
    decode_ahead: bool = True,
    on_crops: CropsCallback | None = None,
) -> Extraction:
    """One video through ``flow``; any failure becomes the status row, never an exception.

    ``decoded``: the train flow's frames decoded ahead (or the error decoding raised).
    ``decode_ahead``: the test flow decodes its next batch in a second thread (else in this one).
    ``on_crops``: the test flow hands it each batch's face crops as they are cut (see CropsCallback).
    """
    path = str(path)
    video_id = video_id or Path(path).stem
    started = time.perf_counter()
    crops = _Crops(detector, dataset, video_id, label, SOURCE_SELF)
    boxes = None
    try:
        if isinstance(decoded, Exception):
            raise decoded
        if not Path(path).exists():
            counts = {"status": MISSING, "message": f"file not found: {path}"}
        elif flow == "train":
            if decoded is None:
                used = None
                if original_boxes is not None and original_boxes.targets is not None:
                    used = FramesUsed(list(original_boxes.targets), list(original_boxes.frames))
                decoded = decode_train_frames(path, settings["frames_per_video"], detector.batch_size, limits,
                                              FramePolicy.from_settings(settings), used)
            else:  # decoded in another thread: count its time, not the wait for it
                started -= decoded.seconds
            counts, boxes = _train_flow(decoded, detector, settings, crops, original_boxes, note)
        else:
            counts = _test_flow(path, detector, settings, crops, limits, decode_ahead, on_crops)
    except VideoError as err:  # the file's fault: its status, never "error"
        kind = "empty: " if err.status == EMPTY else ""
        status = err.status if err.status in LIMIT_STATUSES else UNREADABLE
        counts = {"status": status, "message": kind + err.message}
        crops.rows, boxes = [], None
    except Exception as err:  # a bug or a detector failure: report it, go on with the chunk
        log.error("%s: extraction failed: %s: %s", video_id, type(err).__name__, err)
        log.info("%s: traceback", video_id, exc_info=True)  # shown with --verbose
        counts = {"status": ERROR, "message": f"{type(err).__name__}: {_first_line(err)}"}
        crops.rows, boxes = [], None
    status = _status_row(dataset, video_id, path, label, counts.pop("status"), counts.pop("message"), **counts)
    status["seconds"] = round(time.perf_counter() - started, 3)
    return Extraction(crops.rows, status, boxes)


def _first_line(err: Exception, limit: int = 300) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else "")[:limit]


def faces_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=FACES_SCHEMA.names)


def status_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=STATUS_SCHEMA.names)


def extract_video(
    path: str | Path,
    flow: str,
    detection: Mapping[str, Any] | FaceDetector | None,
    flow_settings: Mapping[str, Any] | None,
    label: int = -1,
    video_id: str | None = None,
    original_boxes: VideoBoxes | None = None,
    *,
    dataset: str = "",
    limits: MediaLimits = UNLIMITED,
    decode_ahead: bool = True,
    on_crops: CropsCallback | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Faces (FACES_SCHEMA columns) and a one-row status (STATUS_SCHEMA) of one video.

    ``detection`` is the ``extraction.detection`` dict or a ready FaceDetector (reuse one
    across calls so MTCNN loads once). The faces rows carry frame, face index, track (test
    flow) and the cropped box, which the scanner uses to draw and group. ``decode_ahead``:
    the test flow decodes in a second thread while detecting (False: in this thread only).
    ``on_crops``: called in the test flow with each batch's face crops while later frames are still
    to be detected (:data:`CropsCallback`), so a caller can start on them early.
    """
    settings = flow_settings_for(flow, flow_settings)
    result = _extract(
        path, flow, make_detector(detection), settings,
        label=label, video_id=video_id, dataset=dataset, original_boxes=original_boxes, limits=limits,
        decode_ahead=decode_ahead, on_crops=on_crops,
    )
    return faces_frame(result.faces), status_frame([result.status])


# ---------------------------------------------------------------------- a chunk of a manifest


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def chunk_rows(manifest: pd.DataFrame, chunk: int, chunks: int) -> pd.DataFrame:
    """Manifest rows of ``chunk``: keyed by the original's id, so fakes travel with it."""
    keys = [(_text(original) or video_id) for original, video_id in zip(manifest["original"], manifest["video_id"])]
    mask = np.array([chunk_of(key, chunks) == chunk for key in keys], dtype=bool)
    return manifest.loc[mask]


def extract_chunk(
    manifest: pd.DataFrame,
    chunk: int,
    chunks: int,
    flow: str,
    detection: Mapping[str, Any] | FaceDetector | None,
    flow_settings: Mapping[str, Any] | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Extract the faces of one chunk of ``manifest``; returns (faces, status) DataFrames.

    Every row of the chunk gets exactly one status row (in manifest order). Reals go first so
    that, in the train flow, each fake finds its original's boxes.
    """
    missing_columns = [c for c in ("video_id", "path", "label", "original") if c not in manifest.columns]
    if missing_columns:
        raise ValueError(f"manifest lacks columns {missing_columns}; build it with the manifest rule")
    if not 0 <= chunk < chunks:
        raise ValueError(f"chunk {chunk} is outside 0..{chunks - 1}")
    settings = flow_settings_for(flow, flow_settings)
    detector = make_detector(detection).load()
    rows = chunk_rows(manifest, chunk, chunks).reset_index(drop=True)
    duplicated = rows["video_id"][rows["video_id"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"manifest lists video ids more than once: {duplicated[:10]}")
    is_fake_of = [
        _text(original) if int(label) == LABEL_FAKE else None
        for original, label in zip(rows["original"], rows["label"])
    ]
    order = sorted(range(len(rows)), key=lambda i: (is_fake_of[i] is not None, i))
    originals_wanted = {o for o in is_fake_of if o}
    chunk_ids = set(rows["video_id"])
    log.info("chunk %d/%d: %d videos, flow %s", chunk, chunks, len(rows), flow)

    listed_missing = (rows["status"] == MISSING).to_numpy() if "status" in rows else np.zeros(len(rows), bool)

    policy = FramePolicy.from_settings(settings)

    def decode_ahead():
        """Train flow: decode the next video's frames while the current one is detected. Reals
        come first, so a fake's original has been read (here, in this thread) before the fake:
        the fake is read at its original's frames, where it can reuse its boxes."""
        frames_of: dict[str, FramesUsed] = {}
        for i in order:
            path = str(rows.iloc[i]["path"])
            if flow != "train" or listed_missing[i] or not Path(path).exists():
                yield i, None
                continue
            video_id = str(rows.iloc[i]["video_id"])
            original = frames_of.get(is_fake_of[i]) if is_fake_of[i] and settings["reuse_original_boxes"] else None
            try:
                decoded = decode_train_frames(path, settings["frames_per_video"], detector.batch_size,
                                              policy=policy, original=original)
            except Exception as err:  # noqa: BLE001 (reported in the video's status row)
                yield i, err
                continue
            if video_id in originals_wanted:
                frames_of[video_id] = decoded.frames_used
            yield i, decoded

    boxes_of: dict[str, VideoBoxes] = {}
    status_of: dict[str, str] = {}
    faces: list[dict[str, Any]] = []
    statuses: list[dict[str, Any] | None] = [None] * len(rows)
    jobs = prefetch(decode_ahead(), depth=1)
    for i, decoded in tqdm(jobs, total=len(order), desc=f"faces chunk {chunk:03d}", unit="video", disable=None):
        row = rows.iloc[i]
        video_id, path, label = str(row["video_id"]), str(row["path"]), int(row["label"])
        dataset = str(row["dataset"]) if "dataset" in row and isinstance(row["dataset"], str) else ""
        if listed_missing[i]:
            message = _text(row.get("message")) or "listed in the dataset but not on disk"
            result = Extraction([], _status_row(dataset, video_id, path, label, MISSING, message))
        else:
            original_id, original_boxes, note = is_fake_of[i], None, ""
            if flow == "train" and original_id and settings["reuse_original_boxes"]:
                original_boxes = boxes_of.get(original_id)
                if original_boxes is None:
                    why = "not in the manifest"
                    if original_id in chunk_ids:
                        why = status_of.get(original_id, "not extracted")
                    note = f"original {original_id} is {why}; detected on this video"
            result = _extract(
                path, flow, detector, settings, label=label, video_id=video_id, dataset=dataset,
                original_boxes=original_boxes, note=note, decoded=decoded,
            )
        status_of[video_id] = result.status["status"]
        if result.boxes is not None and video_id in originals_wanted:
            boxes_of[video_id] = result.boxes
        faces += result.faces
        statuses[i] = result.status
        log.info(
            "%s: %s, %d faces, %.1f s (%s)",
            video_id, result.status["status"], result.status["faces_kept"], result.status["seconds"],
            result.status["message"],
        )
    status = status_frame(statuses)  # type: ignore[arg-type]
    counts = status["status"].value_counts().to_dict()
    log.info("chunk %d done: %s; %d faces", chunk, counts, len(faces))
    return faces_frame(faces), status


# ---------------------------------------------------------------------- summary of a dataset


def merge_status(manifest: pd.DataFrame, statuses: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate chunk status tables, checking each manifest video appears exactly once."""
    status = pd.concat(statuses, ignore_index=True) if statuses else status_frame([])
    counts = status["video_id"].value_counts()
    twice = sorted(counts[counts > 1].index)
    expected = set(manifest["video_id"])
    absent = sorted(expected - set(status["video_id"]))
    extra = sorted(set(status["video_id"]) - expected)
    problems = []
    if absent:
        problems.append(f"{len(absent)} manifest videos have no status row: {absent[:20]}")
    if twice:
        problems.append(f"{len(twice)} videos have more than one status row: {twice[:20]}")
    if extra:
        problems.append(f"{len(extra)} status rows are for videos not in the manifest: {extra[:20]}")
    if problems:
        raise ValueError(
            "extraction status does not match the manifest (was the manifest rebuilt or chunks changed "
            "without rerunning extract_faces?):\n  " + "\n  ".join(problems)
        )
    return status


def summarize_status(status: pd.DataFrame) -> pd.DataFrame:
    """Videos and faces kept per status and label, plus an ``all`` row per status."""
    if status.empty:
        return pd.DataFrame(columns=["status", "label", "videos", "faces_kept"])
    frame = status.assign(label=status["label"].astype(int).astype(str))
    by_label = frame.groupby(["status", "label"], as_index=False).agg(
        videos=("video_id", "size"), faces_kept=("faces_kept", "sum")
    )
    overall = frame.groupby("status", as_index=False).agg(videos=("video_id", "size"), faces_kept=("faces_kept", "sum"))
    overall.insert(1, "label", "all")
    summary = pd.concat([by_label, overall], ignore_index=True)
    return summary.sort_values(["status", "label"], ignore_index=True)
