"""Real demo videos: a face photo filmed by a moving camera under changing light.

Each real video is a still photo given a "look" (white balance, saturation, tone, mirror, a
replaced background well outside the face), then filmed along a smooth random camera path (pan,
zoom, roll), under light whose level and direction drift, with per-frame sensor noise. The frames
are kept uncompressed (:class:`RenderedVideo`) so that fakes can be made from exactly the frames
their original was encoded from: real and fake then differ only by the manipulation, never by
bitrate, size or frame count. Both go through the same encoder in :func:`write_video`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from facesleuth.demo.sources import FacePhoto, flipped
from facesleuth.io import atomic_path

FOURCC = "mp4v"  # MPEG-4 Part 2: in every OpenCV wheel, decoded by decord, deterministic bytes


@dataclass(frozen=True)
class Look:
    """How one video's photo is dressed: the "identity variant" that keeps videos distinct."""

    flip: bool
    channel_gains: tuple[float, float, float]  # white balance
    saturation: float
    gamma: float
    tint: tuple[float, float, float]  # colour grading of monochrome photos (1, 1, 1: none)
    background: str | None  # texture replacing the photo's background, None keeps it
    background_gains: tuple[float, float, float]


@dataclass
class RenderedVideo:
    """Uncompressed frames of a video with the face's position in every frame."""

    frames: list[np.ndarray]  # H x W x 3 uint8 RGB
    boxes: np.ndarray  # (n, 4) face box per frame, full-resolution pixels
    landmarks: np.ndarray  # (n, 5, 2) landmarks per frame
    faces: np.ndarray  # (n, 5) the face's own (rotated) box: centre x, centre y, width, height, angle in degrees
    fps: float

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.frames[0].shape[:2]
        return width, height


def random_look(rng: np.random.Generator, backgrounds: list[str], background_p: float = 0.5) -> Look:
    """Draw a look; ``backgrounds`` are the texture names this part of the demo may use."""
    gains = tuple(float(g) for g in rng.uniform(0.86, 1.14, size=3))
    tint = tuple(float(t) for t in rng.uniform(0.85, 1.15, size=3))
    use_background = bool(backgrounds) and rng.random() < background_p
    return Look(
        flip=bool(rng.random() < 0.5),
        channel_gains=gains,
        saturation=float(rng.uniform(0.7, 1.25)),
        gamma=float(rng.uniform(0.8, 1.25)),
        tint=tint,
        background=str(rng.choice(backgrounds)) if use_background else None,
        background_gains=tuple(float(g) for g in rng.uniform(0.6, 1.2, size=3)),
    )


def dress_photo(photo: FacePhoto, look: Look, textures: dict[str, np.ndarray], rng: np.random.Generator) -> FacePhoto:
    """Apply ``look`` to ``photo``: mirror, colour, background (outside a wide head ellipse)."""
    dressed = flipped(photo) if look.flip else photo
    image = dressed.image.astype(np.float32) / 255.0
    if is_monochrome(dressed.image):  # grade a black-and-white photo like a tinted print
        image = image * np.array(look.tint, dtype=np.float32)
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * look.saturation
    image = np.clip(image * np.array(look.channel_gains, dtype=np.float32), 0, 1) ** look.gamma
    if look.background is not None:
        height, width = image.shape[:2]
        texture = textures[look.background]
        scale = max(height / texture.shape[0], width / texture.shape[1]) * rng.uniform(1.0, 1.6)
        big = cv2.resize(texture, (int(np.ceil(texture.shape[1] * scale)), int(np.ceil(texture.shape[0] * scale))))
        top = int(rng.integers(0, big.shape[0] - height + 1))
        left = int(rng.integers(0, big.shape[1] - width + 1))
        background = big[top : top + height, left : left + width].astype(np.float32) / 255.0
        background *= np.array(look.background_gains, dtype=np.float32)
        keep = head_mask(dressed, (height, width))[:, :, None]
        image = keep * image + (1 - keep) * np.clip(background, 0, 1)
    out = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return replace(dressed, name=f"{photo.name}+look", image=out)


def is_monochrome(image: np.ndarray) -> bool:
    return bool(np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 1], image[:, :, 2]))


def head_mask(photo: FacePhoto, shape: tuple[int, int]) -> np.ndarray:
    """Soft ellipse over head and shoulders, far enough out that face crops never reach its edge."""
    x0, y0, x1, y1 = photo.box
    width, height = x1 - x0, y1 - y0
    centre = (float((x0 + x1) / 2), float((y0 + y1) / 2 + 0.3 * height))
    axes = (float(1.15 * width), float(1.5 * height))
    mask = np.zeros(shape, dtype=np.float32)
    cv2.ellipse(mask, (centre, (2 * axes[0], 2 * axes[1]), 0.0), 1.0, -1)
    sigma = 0.12 * width
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def smooth_path(rng: np.random.Generator, n: int, amplitude: float, cycles: tuple[float, float] = (0.3, 1.2)) -> np.ndarray:
    """A smooth random 1-D path of ``n`` samples: two sinusoids of random phase and frequency."""
    t = np.linspace(0.0, 1.0, n)
    path = np.zeros(n)
    for weight in (1.0, 0.4):
        freq = rng.uniform(*cycles)
        path += weight * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    return amplitude * path / 1.4


def camera_matrices(
    photo: FacePhoto,
    frame_size: tuple[int, int],
    n_frames: int,
    rng: np.random.Generator,
    face_fraction: tuple[float, float],
) -> np.ndarray:
    """Affine photo->frame matrices (n, 2, 3) of a camera that pans, zooms and rolls smoothly.

    The face's box width is ``face_fraction`` of the frame's short side on average, and its
    centre stays well inside the frame so detectors see it in every frame.
    """
    width, height = frame_size
    short = min(width, height)
    face_width = rng.uniform(*face_fraction) * short
    base_scale = face_width / photo.face_width
    # Slow enough that boxes in frames two apart overlap by IoU > 0.75 (the test flow's tracker).
    zoom = 1 + smooth_path(rng, n_frames, rng.uniform(0.02, 0.06), (0.2, 0.8))
    roll = np.deg2rad(rng.uniform(-5, 5) + smooth_path(rng, n_frames, rng.uniform(1, 3), (0.2, 0.8)))
    centre_x = width / 2 + rng.uniform(-0.08, 0.08) * width + smooth_path(rng, n_frames, 0.04 * width, (0.2, 0.8))
    centre_y = height / 2 + rng.uniform(-0.06, 0.04) * height + smooth_path(rng, n_frames, 0.03 * height, (0.2, 0.8))
    face_x, face_y = photo.face_center
    matrices = np.empty((n_frames, 2, 3))
    for i in range(n_frames):
        scale = base_scale * zoom[i]
        cos, sin = scale * np.cos(roll[i]), scale * np.sin(roll[i])
        linear = np.array([[cos, -sin], [sin, cos]])
        matrices[i, :, :2] = linear
        matrices[i, :, 2] = np.array([centre_x[i], centre_y[i]]) - linear @ np.array([face_x, face_y])
    return matrices


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def transform_box(matrix: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Axis-aligned box around the transformed box (as a detector would draw it)."""
    x0, y0, x1, y1 = box
    corners = transform_points(matrix, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]))
    return np.concatenate([corners.min(axis=0), corners.max(axis=0)])


def light_gains(rng: np.random.Generator, n_frames: int, frame_size: tuple[int, int]) -> list[np.ndarray]:
    """Per-frame multiplicative light: a drifting level, a turning side light, a slight colour drift."""
    width, height = frame_size
    level = 1 + rng.uniform(-0.18, 0.15) + smooth_path(rng, n_frames, rng.uniform(0.04, 0.15))
    side_x = rng.uniform(-0.25, 0.25) + smooth_path(rng, n_frames, rng.uniform(0.05, 0.2))
    side_y = rng.uniform(-0.15, 0.15) + smooth_path(rng, n_frames, 0.08)
    colour = 1 + rng.uniform(-0.04, 0.04, size=3)[None, :] + np.stack(
        [smooth_path(rng, n_frames, 0.03) for _ in range(3)], axis=1
    )
    xs = (np.arange(width, dtype=np.float32) / width - 0.5)[None, :]
    ys = (np.arange(height, dtype=np.float32) / height - 0.5)[:, None]
    gains = []
    for i in range(n_frames):
        field = level[i] * (1 + side_x[i] * xs + side_y[i] * ys)
        gains.append(field[:, :, None].astype(np.float32) * colour[i].astype(np.float32))
    return gains


def focus_filter(rng: np.random.Generator):
    """The camera's focus and in-camera sharpening, one per video: reals vary in sharpness too, so
    a blurry or crisp face alone says nothing; only a face unlike its surroundings does."""
    draw = rng.random()
    if draw < 0.4:
        sigma = rng.uniform(0.4, 1.3)
        return lambda image: cv2.GaussianBlur(image, (0, 0), sigma)
    if draw < 0.7:
        amount = rng.uniform(0.2, 0.8)

        def sharpen(image: np.ndarray) -> np.ndarray:
            return cv2.addWeighted(image, 1 + amount, cv2.GaussianBlur(image, (0, 0), 1.2), -amount, 0)

        return sharpen
    return lambda image: image


def render_video(
    photo: FacePhoto,
    frame_size: tuple[int, int],
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    face_fraction: tuple[float, float] = (0.36, 0.5),
) -> RenderedVideo:
    """Film ``photo`` (already dressed): camera path, focus, light, sensor noise; uncompressed frames."""
    width, height = frame_size
    matrices = camera_matrices(photo, frame_size, n_frames, rng, face_fraction)
    gains = light_gains(rng, n_frames, frame_size)
    focus = focus_filter(rng)
    noise_sigma = np.float32(rng.uniform(1.0, 5.0))
    frames, boxes, landmarks, faces = [], [], [], []
    photo_width, photo_height = photo.box[2] - photo.box[0], photo.box[3] - photo.box[1]
    for matrix, gain in zip(matrices, gains):
        # Beyond the photo's edge, repeat its border: a mirror would show a second, partial face.
        view = cv2.warpAffine(photo.image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        lit = focus(view.astype(np.float32)) * gain
        lit += rng.standard_normal(size=lit.shape, dtype=np.float32) * noise_sigma
        lit += 0.5
        frames.append(np.clip(lit, 0, 255).astype(np.uint8))
        boxes.append(transform_box(matrix, photo.box))
        landmarks.append(transform_points(matrix, photo.landmarks))
        scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
        centre = transform_points(matrix, photo.face_center[None])[0]
        angle = float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
        faces.append([centre[0], centre[1], photo_width * scale, photo_height * scale, angle])
    return RenderedVideo(
        frames=frames, boxes=np.array(boxes), landmarks=np.array(landmarks), faces=np.array(faces), fps=fps
    )


def write_video(frames: list[np.ndarray], path: str | Path, fps: float) -> Path:
    """Encode RGB frames as MPEG-4 Part 2 in an .mp4 (OpenCV), written beside and renamed into place."""
    path = Path(path)
    height, width = frames[0].shape[:2]
    # The temporary file keeps the .mp4 suffix: OpenCV picks the container by it.
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), float(fps), (width, height))
        if not writer.isOpened():
            raise RuntimeError(
                f"OpenCV cannot open a {FOURCC} video writer for {tmp}; this OpenCV build lacks FFmpeg video I/O "
                "(install opencv-python-headless from PyPI)"
            )
        try:
            for frame in frames:
                if frame.shape[:2] != (height, width):
                    raise ValueError(f"{path}: frame size changed within the video ({frame.shape[:2]} vs {(height, width)})")
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return path
