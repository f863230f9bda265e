"""Scanning one input: a video through the pipeline's test flow, an image face by face, then the run's model.

Videos go through :func:`facesleuth.extract.flows.extract_video` (the pipeline's test flow: sequential
decoding, MTCNN at reduced resolution, IoU tracks, proportional sampling, crops with margin, JPEG
as stored by the pipeline), so a scanned video is scored exactly as a test-set video would be,
except for two settings a scanner must change:

- **frames**: the pipeline detects on every frame; an upload cannot be, on a CPU, in a
  per-video budget. The scan detects on about ``frames`` evenly spaced frames (every k-th,
  k = ceil(total / frames)).
- **tracking**: with frames a third of a second apart, faces move more between the frames
  compared than between consecutive ones, and the thesis's IoU of 0.75 breaks one still
  presenter (FF++ 519, 32 frames) into 11 tracks and every walker of ``multiface/street.mp4``
  into 1-2 frame pieces; at 0.3 they are whole (one track, and 17 + 8 frames). A track must
  last longer than a fraction of the sampled frames (1/6: the thesis's 50 frames of a 300-frame
  DFDC video). The extraction is asked for every face of every track and the thesis's rule
  (:func:`facesleuth.extract.tracking.sample_track_faces`) is applied here, so when no track is long
  enough (a face seen only briefly) the faces of all tracks are scored instead of none, and the
  message says so, without decoding the video twice.

Faces are classified from the same JPEG crops the pipeline stores, letterboxed as in training
(:func:`facesleuth.evaluate.predict.predict_crops`; an imported published detector's are prepared as its
authors prepared theirs, docs/weights.md); the input's score is the run's aggregation (the mean
by default; ``aggregation`` chooses another), calibrated by the run's validation temperature where
it has one (``calibrated`` says so), and the verdict is ``fake`` when the score reaches the run's
validation EER threshold (on the same scale). With ``classify_ahead`` each detected batch's faces
are classified in a second thread while later frames are detected (:mod:`facesleuth.scan.ahead`);
the scores are the same. An ensemble's members each score and aggregate the
faces; their input scores are joined by the ensemble's method.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from facesleuth import registry
from facesleuth.config import CROP_KEYS
from facesleuth.extract.detect import encode_jpeg
from facesleuth.evaluate.ensembles import METHODS, combine_scores
from facesleuth.extract.flows import extract_video, make_detector
from facesleuth.evaluate.predict import (
    AGGREGATIONS,
    get_aggregation,
    is_aggregation,
    predict_crops,
)
from facesleuth.train.preprocess import decode_jpeg
from facesleuth.registry import (
    ERROR,
    FAILED_SCAN_STATUSES,
    LIMIT_STATUSES,
    MISSING,
    NO_FACE,
    OK,
    SCAN_STATUSES,
    UNREADABLE,
    UNSUPPORTED,
)
from facesleuth.runtime import resolve_device
from facesleuth.scan.ahead import ScoresAhead
from facesleuth.scan.discover import Candidate, discover, named_like_media
from facesleuth.evaluate.inference import AUTO, BACKENDS, OPENVINO, TORCH, resolve_backend
from facesleuth.scan.runfolder import ScanRun, load_scan_run, load_scan_runs
from facesleuth.extract.tracking import sample_track_faces
from facesleuth.extract.video import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SECONDS,
    DecodeReport,
    MediaLimits,
    VideoError,
    every_kth_indices,
    probe,
    read_image,
    sniff_media,
)

log = logging.getLogger(__name__)

STATUSES = SCAN_STATUSES
#: Statuses of inputs that could not be scanned (exit code 1).
FAILED_STATUSES = FAILED_SCAN_STATUSES
_PENDING = "pending"  # a media file about to be scanned (never in a finished result)
FAKE, REAL = "fake", "real"
VERDICTS = (FAKE, REAL)

# MTCNN frames per call on CPU when the config does not say: smaller than the schema's 32 (sized
# for GPUs) because detection waits for the decoder's first batch and the decoder idles while the
# last batch is detected; 4 keeps that wait short without more per-call cost (benchmarks/README.md).
CPU_DETECTION_BATCH = 4
THUMBNAIL_SIDE = 112  # pixels, longest side of the HTML report's face thumbnails
#: where a scan's crop settings came from (ScanOptions.face_crops_source)
FACE_CROP_SOURCES = ("run", "config", "defaults")
# Asks the extraction for every face of every track (the sampling rule is applied here).
_EVERY_FACE = 2**31 - 1


@dataclass
class ScanOptions:
    """How inputs are scanned. ``detection``: the config's ``extraction.detection`` (partial is fine);
    the crop settings it leaves out are the run's (run.yaml ``face_crops``), else the package's defaults."""

    # which frames are scanned, and which decoded frame stands for a sampled one (the registry's defaults)
    frames: int = registry.SCAN_FRAMES
    frame_policy: str = registry.SCAN_FRAME_POLICY
    max_frame_offset: int = registry.MAX_FRAME_OFFSET
    device: str = "auto"
    # decode the next frames in a second thread while detecting: lower latency for one scan, but
    # more than one core for a one-thread scanner; service workers on one CPU thread turn it off
    decode_ahead: bool = True
    # classify a video's faces in a second thread as they are cut, while later frames are still
    # detected (facesleuth.scan.ahead): lower latency, same scores; off where decode_ahead is, and why
    classify_ahead: bool = True
    backend: str = AUTO  # the classifier's: auto, torch, onnx or openvino (facesleuth.evaluate.inference)
    detection: Mapping[str, Any] = field(default_factory=dict)
    # where the crop settings (facesleuth.config.CROP_KEYS) came from, set by the Scanner: "config"
    # (detection names some; the rest as below), "run" (its run.yaml face_crops), "defaults" (the package's)
    face_crops_source: str = "defaults"
    iou_threshold: float = 0.3
    min_track_fraction: float = 1 / 6
    faces_per_video: int = 50
    batch_size: int = 64
    thumbnails: int = 0  # faces per input given a base64 thumbnail (HTML report), most suspicious first
    aggregation: str | None = None  # face scores -> input score; None: the run's (its threshold's)
    calibrate: bool = True  # report calibrated probabilities where the run has calibration.json
    ensemble_method: str = "mean_probability"  # how several runs given together join their scores
    # What one input may cost (facesleuth.extract.video.MediaLimits); None: no limit.
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_seconds: float | None = DEFAULT_MAX_SECONDS
    max_frames: int | None = DEFAULT_MAX_FRAMES
    input_seconds: float | None = None  # wall clock per input

    @property
    def limits(self) -> MediaLimits:
        return MediaLimits(self.max_pixels, self.max_seconds, self.max_frames, wall_seconds=self.input_seconds)

    def check(self) -> ScanOptions:
        """Raise ValueError naming the option when a value is out of range."""
        problems = []
        if int(self.frames) < 1:
            problems.append(f"--frames must be at least 1, got {self.frames}")
        if self.frame_policy not in registry.FRAME_POLICIES:
            problems.append(f"--frame-policy must be one of {', '.join(registry.FRAME_POLICIES)}, "
                            f"got {self.frame_policy!r}")
        if int(self.max_frame_offset) < 0:
            problems.append(f"--max-frame-offset must be 0 or more, got {self.max_frame_offset}")
        if not 0.0 <= float(self.iou_threshold) < 1.0:
            problems.append(f"--iou must be within [0, 1), got {self.iou_threshold}")
        if not 0.0 <= float(self.min_track_fraction) < 1.0:
            problems.append(f"--min-track must be within [0, 1), got {self.min_track_fraction}")
        if int(self.faces_per_video) < 1:
            problems.append(f"--faces must be at least 1, got {self.faces_per_video}")
        if int(self.batch_size) < 1:
            problems.append(f"--batch-size must be at least 1, got {self.batch_size}")
        if int(self.thumbnails) < 0:
            problems.append(f"thumbnails must be 0 or more, got {self.thumbnails}")
        if self.aggregation is not None and not is_aggregation(self.aggregation):
            problems.append(f"--aggregation must be one of {', '.join(AGGREGATIONS)} or top<k>_mean, "
                            f"got {self.aggregation!r}")
        for name, value in (("--max-pixels", self.max_pixels), ("--max-seconds", self.max_seconds),
                            ("--max-frames", self.max_frames), ("--input-seconds", self.input_seconds)):
            if value is not None and not float(value) > 0:
                problems.append(f"{name} must be positive (or none for no limit), got {value}")
        if self.backend not in BACKENDS:
            problems.append(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.ensemble_method not in METHODS:
            problems.append(f"--ensemble-method must be one of {', '.join(METHODS)}, got {self.ensemble_method!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def describe(self) -> dict[str, Any]:
        return {
            "frames": int(self.frames),
            "frame_policy": self.frame_policy,
            "max_frame_offset": int(self.max_frame_offset),
            "iou_threshold": float(self.iou_threshold),
            "min_track_fraction": float(self.min_track_fraction),
            "faces_per_video": int(self.faces_per_video),
            "detection": dict(self.detection),
            "face_crops": {"source": self.face_crops_source,
                           **{key: self.detection[key] for key in CROP_KEYS if key in self.detection}},
            "aggregation": self.aggregation,
            "calibrate": bool(self.calibrate),
            "limits": {"max_pixels": self.max_pixels, "max_seconds": self.max_seconds, "max_frames": self.max_frames,
                       "input_seconds": self.input_seconds},
        }


@dataclass
class FaceScore:
    """One scored face. ``box``: the cropped region (detector box plus margin, clipped to the
    frame) in full-resolution pixels; ``track`` is None for images."""

    frame: int
    face: int
    track: int | None
    box: tuple[int, int, int, int]
    detector_prob: float
    score: float
    thumbnail: str | None = None  # base64 JPEG, only when asked for

    def to_dict(self, thumbnails: bool = False) -> dict[str, Any]:
        out = asdict(self)
        out["box"] = list(self.box)
        if not thumbnails:
            out.pop("thumbnail")
        return out


@dataclass
class ScanResult:
    """The outcome for one input; ``score`` and ``verdict`` are None without scored faces."""

    path: str
    status: str
    message: str
    kind: str | None = None  # video | image
    score: float | None = None  # the calibrated probability when ``calibrated``
    verdict: str | None = None
    threshold: float | None = None  # on the score's scale
    aggregation: str | None = None
    model: str | None = None
    faces: list[FaceScore] = field(default_factory=list)
    faces_found: int = 0  # faces kept by the detector's filters, before track sampling
    tracks: int = 0
    tracks_scored: int = 0
    frames_total: int | None = None  # frames the file holds (counted from its packets)
    frames_claimed: int | None = None  # frames its header claims, when it says
    frames_read: int = 0
    frames_failed: int = 0  # packets the decoder rejected or decoded with errors concealed
    frames_skipped: int = 0  # sampled frames that did not decode and were left out
    width: int | None = None
    height: int | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    calibrated: bool = False  # ``score`` is the run's temperature-scaled probability
    raw_score: float | None = None  # the model's aggregated (uncalibrated) score

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    def to_dict(self, thumbnails: bool = False) -> dict[str, Any]:
        out = {key: value for key, value in asdict(self).items() if key != "faces"}
        out["faces"] = [face.to_dict(thumbnails) for face in self.faces]
        return out


def _thumbnail(crop: np.ndarray) -> str:
    """Small base64 JPEG of a face crop, for the self-contained HTML report."""
    scale = THUMBNAIL_SIDE / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return base64.b64encode(encode_jpeg(crop, 80)).decode("ascii")


class Scanner:
    """A loaded run and face detector that scan files one by one (load once, scan many)."""

    def __init__(self, run: ScanRun | str | os.PathLike | list[str | os.PathLike], options: ScanOptions | None = None):
        self.options = (options or ScanOptions()).check()
        device = resolve_device(str(self.options.device))
        if isinstance(run, ScanRun):
            self.run = run
        else:
            backend = resolve_backend(self.options.backend, device)
            if isinstance(run, (list, tuple)):
                self.run = load_scan_runs(list(run), device, self.options.aggregation, self.options.calibrate,
                                          self.options.ensemble_method, backend)
            else:
                self.run = load_scan_run(run, device, self.options.aggregation, self.options.calibrate, backend)
        # Faces cut as the run's training faces were, where the config does not say otherwise;
        # one device for both networks: the run's (a ScanRun may come loaded elsewhere).
        configured = set(self.options.detection) & set(CROP_KEYS)
        source = "config" if configured else "run" if self.run.face_crops else "defaults"
        detection = {**(self.run.face_crops or {}), **dict(self.options.detection), "device": self.run.device}
        if self.run.device == "cpu":
            detection.setdefault("batch_size", CPU_DETECTION_BATCH)
        # OpenVINO runs MTCNN's networks too where it runs the classifier (ONNX Runtime ran them
        # no faster than torch: benchmarks/README.md), unless the config says what runs them.
        detection.setdefault("backend", OPENVINO if self.run.backend == OPENVINO else TORCH)
        self.detector = make_detector(detection).load()
        # Reports show the settings in force, not only those given.
        effective = {f.name: getattr(self.detector, f.name) for f in dataclasses.fields(self.detector) if f.init}
        effective["thresholds"] = list(effective["thresholds"])
        self.options = dataclasses.replace(self.options, detection=effective, face_crops_source=source)
        # channels_last: the same boxes, about 20% less CPU for MTCNN on 1080p frames
        # (benchmarks/README.md, scan latency).
        self.detector.mtcnn.to(memory_format=torch.channels_last)
        #: Files met inside folders that are neither media by content nor named like media.
        self.skipped: list[str] = []

    # ------------------------------------------------------------------ many inputs

    def scan_paths(self, paths: Iterable[str | os.PathLike], progress: bool = False) -> Iterator[ScanResult]:
        """Results for ``paths`` (files and folders, walked recursively), in order, one per input."""
        candidates = discover(paths)
        bar = tqdm(total=len(candidates), desc="scan", unit="file", disable=None if progress else True,
                   dynamic_ncols=True)
        try:
            for candidate in candidates:
                bar.set_postfix_str(candidate.path.name[-40:])  # the file being scanned
                result = self.scan_candidate(candidate)
                bar.update(1)
                if result is None:
                    self.skipped.append(str(candidate.path))
                    log.info("%s: skipped (neither a video nor an image)", candidate.path)
                    continue
                yield result
        finally:
            bar.close()

    def scan_candidate(self, candidate: Candidate) -> ScanResult | None:
        """Scan one candidate; None when it is a non-media file met inside a folder (skipped)."""
        started = time.perf_counter()
        limits = self.options.limits.started()  # the wall clock runs from here
        try:
            result = self._classify_file(candidate, limits)
            if result is None or result.status != _PENDING:
                if result is not None:
                    result.seconds = round(time.perf_counter() - started, 3)
                return result
        except Exception as err:  # noqa: BLE001 (an input is never an exception to the caller)
            result = self._new(candidate.path, ERROR, _internal_error(candidate.path, err))
            result.seconds = round(time.perf_counter() - started, 3)
            return result
        try:
            if result.kind == "video":
                self._scan_video(candidate.path, result, limits)
            else:
                self._scan_image(candidate.path, result, limits)
        except Exception as err:  # one bad input never stops a scan of thousands
            if isinstance(err, VideoError):
                result.status, result.message = _file_status(err.status, err.message)
            else:
                result.status, result.message = ERROR, _internal_error(candidate.path, err)
            result.faces, result.score, result.verdict = [], None, None
        result.seconds = round(time.perf_counter() - started, 3)
        return result

    def limit_result(self, path: str | os.PathLike, status: str, message: str) -> ScanResult:
        """The result of an input stopped from outside the scanner (a worker replaced past its time)."""
        return self._new(Path(path), status, message)

    def scan_file(self, path: str | os.PathLike) -> ScanResult:
        """Scan one file as if named on the command line (always a result)."""
        result = self.scan_candidate(Candidate(Path(path), explicit=True))
        assert result is not None  # explicit candidates are never skipped
        return result

    # ------------------------------------------------------------------ one input

    def _new(self, path: Path, status: str, message: str = "", kind: str | None = None) -> ScanResult:
        return ScanResult(path=str(path), status=status, message=message, kind=kind,
                          threshold=self.run.threshold, aggregation=self.run.aggregation, model=self.run.name,
                          calibrated=self.run.calibrated)

    def _classify_file(self, candidate: Candidate, limits: MediaLimits) -> ScanResult | None:
        """A finished result (missing, unsupported...), a ``pending`` one with its kind, or None (skip)."""
        path, reported = candidate.path, candidate.explicit or named_like_media(candidate.path)
        if not path.exists():
            why = "a broken symbolic link" if path.is_symlink() else "no such file or folder"
            return self._new(path, MISSING, f"{why}: check the path")
        if not path.is_file():
            return self._new(path, UNSUPPORTED, "not a regular file (a device, pipe or socket); scan files or folders")
        if not os.access(path, os.R_OK):
            return self._new(path, UNREADABLE, "permission denied: make the file readable (chmod +r) and scan again")
        if path.stat().st_size == 0:
            if not reported:
                return None
            return self._new(path, UNREADABLE, "file is empty (0 bytes): re-download or re-upload it")
        kind = sniff_media(path, limits)
        if kind is None:
            if not reported:
                return None
            named = f"named like media ({path.suffix}) but its" if named_like_media(path) else "its"
            return self._new(
                path, UNSUPPORTED,
                f"not a video or an image: {named} content is no format facesleuth can decode "
                "(judged by content, not by name); scan video or image files",
            )
        return self._new(path, _PENDING, kind=kind)

    def _scan_video(self, path: Path, result: ScanResult, limits: MediaLimits) -> None:
        clock = time.perf_counter()
        info = probe(path, limits)
        result.frames_total, result.width, result.height = info.frames, info.width, info.height
        result.frames_claimed = info.frames_claimed
        step = max(1, math.ceil(info.frames / int(self.options.frames)))
        sampled = len(every_kth_indices(info.frames, step, int(self.options.frames)))
        flow = {
            "frame_step": step,
            "max_frames": int(self.options.frames),
            "iou_threshold": float(self.options.iou_threshold),
            "min_track_length": 0,
            "faces_per_video": _EVERY_FACE,
            "frame_policy": self.options.frame_policy,
            "max_frame_offset": int(self.options.max_frame_offset),
        }
        ahead = None
        if self.options.classify_ahead:
            ahead = ScoresAhead(self._member_scores, self._stored_crop, int(self.options.batch_size))
        try:
            faces, status = extract_video(path, "test", self.detector, flow, limits=limits,
                                          decode_ahead=self.options.decode_ahead,
                                          on_crops=None if ahead is None else ahead.submit)
        finally:
            scored_ahead = {} if ahead is None else ahead.finish()
        row = status.iloc[0]
        result.timings["extract"] = round(time.perf_counter() - clock, 3)
        result.frames_read = int(row["frames_read"] or 0)
        result.frames_failed, result.frames_skipped = int(row["frames_failed"] or 0), int(row["frames_skipped"] or 0)
        result.faces_found = len(faces)
        if row["status"] in (UNREADABLE, MISSING, *LIMIT_STATUSES):
            result.status, result.message = _file_status(row["status"], row["message"])
            return
        if row["status"] == ERROR:
            result.status, result.message = ERROR, f"internal error: {row['message']} (please report this)"
            return
        limits.check_clock(path)
        if not len(faces):
            result.status = NO_FACE
            result.message = f"{row['message']}{self._no_face_hint(video=True)}{_damage_note(result)}"
            return
        faces = faces.sort_values(["frame", "face"], ignore_index=True)
        tracks = [group.index.tolist() for _, group in faces.groupby("track", sort=True)]
        min_length = int(sampled * float(self.options.min_track_fraction))
        chosen = sample_track_faces(tracks, min_length, int(self.options.faces_per_video))
        note = ""
        if not chosen:
            longest = max(len(track) for track in tracks)
            chosen = sample_track_faces(tracks, 0, int(self.options.faces_per_video))
            note = (f"; no face was tracked over more than {min_length} of {sampled} sampled frames "
                    f"(longest {longest}), so faces of all {len(tracks)} tracks were scored")
        rows = faces.loc[sorted(i for members in chosen.values() for i in members)]
        result.tracks, result.tracks_scored = len(tracks), len(chosen)
        self._score(
            result,
            jpegs=rows["jpeg"].tolist(),
            frames=rows["frame"].tolist(),
            face_indices=rows["face"].tolist(),
            tracks=rows["track"].tolist(),
            boxes=rows[["x0", "y0", "x1", "y1"]].to_numpy().tolist(),
            probs=rows["prob"].tolist(),
            scored=[scored_ahead.get(key) for key in zip(rows["target_frame"], rows["face"])],
        )
        result.message = (f"{len(rows)} faces from {len(chosen)} of {len(tracks)} tracks in "
                          f"{result.frames_read} sampled frames{note}{_damage_note(result)}")

    def _scan_image(self, path: Path, result: ScanResult, limits: MediaLimits) -> None:
        clock = time.perf_counter()
        image = read_image(path, limits)
        result.height, result.width = image.shape[:2]
        result.frames_total = result.frames_read = 1
        found = self.detector.detect([image])[0]
        jpegs, boxes = [], []
        for box in found.boxes:
            crop, crop_box = self.detector.crop(image, box)
            jpegs.append(self.detector.encode(crop))
            boxes.append(list(crop_box))
        result.timings["extract"] = round(time.perf_counter() - clock, 3)
        result.faces_found = len(jpegs)
        if not jpegs:
            result.status = NO_FACE
            below = (f" ({found.detected} smaller or less certain detections were dropped)" if found.detected
                     else "")
            result.message = f"no face of at least {self.detector.min_face_size} px{below}{self._no_face_hint()}"
            return
        count = len(jpegs)
        self._score(result, jpegs=jpegs, frames=[0] * count, face_indices=list(range(count)), tracks=[None] * count,
                    boxes=boxes, probs=found.probs.tolist())
        result.message = f"{count} face{'s' if count != 1 else ''} in the image"

    def _stored_crop(self, crop: np.ndarray) -> np.ndarray:
        """A crop as the classifier sees it: through the JPEG the pipeline would store, so that
        scores match the pipeline's predictions."""
        return decode_jpeg(self.detector.encode(crop))

    def _member_scores(self, crops: list[np.ndarray]) -> np.ndarray:
        """Fake probabilities of ``crops`` (as stored): one row per crop, one column per scorer
        (the run, or each member of an ensemble)."""
        columns = [predict_crops(member.model, member.info, crops, member.device, int(self.options.batch_size),
                                 margin=self.detector.margin)
                   for member in self.run.scorers]
        return np.stack(columns, axis=1)

    def _score(self, result: ScanResult, *, jpegs: list[bytes], frames: list[int], face_indices: list[int],
               tracks: list[int | None], boxes: list[list[float]], probs: list[float],
               scored: list[np.ndarray | None] | None = None) -> None:
        """Classify the crops and fill ``result``'s faces, score and verdict. ``scored``: each
        face's scores where they were computed ahead (ScoresAhead), else None."""
        clock = time.perf_counter()
        scored = list(scored) if scored is not None else [None] * len(jpegs)
        crops: dict[int, np.ndarray] = {i: decode_jpeg(jpegs[i]) for i, known in enumerate(scored) if known is None}
        if crops:
            for i, row in zip(crops, self._member_scores(list(crops.values()))):
                scored[i] = row
        per_face = np.stack(scored).astype(np.float32)  # faces x scorers
        track_ids = None if all(t is None for t in tracks) else np.array([-1 if t is None else t for t in tracks])
        member_faces = [per_face[:, column] for column in range(per_face.shape[1])]
        member_videos = [get_aggregation(self.run.aggregation)(face_scores, track_ids) for face_scores in member_faces]
        if self.run.members:
            method = self.run.ensemble_method
            scores = combine_scores(member_faces, method).astype(np.float32)  # per face, for the report
            raw_score = float(combine_scores([[v] for v in member_videos], method)[0])
        else:
            scores, raw_score = member_faces[0], member_videos[0]
        result.timings["classify"] = round(time.perf_counter() - clock, 3)
        result.faces = [
            FaceScore(frame=int(frame), face=int(face), track=None if track is None else int(track),
                      box=tuple(round(float(v)) for v in box), detector_prob=round(float(prob), 4),
                      score=round(float(score), 6))
            for frame, face, track, box, prob, score in zip(frames, face_indices, tracks, boxes, probs, scores)
        ]
        if self.options.thumbnails:
            for i in np.argsort(-scores, kind="stable")[: int(self.options.thumbnails)]:
                result.faces[i].thumbnail = _thumbnail(crops[i] if i in crops else decode_jpeg(jpegs[i]))
        result.raw_score = round(raw_score, 6)
        result.score = round(self.run.calibrate(raw_score), 6)
        result.calibrated = self.run.calibrated
        result.verdict = FAKE if result.score >= self.run.threshold else REAL
        result.status = OK

    def _no_face_hint(self, video: bool = False) -> str:
        more = ", or sample more frames with --frames" if video else ""
        return (f"; nothing to score (faces smaller than {self.detector.min_face_size} px are ignored: lower "
                f"extraction.detection.min_face_size in a --config{more})")


_REPAIR_HINT = ("; the file is truncated or corrupt: re-download or re-encode it "
                "(e.g. ffmpeg -i in -c:v libx264 out.mp4)")
_LIMIT_HINT = "; raise or lift the limit (a number, or none) if this input should be scanned"


def _file_status(status: str, message: str) -> tuple[str, str]:
    """(status, message) of an input the decoders refused: past a limit, or unreadable."""
    if status in LIMIT_STATUSES:
        return status, f"{message}{_LIMIT_HINT}"
    return UNREADABLE, f"{message}{_REPAIR_HINT}"


def _internal_error(path: Path, err: Exception) -> str:
    """A fault of facesleuth itself: a short message; the traceback is logged for --verbose only."""
    text = str(err).strip()
    short = f"{type(err).__name__}: {text.splitlines()[0][:300]}" if text else type(err).__name__
    log.warning("%s: internal error: %s", path, short)
    log.info("%s: traceback of the internal error", path, exc_info=err)
    return f"internal error: {short} (please report this)"


def _damage_note(result: ScanResult) -> str:
    damage = DecodeReport(frames_failed=result.frames_failed, frames_skipped=result.frames_skipped)
    note = f"; damaged video: {damage.describe()}" if damage.damaged else ""
    claimed, held = result.frames_claimed, result.frames_total
    if claimed and held is not None and claimed > held + max(2, held // 50):  # a few frames either way are normal
        note += (f"; its header claims {claimed} frames, the file holds {held} (cut short, damaged or forged): "
                 "the frames it holds were scanned")
    return note


def scan_paths(paths: Iterable[str | os.PathLike], run: ScanRun | str | os.PathLike | list[str | os.PathLike],
               options: ScanOptions | None = None, progress: bool = False) -> Iterator[ScanResult]:
    """Scan ``paths`` (files and folders) with the run ``run`` (folder, best.pt, ensemble folder, a
    list of run folders scanned as an ensemble, or a loaded ScanRun).

    A generator: results come one by one as inputs finish, in input order.
    """
    yield from Scanner(run, options).scan_paths(paths, progress=progress)
