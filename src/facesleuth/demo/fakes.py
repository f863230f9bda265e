"""Fake demo videos, made frame for frame from a real video's uncompressed frames.

Two manipulations, both confined to a soft ellipse over the face, so a fake differs from its
original only there (as FaceForensics++ and DFDC fakes do):

- **face swap** (:func:`face_swap`): another identity's face, aligned on the five landmarks,
  rendered at a lower "generator" resolution, colour-matched imperfectly to the target face and
  pasted inside a feathered ellipse. Like a deepfake autoencoder's output it lacks the camera's
  sensor noise and sharpness, and its colour and alignment flicker a little from frame to frame.
- **self-blending** (:func:`self_blend`, after Shiohara and Yamasaki's self-blended images): the
  frame's own face, recoloured, blurred or sharpened and slightly rescaled and shifted, blended
  back into itself. Identity does not change; the blending boundary is the artefact.

How strong the artefacts are is drawn per video from ranges scaled by ``strength`` (the demo's
``artefact_strength``). The DFDC-style sets share the ranges; Celeb-DF-style swaps are cleaner
(Celeb-DF's improved synthesis). A classifier can tell a fake only by the face region: the rest of
the frame, the frame count, size and encoder are its original's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facesleuth.demo.rendering import RenderedVideo, is_monochrome
from facesleuth.demo.sources import FacePhoto

SWAP = "face_swap"
SELF_BLEND = "self_blend"
METHODS = (SWAP, SELF_BLEND)


@dataclass(frozen=True)
class SwapStyle:
    generator_width: float  # donor face width (pixels) before it is upsampled into the frame
    colour_match: float  # 0: donor's own colours, 1: target's mean and spread matched exactly
    colour_error: tuple[float, float, float]  # per-channel offset left after matching (0-255 levels)
    flicker: float  # per-frame colour noise (levels) and alignment jitter (pixels)
    feather: float  # mask blur sigma as a fraction of face width
    mask_scale: tuple[float, float]  # ellipse semi-axes as fractions of the face's width and height


@dataclass(frozen=True)
class BlendStyle:
    channel_gains: tuple[float, float, float]  # recolouring of the blended copy
    brightness: float  # offset in levels
    blur_sigma: float  # >0 blur, <0 sharpen amount
    scale: float  # the copy is rescaled about the face centre
    shift: tuple[float, float]  # and shifted, in fractions of the face width
    opacity: float  # blend ratio at the mask's centre
    feather: float
    mask_scale: tuple[float, float]
    mask_offset: tuple[float, float]  # ellipse centre offset, fractions of face width and height
    flicker: float


def swap_style(rng: np.random.Generator, strength: float = 1.0, clean: bool = False) -> SwapStyle:
    """Draw a face-swap style. ``clean`` gives Celeb-DF-like swaps: better colour, softer masks.

    ``strength`` scales the colour error, flicker and the generator's loss of resolution. The
    colour error is mostly a brightness step (skin stays skin-coloured, and the step survives
    greyscale), with a smaller per-channel part.
    """
    scale = 0.5 if clean else 1.0
    step = rng.choice([-1.0, 1.0]) * rng.uniform(6, 18) * scale * strength
    error = step + rng.normal(0.0, 5.0 * scale * strength, size=3)
    mismatch = (rng.uniform(0.05, 0.2) if clean else rng.uniform(0.2, 0.5)) * strength
    width = (rng.uniform(56, 90) if clean else rng.uniform(32, 56)) / max(strength, 0.1)
    return SwapStyle(
        generator_width=float(width),
        colour_match=float(np.clip(1 - mismatch, 0.0, 1.0)),
        colour_error=tuple(float(e) for e in error),
        flicker=float(rng.uniform(0.5, 1.5) * strength),
        feather=float(rng.uniform(0.07, 0.11) if clean else rng.uniform(0.03, 0.07)),
        mask_scale=(float(rng.uniform(0.38, 0.46)), float(rng.uniform(0.44, 0.52))),
    )


def blend_style(rng: np.random.Generator, strength: float = 1.0) -> BlendStyle:
    """Draw a self-blending style (after self-blended images; ranges scaled by ``strength``).

    The copy is mostly brighter or darker (a step at the boundary that survives greyscale) and
    slightly recoloured; blended at partial opacity, its rescaled, shifted features show as
    ghost edges beside the originals'.
    """
    luminance = 1 + rng.choice([-1.0, 1.0]) * rng.uniform(0.08, 0.2) * strength
    gains = luminance * (1 + rng.uniform(-0.04, 0.04, size=3) * strength)
    blur = rng.uniform(1.2, 2.2) if rng.random() < 0.65 else -rng.uniform(0.8, 1.5)
    return BlendStyle(
        channel_gains=tuple(float(g) for g in gains),
        brightness=float(rng.uniform(-8, 8) * strength),
        blur_sigma=float(blur * min(strength, 1.5)),
        scale=float(1 + rng.choice([-1, 1]) * rng.uniform(0.04, 0.09) * strength),
        shift=tuple(float(s) for s in rng.uniform(-0.05, 0.05, size=2) * strength),
        opacity=float(rng.uniform(0.5, 1.0)),
        feather=float(rng.uniform(0.03, 0.07)),
        mask_scale=(float(rng.uniform(0.38, 0.48)), float(rng.uniform(0.44, 0.54))),
        mask_offset=(float(rng.uniform(-0.04, 0.04)), float(rng.uniform(0.0, 0.08))),
        flicker=float(rng.uniform(0.3, 1.0)),
    )


def mask_region(face: np.ndarray, scale: tuple[float, float], feather: float, offset: tuple[float, float],
                frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixel rectangle (x0, y0, x1, y1) holding all of a face mask's support, clipped to the frame."""
    cx, cy, width, height, _ = face
    radius = (max(scale) + max(abs(offset[0]), abs(offset[1]))) * max(width, height) + 4 * max(0.5, feather * width) + 3
    frame_width, frame_height = frame_size
    x0, y0 = max(0, int(np.floor(cx - radius))), max(0, int(np.floor(cy - radius)))
    x1, y1 = min(frame_width, int(np.ceil(cx + radius))), min(frame_height, int(np.ceil(cy + radius)))
    return x0, y0, x1, y1


def face_mask(
    shape: tuple[int, int],
    face: np.ndarray,
    scale: tuple[float, float],
    feather: float,
    offset: tuple[float, float] = (0.0, 0.04),
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Feathered ellipse over a face given as (centre x, centre y, width, height, angle).

    ``shape`` and ``origin`` (its top-left corner in the frame) let it be drawn on a region of
    the frame only. Its support is bounded (the blur reaches 4 sigma): see :func:`mask_region`.
    """
    cx, cy, width, height, angle = face
    theta = np.radians(angle)
    dx, dy = offset[0] * width, offset[1] * height
    centre = (
        float(cx + dx * np.cos(theta) - dy * np.sin(theta) - origin[0]),
        float(cy + dx * np.sin(theta) + dy * np.cos(theta) - origin[1]),
    )
    mask = np.zeros(shape, dtype=np.float32)
    axes = (float(2 * scale[0] * width), float(2 * scale[1] * height))
    cv2.ellipse(mask, (centre, axes, float(angle)), 1.0, -1, lineType=cv2.LINE_AA)
    return cv2.GaussianBlur(mask, (0, 0), max(0.5, feather * width))


def _region_stats(image: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pixels = image[region]
    return pixels.mean(axis=0), pixels.std(axis=0) + 1e-3


def _blend_into(frame: np.ndarray, patch: np.ndarray, mask: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """A copy of ``frame`` with ``patch`` blended in through ``mask`` inside ``rect``."""
    x0, y0, x1, y1 = rect
    out = frame.copy()
    original = frame[y0:y1, x0:x1].astype(np.float32)
    alpha = mask[:, :, None]
    out[y0:y1, x0:x1] = np.clip(alpha * patch + (1 - alpha) * original + 0.5, 0, 255).astype(np.uint8)
    return out


def face_swap(video: RenderedVideo, donor: FacePhoto, style: SwapStyle, rng: np.random.Generator) -> list[np.ndarray]:
    """Frames of ``video`` with ``donor``'s face swapped in (see the module docstring)."""
    # A generator trained on colour video outputs colour even from a monochrome donor's identity.
    colour_match = max(style.colour_match, 0.9) if is_monochrome(donor.image) else style.colour_match
    # The "generator" renders the donor at a low resolution; upsampling into the frame blurs it.
    shrink = min(1.0, style.generator_width / donor.face_width)
    small = cv2.resize(donor.image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA).astype(np.float32)
    donor_points = donor.landmarks * shrink
    offset = (0.0, 0.04)
    frames = []
    for frame, points, face in zip(video.frames, video.landmarks, video.faces):
        rect = mask_region(face, style.mask_scale, style.feather, offset, video.size)
        x0, y0, x1, y1 = rect
        target = points + rng.normal(0.0, 0.3 * style.flicker, size=points.shape)
        matrix, _ = cv2.estimateAffinePartial2D(donor_points, target, method=cv2.LMEDS)
        if matrix is None:  # degenerate landmarks cannot happen with the demo's faces; be safe anyway
            matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        matrix[:, 2] -= (x0, y0)
        warped = cv2.warpAffine(small, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        mask = face_mask((y1 - y0, x1 - x0), face, style.mask_scale, style.feather, offset, (x0, y0))
        original = frame[y0:y1, x0:x1].astype(np.float32)
        region = mask > 0.5
        target_mean, target_std = _region_stats(original, region)
        donor_mean, donor_std = _region_stats(warped, region)
        matched = target_mean + (warped - donor_mean) * np.clip(target_std / donor_std, 0.5, 2.0)
        colour = warped + colour_match * (matched - warped)
        colour += np.array(style.colour_error, dtype=np.float32) + rng.normal(0.0, style.flicker, size=3).astype(np.float32)
        frames.append(_blend_into(frame, colour, mask, rect))
    return frames


def self_blend(video: RenderedVideo, style: BlendStyle, rng: np.random.Generator) -> list[np.ndarray]:
    """Frames of ``video`` with a recoloured, rescaled copy of the face blended into itself."""
    width, height = video.size
    frames = []
    for frame, face in zip(video.frames, video.faces):
        rect = mask_region(face, style.mask_scale, style.feather, style.mask_offset, video.size)
        x0, y0, x1, y1 = rect
        # Work on a padded window so blur and warp see real pixels beyond the mask's region.
        pad = int(np.ceil(4 * abs(style.blur_sigma) + np.abs(style.shift).max() * face[2] + abs(style.scale - 1) * face[2] + 4))
        px0, py0, px1, py1 = max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad)
        source = frame[py0:py1, px0:px1].astype(np.float32) * np.array(style.channel_gains, dtype=np.float32)
        source += style.brightness + rng.normal(0.0, style.flicker, size=3).astype(np.float32)
        if style.blur_sigma > 0:
            source = cv2.GaussianBlur(source, (0, 0), style.blur_sigma)
        else:  # unsharp mask
            source = cv2.addWeighted(source, 1 - style.blur_sigma, cv2.GaussianBlur(source, (0, 0), 1.5), style.blur_sigma, 0)
        matrix = cv2.getRotationMatrix2D((float(face[0] - px0), float(face[1] - py0)), 0.0, style.scale)
        matrix[:, 2] += np.array(style.shift) * face[2] - (x0 - px0, y0 - py0)
        source = cv2.warpAffine(source, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        mask = style.opacity * face_mask((y1 - y0, x1 - x0), face, style.mask_scale, style.feather, style.mask_offset, (x0, y0))
        frames.append(_blend_into(frame, source, mask, rect))
    return frames
