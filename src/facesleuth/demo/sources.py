"""Face photos and textures the demo is built from, all shipped inside the dependencies.

The demo must run on a fresh machine with no dataset and no downloads, so its faces come from
public-domain photographs that matplotlib and scikit-image install with themselves:

- ``grace_hopper.jpg`` (matplotlib sample data): Rear Admiral Grace Hopper, US Navy photo;
- ``astronaut.png`` (scikit-image): Eileen Collins, NASA photo;
- ``camera.png`` (scikit-image): a monochrome photo of a man at a video camera, face turned
  (CC0, photographer Lav Varshney);
- ``lfw_subset.npy`` (scikit-image): 100 Labeled Faces in the Wild crops of 25x25 pixels (and 100
  non-faces, unused), tiny, so they serve only as face-swap donors and overlaid "faces" distractors.

The face boxes and five landmarks below were measured once with facenet-pytorch's MTCNN (the
detector the pipeline uses) and are kept as constants, so generation is deterministic and needs no
detector; ``tests/test_demo.py`` checks them against MTCNN again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import skimage.data
from PIL import Image

# MTCNN box (x0, y0, x1, y1) and landmarks (left eye, right eye, nose, mouth left, mouth right;
# "left" is the image's left) in the photo's own pixels.
PHOTO_FACES: dict[str, dict] = {
    "grace_hopper": {
        "frontal": True,
        "box": [174.4, 119.6, 355.6, 340.5],
        "landmarks": [[221.7, 192.2], [309.8, 186.1], [269.4, 239.2], [232.7, 279.6], [306.6, 275.9]],
    },
    "astronaut": {
        "frontal": True,
        "box": [181.1, 62.2, 267.7, 172.1],
        "landmarks": [[205.0, 101.7], [246.8, 103.7], [224.7, 129.0], [201.7, 139.2], [245.3, 141.9]],
    },
    "camera": {
        # looks into a video camera, face turned: fine for self-blending, not for face swaps
        "frontal": False,
        "box": [199.2, 118.9, 254.3, 192.3],
        "landmarks": [[234.4, 147.2], [252.3, 149.6], [250.7, 169.1], [231.2, 180.4], [243.5, 181.9]],
    },
}

# Mean MTCNN box and landmarks of the 100 LFW face crops (25x25 pixels; 98 of them detected after a
# 4x bicubic upscale, spread about 1 pixel): the crops are aligned, so one template fits them all.
LFW_FACE_BOX = [1.55, -0.47, 20.26, 23.85]
LFW_FACE_LANDMARKS = [[6.59, 9.03], [15.29, 8.66], [10.72, 13.86], [7.62, 18.42], [14.99, 18.17]]
LFW_FACES = 100  # the first 100 images of lfw_subset.npy are faces, the last 100 are not
LFW_UPSCALE = 4

# Greyscale and colour textures for replaced backgrounds and overlaid "random images"; none of
# them shows a human face (chelsea, a cat, is left out because face detectors may fire on it).
TEXTURES = ("brick", "grass", "gravel", "coffee", "rocket", "hubble_deep_field", "moon", "text", "coins", "colorwheel")


@dataclass(frozen=True)
class FacePhoto:
    """A photo with one located face: the unit every demo video is rendered from."""

    name: str
    image: np.ndarray  # H x W x 3, uint8, RGB
    box: np.ndarray  # (4,) float: x0, y0, x1, y1 of the face
    landmarks: np.ndarray  # (5, 2) float: left eye, right eye, nose, mouth left, mouth right
    frontal: bool = True  # a frontal face can take part in a face swap

    @property
    def face_width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def face_center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], dtype=np.float64)


def flipped(photo: FacePhoto) -> FacePhoto:
    """The photo mirrored left-right, with its box and landmarks mirrored (and left/right swapped)."""
    width = photo.image.shape[1]
    x0, y0, x1, y1 = photo.box
    landmarks = photo.landmarks.copy()
    landmarks[:, 0] = width - 1 - landmarks[:, 0]
    landmarks = landmarks[[1, 0, 2, 4, 3]]
    return replace(
        photo,
        name=f"{photo.name}-flipped",
        image=np.ascontiguousarray(photo.image[:, ::-1]),
        box=np.array([width - 1 - x1, y0, width - 1 - x0, y1]),
        landmarks=landmarks,
    )


def _skimage_data_dir() -> Path:
    return Path(skimage.data.__file__).parent


def _read_rgb(path: Path, hint: str) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"demo source photo {path} is missing; {hint}")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def photo_paths() -> dict[str, tuple[Path, str]]:
    """Where each photo lives, with the fix to suggest when it is missing."""
    skimage_dir = _skimage_data_dir()
    return {
        "grace_hopper": (
            Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
            "it ships with matplotlib's sample data: reinstall matplotlib (pip install --force-reinstall matplotlib)",
        ),
        "astronaut": (skimage_dir / "astronaut.png", "it ships with scikit-image: reinstall scikit-image"),
        "camera": (skimage_dir / "camera.png", "it ships with scikit-image: reinstall scikit-image"),
    }


@cache
def load_photos() -> tuple[FacePhoto, ...]:
    """The three full-size face photos, in a fixed order."""
    photos = []
    for name, (path, hint) in photo_paths().items():
        face = PHOTO_FACES[name]
        photos.append(
            FacePhoto(
                name=name,
                image=_read_rgb(path, hint),
                box=np.array(face["box"], dtype=np.float64),
                landmarks=np.array(face["landmarks"], dtype=np.float64),
                frontal=bool(face["frontal"]),
            )
        )
    return tuple(photos)


@cache
def load_lfw_faces() -> tuple[FacePhoto, ...]:
    """The 100 LFW face crops, upscaled 4x (bicubic, then sharpened) to about 75x100-pixel faces, as RGB."""
    path = _skimage_data_dir() / "lfw_subset.npy"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; it ships with scikit-image: reinstall scikit-image")
    crops = np.load(path)[:LFW_FACES]
    faces = []
    for index, crop in enumerate(crops):
        grey = np.clip(crop * 255.0 + 0.5, 0, 255).astype(np.uint8)
        side = grey.shape[0] * LFW_UPSCALE
        big = cv2.resize(grey, (side, side), interpolation=cv2.INTER_CUBIC)
        # Sharpened after upscaling, as DFDC sharpened some of its fakes: crisper donor faces.
        big = cv2.addWeighted(big, 1.8, cv2.GaussianBlur(big, (0, 0), 2.0), -0.8, 0)
        faces.append(
            FacePhoto(
                name=f"lfw{index:03d}",
                image=np.repeat(big[:, :, None], 3, axis=2),
                box=np.array(LFW_FACE_BOX, dtype=np.float64) * LFW_UPSCALE,
                landmarks=np.array(LFW_FACE_LANDMARKS, dtype=np.float64) * LFW_UPSCALE,
            )
        )
    return tuple(faces)


@cache
def load_textures() -> dict[str, np.ndarray]:
    """Face-free scikit-image pictures as RGB uint8 (backgrounds and overlaid images)."""
    textures = {}
    for name in TEXTURES:
        if name == "colorwheel":
            textures[name] = _colour_wheel(256)
            continue
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        textures[name] = np.ascontiguousarray(image[:, :, :3]).astype(np.uint8)
    return textures


def _colour_wheel(side: int) -> np.ndarray:
    """A hue wheel: a colourful, face-free picture that needs no file."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) - side / 2
    hue = ((np.arctan2(y, x) + np.pi) / (2 * np.pi) * 179).astype(np.uint8)
    sat = np.clip(np.hypot(x, y) / (side / 2) * 255, 0, 255).astype(np.uint8)
    hsv = np.stack([hue, sat, np.full_like(hue, 220)], axis=2)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
