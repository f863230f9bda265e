"""Face detection with facenet-pytorch's MTCNN, and cropping/encoding of the faces.

Detection runs on frames downscaled so their longest side is at most ``detect_max_side``
(DFDC frames are 1920x1080; MTCNN's cost grows with the pixel count) and the boxes are mapped
back to full resolution, where faces are filtered by size and cropped with a margin (thesis
2.4.1: keep faces of 70x70 px and more, 30 px margin).

facenet-pytorch (with torch) and OpenCV are imported where they are used: the extraction
summary step and ``facesleuth faces --help`` import this module (through
:mod:`facesleuth.extract.flows`) without detecting, and torch alone takes seconds to import.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from facesleuth.config import section_defaults
from facesleuth.extract import mtcnn_fast
from facesleuth.runtime import importable, resolve_device

log = logging.getLogger(__name__)

# MTCNN never needs to look for faces much smaller than those min_face_size keeps: its image
# pyramid starts at 12 / min_detection_size, so raising the size to what survives the filter
# cuts the largest (costliest) pyramid levels and most candidate boxes. The slack keeps faces
# whose MTCNN box comes out a little smaller than the face it found.
MIN_SIZE_SLACK = 0.8

# The config schema's extraction.detection is the one place these defaults are written; the
# FaceDetector's field defaults and from_config both read them from here.
DETECTION_DEFAULTS: dict[str, Any] = section_defaults("extraction", "detection")

# "fast": facesleuth.extract.mtcnn_fast (same networks and faces, faster on CPU: benchmarks/README.md); "facenet":
# facenet-pytorch's own MTCNN.detect, kept as the reference and the fallback.
IMPLEMENTATIONS = ("fast", "facenet")
# What runs MTCNN's networks: torch, or OpenVINO on the CPU (facesleuth.extract.mtcnn_openvino).
BACKENDS = ("torch", "openvino")


class FrameFaces(NamedTuple):
    """Faces kept in one frame: ``boxes`` (K, 4) x0, y0, x1, y1 in full-resolution pixels (no
    margin), ``probs`` (K,), how many faces MTCNN returned before the filters, and ``landmarks``
    (K, 5, 2): O-Net's five points per face (eyes, nose, mouth corners; x, y), in the same
    full-resolution pixels as the boxes."""

    boxes: np.ndarray
    probs: np.ndarray
    detected: int
    landmarks: np.ndarray


def set_cpu_threads(threads: int) -> None:
    """Hold this process's torch and its video decoders to ``threads`` CPU threads each.

    Extraction jobs, scanners and service workers are sized to the cores and run side by side;
    each must keep to its share rather than start a thread per core in FFmpeg or torch.
    """
    import torch

    from facesleuth.extract.video import set_decoder_threads

    if int(threads) < 1:
        raise ValueError(f"CPU threads must be at least 1, got {threads}")
    torch.set_num_threads(int(threads))
    set_decoder_threads(int(threads))


def no_faces(detected: int = 0) -> FrameFaces:
    return FrameFaces(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), detected, no_landmarks())


def no_landmarks(count: int = 0) -> np.ndarray:
    """(count, 5, 2) landmarks array, NaN (unknown) for ``count`` faces."""
    return np.full((count, 5, 2), np.nan, np.float32)


def detection_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) of the detection frame: longest side at most ``max_side``, never upscaled."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _as_boxes(raw: Any) -> tuple[np.ndarray, ...]:
    """One frame's MTCNN output -> float arrays. Under numpy 2 MTCNN.detect returns object
    arrays, with None (boxes, landmarks) and [None] (probs) for frames without faces.
    ``raw`` is (boxes, probs) or (boxes, probs, landmarks); the result has as many parts."""
    boxes, probs = raw[:2]
    if boxes is None or len(boxes) == 0:
        empty = (np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))
        return empty + ((no_landmarks(),) if len(raw) == 3 else ())
    boxes = np.asarray([np.asarray(b, dtype=np.float32) for b in boxes], dtype=np.float32).reshape(-1, 4)
    probs = np.asarray([np.nan if p is None else float(p) for p in np.atleast_1d(probs)], dtype=np.float32)
    if len(raw) == 2:
        return boxes, probs
    points = np.asarray([np.asarray(p, dtype=np.float32) for p in raw[2]], dtype=np.float32).reshape(-1, 5, 2)
    return boxes, probs, points


@dataclass
class FaceDetector:
    """MTCNN (keep_all, batched, GPU when there is one) plus the thesis's filters.

    ``implementation`` picks the MTCNN cascade: "fast" (:mod:`facesleuth.extract.mtcnn_fast`, the same
    networks and faces as facenet-pytorch, tested against it) or "facenet" (its own).

    Build it from the config's ``extraction.detection`` with :meth:`from_config`. The network is
    loaded on first use, so constructing one is cheap.
    """

    device: str = DETECTION_DEFAULTS["device"]
    batch_size: int = DETECTION_DEFAULTS["batch_size"]
    detect_max_side: int = DETECTION_DEFAULTS["detect_max_side"]
    thresholds: Sequence[float] = tuple(DETECTION_DEFAULTS["thresholds"])
    min_detection_size: int = DETECTION_DEFAULTS["min_detection_size"]
    min_probability: float = DETECTION_DEFAULTS["min_probability"]
    min_face_size: int = DETECTION_DEFAULTS["min_face_size"]
    margin: int = DETECTION_DEFAULTS["margin"]
    jpeg_quality: int = DETECTION_DEFAULTS["jpeg_quality"]
    implementation: str = DETECTION_DEFAULTS["implementation"]
    backend: str = DETECTION_DEFAULTS["backend"]
    _mtcnn: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # a config gives a list; one type either way, so equal settings make equal detectors
        self.thresholds = tuple(self.thresholds)
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"extraction.detection.implementation: {self.implementation!r} is not one of {list(IMPLEMENTATIONS)}"
            )
        if self.backend not in BACKENDS:
            raise ValueError(f"extraction.detection.backend: {self.backend!r} is not one of {list(BACKENDS)}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None = None, **overrides: Any) -> FaceDetector:
        """From ``extraction.detection`` (missing keys take the schema's defaults)."""
        settings = {**DETECTION_DEFAULTS, **(cfg or {}), **overrides}
        unknown = sorted(set(settings) - set(DETECTION_DEFAULTS))
        if unknown:
            raise ValueError(f"extraction.detection: unknown keys {unknown} (known: {sorted(DETECTION_DEFAULTS)})")
        return cls(**settings)

    # ------------------------------------------------------------------ model

    @property
    def torch_device(self) -> str:
        return resolve_device(self.device)

    @property
    def mtcnn(self):
        if self._mtcnn is None:
            import torch

            device = self.torch_device
            if self.backend == "openvino":
                self._check_openvino(device, self.implementation)
                from facesleuth.extract import mtcnn_openvino

                # this process's torch threads; no facenet-pytorch (nor torchvision) import
                self._mtcnn = mtcnn_openvino.load_mtcnn(self.min_detection_size, list(self.thresholds),
                                                        torch.get_num_threads())
                self.device = device
                log.info("MTCNN loaded on %s (openvino)", device)
                return self._mtcnn
            from facenet_pytorch import MTCNN  # imported on use: see the module docstring

            # keep_all: every face; select_largest=False: order by probability, not size.
            self._mtcnn = MTCNN(
                keep_all=True,
                select_largest=False,
                min_face_size=self.min_detection_size,
                thresholds=list(self.thresholds),
                device=device,
            )
            if self.implementation == "fast":
                # mtcnn_fast feeds every network channels-last input; channels-last weights
                # save the per-call weight reorder (about 15% of its CPU time), same faces.
                self._mtcnn.to(memory_format=torch.channels_last)
            self.device = device
            log.info("MTCNN loaded on %s", device)
        return self._mtcnn

    @staticmethod
    def _check_openvino(device: str, implementation: str) -> None:
        if implementation != "fast":
            raise ValueError("extraction.detection.backend openvino runs the fast cascade: set implementation: "
                             "fast, or backend: torch (facenet's own cascade runs its torch networks)")
        if device != "cpu":
            raise ValueError(f"extraction.detection.backend openvino runs on the CPU only, the device is {device}: "
                             "set device: cpu, or backend: torch")
        if not importable("openvino"):
            raise ValueError("extraction.detection.backend openvino needs OpenVINO: pip install 'facesleuth[openvino]' "
                             "(or set backend: torch)")

    def load(self) -> FaceDetector:
        """Load MTCNN now, so a missing model or a bad device fails before any video is read."""
        _ = self.mtcnn
        return self

    def mtcnn_min_size(self, scale: float) -> int:
        """MTCNN min_face_size for frames downscaled by ``scale``: at least min_detection_size,
        and no smaller than (with slack) the faces the min_face_size filter would keep."""
        return max(self.min_detection_size, math.floor(self.min_face_size * scale * MIN_SIZE_SLACK))

    # ------------------------------------------------------------------ detection

    def detect(
        self,
        frames: Sequence[np.ndarray] | np.ndarray,
        full_size: tuple[int, int] | None = None,
    ) -> list[FrameFaces]:
        """Faces in each frame, boxes in full-resolution pixels, filtered.

        ``frames`` are full-resolution RGB frames (downscaled here), or, with
        ``full_size=(width, height)``, frames already at detection size (the test flow has the
        decoder scale them) whose boxes are mapped to ``full_size``. Frames of different sizes
        may be mixed; each MTCNN batch holds frames of one size.
        """
        import cv2  # imported on use: see the module docstring

        results: list[FrameFaces | None] = [None] * len(frames)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(tuple(frame.shape), []).append(i)
        for shape, members in by_shape.items():
            height, width = shape[:2]
            if full_size is None:
                full_w, full_h = width, height
                det_w, det_h = detection_size(width, height, self.detect_max_side)
            else:
                full_w, full_h = full_size
                det_w, det_h = width, height
            scale_x, scale_y = full_w / det_w, full_h / det_h
            for start in range(0, len(members), self.batch_size):
                batch_ids = members[start : start + self.batch_size]
                batch = [frames[i] for i in batch_ids]
                if (det_w, det_h) != (width, height):
                    batch = [cv2.resize(f, (det_w, det_h), interpolation=cv2.INTER_AREA) for f in batch]
                raw = self._run_mtcnn(np.stack(batch), scale=det_w / full_w)
                for i, (boxes, probs, points) in zip(batch_ids, raw):
                    boxes = boxes * np.array([scale_x, scale_y, scale_x, scale_y], np.float32)
                    points = points * np.array([scale_x, scale_y], np.float32)
                    results[i] = self._filter(boxes, probs, points)
        return results  # type: ignore[return-value]

    def _run_mtcnn(self, batch: np.ndarray, scale: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(boxes, probs, landmarks) per frame: O-Net computes the landmarks with the boxes anyway."""
        mtcnn = self.mtcnn
        mtcnn.min_face_size = self.mtcnn_min_size(scale)
        if self.implementation == "fast":
            return mtcnn_fast.detect(mtcnn, batch, landmarks=True)
        boxes, probs, points = mtcnn.detect(batch, landmarks=True)
        return [_as_boxes((b, p, q)) for b, p, q in zip(boxes, probs, points)]

    def _filter(self, boxes: np.ndarray, probs: np.ndarray, landmarks: np.ndarray | None = None) -> FrameFaces:
        detected = len(boxes)
        if detected == 0:
            return no_faces()
        if landmarks is None:
            landmarks = no_landmarks(detected)
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        keep = (probs >= self.min_probability) & (sides >= self.min_face_size)
        return FrameFaces(
            boxes[keep].astype(np.float32), probs[keep].astype(np.float32), detected, landmarks[keep].astype(np.float32)
        )

    # ------------------------------------------------------------------ crops

    def crop(self, frame: np.ndarray, box: Sequence[float]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        return crop_with_margin(frame, box, self.margin)

    def encode(self, crop: np.ndarray) -> bytes:
        return encode_jpeg(crop, self.jpeg_quality)


def crop_with_margin(
    frame: np.ndarray, box: Sequence[float], margin: int
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The face ``box`` (x0, y0, x1, y1, full-resolution pixels) grown by ``margin`` on every
    side and clipped to the frame. Returns the crop and the integer box actually cropped."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    cx0 = max(0, math.floor(x0 - margin))
    cy0 = max(0, math.floor(y0 - margin))
    cx1 = min(width, math.ceil(x1 + margin))
    cy1 = min(height, math.ceil(y1 + margin))
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError(f"box {list(box[:4])} lies outside the {width}x{height} frame")
    return frame[cy0:cy1, cx0:cx1], (cx0, cy0, cx1, cy1)


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    """RGB uint8 image -> JPEG bytes."""
    import cv2  # imported on use: see the module docstring

    ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {rgb.shape}")
    return buffer.tobytes()
