"""DFDC-test-style augmenters and distractors for the demo's test set.

The DFDC test set altered about 79 % of its videos with augmenters (blur, brightness, contrast,
frame rate, greyscale, flip, noise, encoding quality, resolution, rotation) and distractors
(text, shapes, dots, random images, faces laid over the frames); the thesis (section 3.1.1,
Tables 3.2-3.5) reports errors per augmenter and distractor. The names here follow those tables'
rows in snake case, and are what the test set's ``labels.csv`` records.

Strengths keep the face detectable in most frames (the test flow needs long IoU tracks):
rotation stays within 12 degrees, resolution at least 60 %, frame-rate changes keep at least two
thirds of the frames, and overlays are smaller than the detector's minimum face size or never
cross the face's centre.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from facesleuth.extract import perturb

AUGMENTERS = (
    "blur",
    "brightness",
    "contrast",
    "framerate_change",
    "greyscale",
    "horizontal_flip",
    "noise",
    "quality_level_change",
    "resolution_change",
    "rotate",
)
DISTRACTORS = ("dots", "faces", "random_images", "shapes", "text")

TAGGED_SHARE = 0.79  # DFDC: augmenters or distractors on 79 % of the test videos

WORDS = ("BREAKING", "LIVE", "hello", "demo", "#news", "2020", "subscribe", "wow", "LOL", "face", "today", "sale")


def draw_tags(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Augmenters and distractors for one test video: none for about 21 % of the videos."""
    if rng.random() >= TAGGED_SHARE:
        return [], []
    while True:
        n_augmenters = int(rng.choice([0, 1, 1, 2]))
        n_distractors = int(rng.choice([0, 0, 1]))
        if n_augmenters + n_distractors:
            break
    augmenters = sorted(str(a) for a in rng.choice(AUGMENTERS, size=n_augmenters, replace=False))
    distractors = sorted(str(d) for d in rng.choice(DISTRACTORS, size=n_distractors, replace=False))
    return augmenters, distractors


# ------------------------------------------------------------------ augmenters (whole video)
# Each takes (frames, fps, rng) and returns (frames, fps); strength is drawn once per video.

Frames = list[np.ndarray]


def _map(frames: Frames, function: Callable[[np.ndarray], np.ndarray]) -> Frames:
    return [function(frame) for frame in frames]


_to_uint8 = perturb.to_uint8


def _blur(frames: Frames, fps: float, rng: np.random.Generator) -> tuple[Frames, float]:
    return perturb.blur(frames, rng.uniform(0.8, 1.8)), fps


def _brightness(frames: Frames, fps: float, rng: np.random.Generator) -> tuple[Frames, float]:
    offset = rng.choice([-1, 1]) * rng.uniform(20, 45)
    return _map(frames, lambda f: _to_uint8(f.astype(np.float32) + offset)), fps


def _contrast(frames: Frames, fps: float, rng: np.random.Generator) -> tuple[Frames, float]:
    factor = rng.uniform(0.55, 0.75) if rng.random() < 0.5 else rng.uniform(1.3, 1.6)
    return _map(frames, lambda f: _to_uint8((f.astype(np.float32) - 128) * factor + 128)), fps


def _framerate_change(frames: Frames, fps: float, rng: np.random.Generator) -> tuple[Frames, float]:
    """Drop frames evenly (the video keeps its duration at a lower frame rate)."""
    return perturb.keep_evenly(frames, fps, max(1, round(len(frames) * rng.uniform(0.67, 0.85))))


def _greyscale(frames: Frames, fps: float, rng: np.random.Generator) -> tuple[Frames, float]:
    return _map(frames, lambda f: cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)), fps


def _horizontal_flip(frames: Frames, fps: float, rng: np.random.Generator) -> tuple[Frames, float]:
    return _map(frames, lambda f: np.ascontiguousarray(f[:, ::-1])), fps


def _noise(frames: Frames, fps: float, rng: np.random.Generator) -> tuple[Frames, float]:
    return perturb.noise(frames, rng.uniform(4, 10), rng), fps


def _quality_level_change(frames: Frames, fps: float, rng: np.random.Generator) -> tuple[Frames, float]:
    """Strong compression: every frame through JPEG at a low quality before the video encoder."""
    return perturb.jpeg(frames, int(rng.integers(12, 31))), fps


def _resolution_change(frames: Frames, fps: float, rng: np.random.Generator) -> tuple[Frames, float]:
    """Smaller frames (60-80 %), kept small as DFDC's were."""
    return perturb.resize(frames, rng.uniform(0.6, 0.8)), fps


def _rotate(frames: Frames, fps: float, rng: np.random.Generator) -> tuple[Frames, float]:
    height, width = frames[0].shape[:2]
    angle = rng.choice([-1, 1]) * rng.uniform(5, 12)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    return _map(frames, lambda f: cv2.warpAffine(f, matrix, (width, height), borderMode=cv2.BORDER_CONSTANT)), fps


AUGMENTER_FUNCTIONS = {
    "blur": _blur,
    "brightness": _brightness,
    "contrast": _contrast,
    "framerate_change": _framerate_change,
    "greyscale": _greyscale,
    "horizontal_flip": _horizontal_flip,
    "noise": _noise,
    "quality_level_change": _quality_level_change,
    "resolution_change": _resolution_change,
    "rotate": _rotate,
}


def apply_augmenters(
    frames: list[np.ndarray], fps: float, names: list[str], rng: np.random.Generator
) -> tuple[list[np.ndarray], float]:
    """Apply the named augmenters in order; returns the new frames and frame rate (the input
    list is not modified)."""
    for name in names:
        if name not in AUGMENTER_FUNCTIONS:
            raise ValueError(f"unknown demo augmenter {name!r}; known: {', '.join(AUGMENTERS)}")
        frames, fps = AUGMENTER_FUNCTIONS[name](frames, fps, rng)
    return frames, fps


# ------------------------------------------------------------------ distractors (overlays)


def _covers_face(corner: np.ndarray, size: tuple[int, int], box: np.ndarray) -> bool:
    """Whether an overlay at ``corner`` reaches into the central half of the face ``box``."""
    x0, y0, x1, y1 = box
    core = (x0 + (x1 - x0) / 4, y0 + (y1 - y0) / 4, x1 - (x1 - x0) / 4, y1 - (y1 - y0) / 4)
    x, y = corner
    return not (x + size[0] < core[0] or x > core[2] or y + size[1] < core[1] or y > core[3])


def _track(
    rng: np.random.Generator,
    frame_size: tuple[int, int],
    boxes: np.ndarray,
    size: tuple[int, int],
    n: int,
    moving: bool = True,
) -> np.ndarray:
    """Positions over ``n`` frames: a slow straight drift (or none) that never crosses the face's
    centre, so the subject stays detectable and keeps its track; a corner when nothing fits."""
    width, height = frame_size
    for _ in range(100):
        start = rng.uniform([0, 0], [max(1, width - size[0]), max(1, height - size[1])])
        velocity = rng.uniform(-1.0, 1.0, size=2) if moving else np.zeros(2)
        positions = start[None] + velocity[None] * np.arange(n)[:, None]
        if not any(_covers_face(p, size, b) for p, b in zip(positions, boxes)):
            return positions
    return np.zeros((n, 2))


def _visible_span(rng: np.random.Generator, n: int) -> tuple[int, int]:
    """Frames an overlay is shown: all of them, or a stretch that appears and disappears."""
    if rng.random() < 0.5:
        return 0, n
    start = int(rng.integers(0, n // 2))
    return start, int(rng.integers(start + n // 4, n + 1))


def _paste(frame: np.ndarray, patch: np.ndarray, corner: np.ndarray, alpha: float = 1.0) -> None:
    height, width = frame.shape[:2]
    x, y = round(corner[0]), round(corner[1])
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + patch.shape[1]), min(height, y + patch.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    region = patch[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    target = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(alpha * region + (1 - alpha) * target + 0.5, 0, 255).astype(np.uint8)


def _text(frames: Frames, boxes: np.ndarray, rng: np.random.Generator, overlays: dict) -> None:
    height, width = frames[0].shape[:2]
    word = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 3))))
    scale = rng.uniform(0.6, 1.1)
    (text_w, text_h), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    positions = _track(rng, (width, height), boxes, (text_w, text_h), len(frames))
    colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
    start, stop = _visible_span(rng, len(frames))
    for i in range(start, stop):
        x, y = positions[i]
        cv2.putText(frames[i], word, (int(x), int(y + text_h)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 2, cv2.LINE_AA)


def _shapes(frames: Frames, boxes: np.ndarray, rng: np.random.Generator, overlays: dict) -> None:
    height, width = frames[0].shape[:2]
    for _ in range(int(rng.integers(1, 4))):
        side = int(rng.integers(20, 50))
        positions = _track(rng, (width, height), boxes, (side, side), len(frames))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        kind = rng.choice(["rectangle", "circle", "triangle"])
        start, stop = _visible_span(rng, len(frames))
        for i in range(start, stop):
            x, y = (int(v) for v in positions[i])
            if kind == "rectangle":
                cv2.rectangle(frames[i], (x, y), (x + side, y + side), colour, -1)
            elif kind == "circle":
                cv2.circle(frames[i], (x + side // 2, y + side // 2), side // 2, colour, -1, cv2.LINE_AA)
            else:
                points = np.array([[x + side // 2, y], [x, y + side], [x + side, y + side]], dtype=np.int32)
                cv2.fillPoly(frames[i], [points], colour, cv2.LINE_AA)


def _dots(frames: Frames, boxes: np.ndarray, rng: np.random.Generator, overlays: dict) -> None:
    """Scattered jittering dots, a few pixels wide: they may fall on the face, as in DFDC."""
    height, width = frames[0].shape[:2]
    count = int(rng.integers(15, 50))
    centres = rng.uniform([0, 0], [width, height], size=(count, 2))
    radii = rng.integers(1, 4, size=count)
    colours = rng.integers(0, 256, size=(count, 3))
    for i, frame in enumerate(frames):
        jitter = rng.normal(0, 1.0, size=centres.shape)
        for centre, radius, colour in zip(centres + jitter, radii, colours):
            cv2.circle(frame, (int(centre[0]), int(centre[1])), int(radius), tuple(int(c) for c in colour), -1)


def _random_images(frames: Frames, boxes: np.ndarray, rng: np.random.Generator, overlays: dict) -> None:
    height, width = frames[0].shape[:2]
    texture = overlays["textures"][int(rng.integers(len(overlays["textures"])))]
    side = int(rng.integers(40, 80))
    top = int(rng.integers(0, texture.shape[0] - side))
    left = int(rng.integers(0, texture.shape[1] - side))
    patch = cv2.resize(texture[top : top + 2 * side, left : left + 2 * side], (side, side))
    positions = _track(rng, (width, height), boxes, (side, side), len(frames), moving=rng.random() < 0.7)
    start, stop = _visible_span(rng, len(frames))
    alpha = rng.uniform(0.7, 1.0)
    for i in range(start, stop):
        _paste(frames[i], patch, positions[i], alpha)


def _faces(frames: Frames, boxes: np.ndarray, rng: np.random.Generator, overlays: dict) -> None:
    """Small face images: below the detector's minimum face size, so the subject stays the track."""
    height, width = frames[0].shape[:2]
    for _ in range(int(rng.integers(1, 3))):
        face = overlays["faces"][int(rng.integers(len(overlays["faces"])))]
        side = int(rng.integers(24, 36))
        patch = cv2.resize(face.image, (side, side), interpolation=cv2.INTER_AREA)
        positions = _track(rng, (width, height), boxes, (side, side), len(frames))
        start, stop = _visible_span(rng, len(frames))
        for i in range(start, stop):
            _paste(frames[i], patch, positions[i])


DISTRACTOR_FUNCTIONS = {
    "dots": _dots,
    "faces": _faces,
    "random_images": _random_images,
    "shapes": _shapes,
    "text": _text,
}


def apply_distractors(
    frames: list[np.ndarray], boxes: np.ndarray, names: list[str], rng: np.random.Generator, overlays: dict
) -> list[np.ndarray]:
    """Draw the named distractors onto copies of ``frames``.

    ``boxes`` are the face boxes per frame (overlays start away from the face); ``overlays``
    holds ``textures`` (list of RGB images) and ``faces`` (list of :class:`FacePhoto`).
    """
    frames = [frame.copy() for frame in frames]
    for name in names:
        if name not in DISTRACTOR_FUNCTIONS:
            raise ValueError(f"unknown demo distractor {name!r}; known: {', '.join(DISTRACTORS)}")
        DISTRACTOR_FUNCTIONS[name](frames, boxes, rng, overlays)
    return frames
