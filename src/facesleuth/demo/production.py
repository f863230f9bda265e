"""Casting and filming: which faces, looks and donors each part of the demo uses, and the steps
from a photo to the frames written to disk.

The three datasets draw from disjoint pools where the sources allow (generalisation, as in the
thesis: train on DFDC, test on DFDC's test set and Celeb-DF): the 100 LFW faces are split into
separate donor pools, training backgrounds are textures the test sets never show, and every
video gets its own look (white balance, tone, mirror, camera path, light, focus, noise).
The three full-size photos are the only real faces available, so every dataset films them, each
time dressed differently.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from facesleuth.demo import augmenters, fakes
from facesleuth.demo.rendering import (
    RenderedVideo,
    dress_photo,
    random_look,
    render_video,
)
from facesleuth.demo.sources import (
    FacePhoto,
    load_lfw_faces,
    load_photos,
    load_textures,
)


@dataclass(frozen=True)
class Family:
    """The casting pool and ranges of one dataset."""

    name: str
    backgrounds: tuple[str, ...]
    lfw_donors: range
    face_fraction: tuple[float, float]  # face box width / frame's short side
    clean_swaps: bool  # Celeb-DF's improved synthesis: better colour match, softer blend
    strength: float = 1.0


TRAIN = Family("train", ("brick", "grass", "gravel", "coffee", "rocket"), range(50), (0.36, 0.5), False)
DFDC_TEST = Family("dfdc_test", ("hubble_deep_field", "text", "coins", "colorwheel"), range(50, 70), (0.36, 0.52), False)
CELEBDF = Family("celebdf", ("moon", "coins", "colorwheel", "hubble_deep_field"), range(70, 90), (0.38, 0.52), True)
DISTRACTOR_FACES = range(90, 100)

PORTRAIT_SHARE = 1 / 3  # DFDC mixes landscape and portrait videos


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent generator for one item, so each video depends only on the seed and its key."""
    words = [seed % 2**32] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) % 2**32 for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def photos() -> tuple[FacePhoto, ...]:
    return load_photos()


def frontal_photos() -> tuple[FacePhoto, ...]:
    return tuple(p for p in load_photos() if p.frontal)


def frame_size(settings: dict, rng: np.random.Generator) -> tuple[int, int]:
    """(width, height): the configured landscape size, or turned to portrait for about a third."""
    width, height = (int(v) for v in settings["size"])
    return (height, width) if rng.random() < PORTRAIT_SHARE else (width, height)


def film(photo: FacePhoto, family: Family, settings: dict, rng: np.random.Generator) -> RenderedVideo:
    """A real video of ``photo`` dressed in a new look of ``family``."""
    textures = load_textures()
    dressed = dress_photo(photo, random_look(rng, list(family.backgrounds)), textures, rng)
    return render_video(
        dressed, frame_size(settings, rng), int(settings["frames"]), float(settings["fps"]), rng, family.face_fraction
    )


def pick_method(target: FacePhoto, rng: np.random.Generator, preferred: str | None = None) -> str:
    """Face swaps need a frontal target; otherwise (or when not preferred) self-blending."""
    if not target.frontal:
        return fakes.SELF_BLEND
    if preferred is not None:
        return preferred
    return str(rng.choice(fakes.METHODS))


def pick_donor(target: FacePhoto, family: Family, rng: np.random.Generator) -> FacePhoto:
    """Another frontal photo (half the time) or an LFW face from the family's pool, in a new look."""
    others = [p for p in frontal_photos() if p.name != target.name]
    if others and rng.random() < 0.5:
        donor = others[int(rng.integers(len(others)))]
        return dress_photo(donor, random_look(rng, []), load_textures(), rng)
    lfw = load_lfw_faces()
    return lfw[int(rng.choice(family.lfw_donors))]


def manipulate(
    video: RenderedVideo,
    method: str,
    donor: FacePhoto | None,
    family: Family,
    rng: np.random.Generator,
    strength: float = 1.0,
) -> list[np.ndarray]:
    """Fake frames of ``video`` by ``method`` (frame for frame, same size).

    ``strength`` (the demo's ``artefact_strength``) scales the family's own artefact strength.
    """
    strength = strength * family.strength
    if method == fakes.SWAP:
        if donor is None:
            raise ValueError("a face swap needs a donor face")
        return fakes.face_swap(video, donor, fakes.swap_style(rng, strength, family.clean_swaps), rng)
    if method == fakes.SELF_BLEND:
        return fakes.self_blend(video, fakes.blend_style(rng, strength), rng)
    raise ValueError(f"unknown demo manipulation {method!r}; known: {', '.join(fakes.METHODS)}")


def overlays() -> dict:
    """What the distractors lay over test frames: textures and small LFW faces."""
    lfw = load_lfw_faces()
    return {"textures": list(load_textures().values()), "faces": [lfw[i] for i in DISTRACTOR_FACES]}


def perturb(
    frames: list[np.ndarray],
    fps: float,
    boxes: np.ndarray,
    augmenter_names: list[str],
    distractor_names: list[str],
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], float]:
    """Distractors first (drawn on the scene), then augmenters (they alter everything, overlays too)."""
    if distractor_names:
        frames = augmenters.apply_distractors(frames, boxes, distractor_names, rng, overlays())
    return augmenters.apply_augmenters(frames, fps, augmenter_names, rng)
