"""Self-blended images (Shiohara and Yamasaki, CVPR 2022, "Detecting Deepfakes with Self-Blended
Images"): pseudo-fakes made on the fly from real faces.

A real face crop is blended with a slightly altered copy of itself (the *source*) inside a
face-shaped mask: the source's colours and sharpness are jittered and it is rescaled and
shifted a little, so the blend leaves the traces every face swap leaves (a blending boundary,
mismatched colour statistics and landmarks) without a second identity or any generator. A
detector trained on them as fakes learns those generic traces, which generalise across
manipulation methods better than one method's own artefacts.

The paper builds the mask from 81 dlib landmarks; extraction here keeps MTCNN's five (eyes, nose,
mouth corners). The mask is the convex hull of those five points pushed outwards from their
centre (so it reaches brows, cheeks and chin), clipped to the crop, then randomly deformed (a
small affine warp), eroded or dilated, blurred at its edges and scaled by a blend ratio, as in
the paper's mask generator. Outside the mask the output is the input, bit for bit.

Every random draw comes from the ``numpy.random.Generator`` passed in, so a blend is
reproducible from a seed (the training dataset seeds it with (seed, epoch, index)).

cv2 and albumentations are imported where they are used, as in :mod:`facesleuth.train.augment`, so
that importing this module (the figures and the registry's builders do) stays cheap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

#: MTCNN's landmark order: left eye, right eye, nose, left mouth corner, right mouth corner
#: (left and right as seen in the image). Stored flat as x0, y0, x1, y1, ... in the faces table.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
N_LANDMARKS = len(LANDMARK_NAMES)

#: The paper's blend ratios: opaque twice as often as each partial ratio.
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class SelfBlendSettings:
    """Ranges of the random draws (defaults after the paper's source-target and mask generators).

    ``hull_expansion``: how far the hull points move out from the landmarks' centre, as a factor
    of their distance (the five points lie well inside the face; 1.3-1.8 reaches from the brows
    to the chin, about the paper's 81-landmark hull).
    ``scale_range`` / ``shift_fraction``: the source's rescaling and shift (fraction of the crop).
    ``deform_fraction``: corner displacement of the mask's random affine warp (fraction of size).
    ``edge_blur_fraction``: sigma of the edge blur, as a fraction of the mask's size.
    """

    hull_expansion: tuple[float, float] = (1.3, 1.8)
    scale_range: tuple[float, float] = (0.95, 1.05)
    shift_fraction: float = 0.03
    deform_fraction: float = 0.04
    erode_fraction: tuple[float, float] = (-0.06, 0.06)
    edge_blur_fraction: tuple[float, float] = (0.02, 0.08)
    rgb_shift: int = 20
    hue_shift: int = 10
    saturation_shift: int = 30
    value_shift: int = 20
    brightness_contrast: float = 0.1
    blend_ratios: tuple[float, ...] = BLEND_RATIOS


class SelfBlended(NamedTuple):
    """A self-blended face: the ``image`` (uint8, the input's shape) and the float32 ``mask``
    in [0, 1] it was blended through (0 where the image is the input's)."""

    image: np.ndarray
    mask: np.ndarray


def landmarks_array(values: object) -> np.ndarray | None:
    """Five landmarks as a (5, 2) float array from the faces table's flat list (x0, y0, ...);
    None where they are missing (a null, or any NaN)."""
    if values is None:
        return None
    points = np.asarray(values, dtype=np.float64)
    if points.size != 2 * N_LANDMARKS or not np.isfinite(points).all():
        return None
    return points.reshape(N_LANDMARKS, 2)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def hull_mask(shape: tuple[int, int], landmarks: np.ndarray, expansion: float) -> np.ndarray:
    """Binary (uint8 0/1) mask of the convex hull of ``landmarks`` pushed out from their centre
    by ``expansion`` (1: the landmarks' own hull), clipped to ``shape`` (height, width)."""
    import cv2

    height, width = shape
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    centre = points.mean(axis=0)
    grown = centre + (points - centre) * expansion
    # Faces are taller than the five points suggest: the chin lies well below the mouth and the
    # brows above the eyes, so the vertical spread grows a little more than the horizontal.
    grown[:, 1] = centre[1] + (grown[:, 1] - centre[1]) * 1.2
    # Round the pentagon off: add the ellipse inscribed in the grown points' bounding box, so the
    # hull follows a face's outline rather than the five points' straight edges.
    low, high = grown.min(axis=0), grown.max(axis=0)
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ellipse = (low + high) / 2 + np.stack([np.cos(angles), np.sin(angles)], axis=1) * (high - low) / 2
    outline = np.concatenate([grown, ellipse])
    outline[:, 0] = np.clip(outline[:, 0], 0, width - 1)
    outline[:, 1] = np.clip(outline[:, 1], 0, height - 1)
    hull = cv2.convexHull(np.round(outline).astype(np.int32))
    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    return mask


def blend_mask(
    shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator, settings: SelfBlendSettings
) -> np.ndarray:
    """The paper's mask generator on five landmarks: hull, random deformation, erosion or
    dilation, blurred edges, blend ratio. float32 in [0, 1]; never empty (falls back to the
    undeformed hull when the deformation would erase it)."""
    import cv2

    height, width = shape
    hull = hull_mask(shape, landmarks, _uniform(rng, settings.hull_expansion))
    size = float(np.sqrt(hull.sum())) or 1.0  # the mask's linear size, in pixels
    # Random affine deformation: each of three anchor points moves by up to deform_fraction.
    anchors = np.float32([[0, 0], [width - 1, 0], [0, height - 1]])
    moved = anchors + rng.uniform(-1, 1, size=anchors.shape).astype(np.float32) * settings.deform_fraction * size
    deformed = cv2.warpAffine(hull, cv2.getAffineTransform(anchors, moved), (width, height), flags=cv2.INTER_NEAREST)
    # Erode (negative) or dilate (positive) by a random amount.
    amount = _uniform(rng, settings.erode_fraction) * size
    radius = int(round(abs(amount)))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        deformed = (cv2.dilate if amount > 0 else cv2.erode)(deformed, kernel)
    if not deformed.any():
        deformed = hull
    sigma = max(0.5, _uniform(rng, settings.edge_blur_fraction) * size)
    mask = cv2.GaussianBlur(deformed.astype(np.float32), (0, 0), sigma)
    ratio = float(rng.choice(settings.blend_ratios))
    return np.clip(mask * ratio, 0.0, 1.0).astype(np.float32)


def colour_chain(settings: SelfBlendSettings):
    """The source's colour and frequency jitter, an albumentations pipeline (built once per
    blender: building one costs more than running it)."""
    import albumentations as A

    return A.Compose(
        [
            A.RGBShift(
                r_shift_limit=settings.rgb_shift, g_shift_limit=settings.rgb_shift, b_shift_limit=settings.rgb_shift, p=0.3
            ),
            A.HueSaturationValue(
                hue_shift_limit=settings.hue_shift,
                sat_shift_limit=settings.saturation_shift,
                val_shift_limit=settings.value_shift,
                p=0.3,
            ),
            A.RandomBrightnessContrast(
                brightness_limit=settings.brightness_contrast, contrast_limit=settings.brightness_contrast, p=1.0
            ),
            A.OneOf([A.Downscale(scale_range=(0.25, 0.5), p=1.0), A.Sharpen(alpha=(0.2, 0.5), p=1.0)], p=0.5),
        ]
    )


def _colour_jitter(image: np.ndarray, rng: np.random.Generator, chain) -> np.ndarray:
    """``chain`` (:func:`colour_chain`) on ``image``, its draws seeded from ``rng``."""
    chain.set_random_state(rng, random.Random(int(rng.integers(2**63))))
    return chain(image=image)["image"]


def _geometry_jitter(image: np.ndarray, rng: np.random.Generator, settings: SelfBlendSettings) -> np.ndarray:
    """Rescale (independently in x and y) about the centre and shift, edges reflected."""
    import cv2

    height, width = image.shape[:2]
    scale_x, scale_y = _uniform(rng, settings.scale_range), _uniform(rng, settings.scale_range)
    shift_x, shift_y = rng.uniform(-settings.shift_fraction, settings.shift_fraction, size=2) * (width, height)
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    matrix = np.float32(
        [
            [scale_x, 0, centre_x * (1 - scale_x) + shift_x],
            [0, scale_y, centre_y * (1 - scale_y) + shift_y],
        ]
    )
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


class SelfBlender:
    """Makes self-blended images from real faces and their landmarks (crop coordinates).

    >>> blended = SelfBlender()(face, landmarks, np.random.default_rng(0))
    >>> blended.image, blended.mask   # label: fake
    """

    def __init__(self, settings: SelfBlendSettings | None = None):
        self.settings = settings or SelfBlendSettings()
        self._colour_chain = None

    def source(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The altered copy that is blended in: colour/frequency then geometry jitter."""
        if self._colour_chain is None:
            self._colour_chain = colour_chain(self.settings)
        return _geometry_jitter(_colour_jitter(image, rng, self._colour_chain), rng, self.settings)

    def mask(self, shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return blend_mask(shape, landmarks, rng, self.settings)

    def __call__(self, image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> SelfBlended:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"self-blending needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
        points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
        if points.shape != (N_LANDMARKS, 2) or not np.isfinite(points).all():
            raise ValueError(f"self-blending needs {N_LANDMARKS} finite (x, y) landmarks, got {landmarks!r}")
        source = self.source(image, rng)
        mask = self.mask(image.shape[:2], points, rng)
        return SelfBlended(blend(image, source, mask), mask)


def blend(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask * source + (1 - mask) * target``, rounded to uint8. Where ``mask`` is 0 the result
    is ``target`` exactly (x + 0.5 rounds back to the integer x)."""
    alpha = mask[..., None].astype(np.float32)
    mixed = alpha * source.astype(np.float32) + (1.0 - alpha) * target.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
