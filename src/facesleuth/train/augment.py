"""The four augmentation setups of the thesis (section 2.3, Table 2.2), with albumentations 2.x.

- ``none``: nothing (letterbox and normalisation only).
- ``default``: Table 2.2 in its order: ImageCompression, GaussNoise, GaussianBlur or Sharpen
  (one of), HorizontalFlip, RandomBrightnessContrast, ToGray, ShiftScaleRotate (albumentations
  2.x spells it ``Affine``; ``ShiftScaleRotate`` is a deprecated alias of it).
- ``coarse``: default + CoarseDropout, 2 holes of 64x64 px at input 224 (scaled with the input).
- ``grid``: default + GridDropout, a 5x5 pattern whose cell size follows the input size.

The chain runs on the letterboxed uint8 image (thesis Fig. 2.12 caption), so geometric
transforms fill with zeros like the padding. Probabilities come from the config's
``augmentations`` section; anything it leaves out takes the schema's default, so the schema
stays the one place defaults are written.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

from facesleuth import registry
from facesleuth.config import section_defaults

if TYPE_CHECKING:  # pragma: no cover
    import albumentations as A

#: The setups' names, in the registry's order (:data:`facesleuth.registry.AUGMENTATION_SETUPS`).
SETUPS: tuple[str, ...] = registry.setup_names()

#: Where the thesis gives no parameter, the albumentations 1.x defaults it used (2020).
#: GaussNoise var_limit (10, 50) in 1.x, i.e. a std of sqrt(10)..sqrt(50) on 0..255.
GAUSS_NOISE_STD_RANGE = (math.sqrt(10.0) / 255.0, math.sqrt(50.0) / 255.0)
#: ShiftScaleRotate 1.x defaults: shift 6.25 %, scale +-10 %, rotate +-45 degrees.
SHIFT_LIMIT = 0.0625
SCALE_LIMIT = 0.1
ROTATE_LIMIT = 45.0
#: The thesis sizes CoarseDropout holes at 64 px for a 224 px input.
REFERENCE_INPUT_SIZE = 224


@functools.lru_cache(maxsize=1)
def augmentation_defaults() -> dict[str, Any]:
    """The schema's defaults of the ``augmentations`` section (the package ships the schema)."""
    return section_defaults("augmentations")


def _resolve(params: dict[str, Any] | None) -> dict[str, Any]:
    defaults = augmentation_defaults()
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"augmentations: unknown keys {unknown} (known: {sorted(defaults)})")
    resolved = {**defaults, **params}
    needed = [
        "compression_p", "compression_quality", "gauss_noise_p", "blur_sharpen_p", "hflip_p",
        "brightness_contrast_p", "to_gray_p", "shift_scale_rotate_p", "coarse_dropout_p",
        "coarse_dropout_holes", "coarse_dropout_size", "grid_dropout_p", "grid_dropout_holes",
    ]
    missing = [key for key in needed if key not in resolved]
    if missing:
        raise ValueError(f"augmentations: missing keys {missing}; pass the validated config's augmentations section")
    return resolved


def default_chain(p: dict[str, Any]) -> list["A.BasicTransform"]:
    """Table 2.2, in its order."""
    import albumentations as A
    import cv2

    low, high = p["compression_quality"]
    return [
        A.ImageCompression(quality_range=(int(low), int(high)), p=p["compression_p"]),
        A.GaussNoise(std_range=GAUSS_NOISE_STD_RANGE, p=p["gauss_noise_p"]),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 7), p=1.0), A.Sharpen(p=1.0)], p=p["blur_sharpen_p"]),
        A.HorizontalFlip(p=p["hflip_p"]),
        A.RandomBrightnessContrast(p=p["brightness_contrast_p"]),
        A.ToGray(p=p["to_gray_p"]),
        A.Affine(
            translate_percent=(-SHIFT_LIMIT, SHIFT_LIMIT),
            scale=(1.0 - SCALE_LIMIT, 1.0 + SCALE_LIMIT),
            rotate=(-ROTATE_LIMIT, ROTATE_LIMIT),
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            p=p["shift_scale_rotate_p"],
        ),
    ]


def coarse_dropout(p: dict[str, Any], input_size: int) -> "A.BasicTransform":
    """Two (configurable) square holes, 64 px at 224 px input, scaled with ``input_size``; may overlap."""
    import albumentations as A

    side = max(1, round(p["coarse_dropout_size"] * input_size / REFERENCE_INPUT_SIZE))
    holes = int(p["coarse_dropout_holes"])
    return A.CoarseDropout(
        num_holes_range=(holes, holes),
        hole_height_range=(side, side),
        hole_width_range=(side, side),
        fill=0,
        p=p["coarse_dropout_p"],
    )


def grid_dropout(p: dict[str, Any], input_size: int) -> "A.BasicTransform":
    """An n x n grid (thesis 5x5) over the input; each cell drops half its side (GridMask ratio 0.5)."""
    import albumentations as A

    holes = int(p["grid_dropout_holes"])
    return A.GridDropout(ratio=0.5, holes_number_xy=(holes, holes), random_offset=True, fill=0, p=p["grid_dropout_p"])


# The setups' chains, named by their registry entries: (params, input_size) -> transforms.


def no_chain(p: dict[str, Any], input_size: int) -> None:
    return None


def default_setup_chain(p: dict[str, Any], input_size: int) -> list:
    return default_chain(p)


def coarse_chain(p: dict[str, Any], input_size: int) -> list:
    return default_chain(p) + [coarse_dropout(p, input_size)]


def grid_chain(p: dict[str, Any], input_size: int) -> list:
    return default_chain(p) + [grid_dropout(p, input_size)]


def build_augmentation(
    setup: str, input_size: int, params: dict[str, Any] | None = None, seed: int | None = None
) -> "A.Compose | None":
    """The albumentations pipeline of ``setup`` for letterboxed ``input_size`` images (None for ``none``).

    ``setup`` is a name of :data:`facesleuth.registry.AUGMENTATION_SETUPS`, whose entry names the chain.

    ``params`` is the config's ``augmentations`` section (probabilities; missing keys take the
    schema's defaults). ``seed`` seeds the pipeline's own random generators (albumentations 2.x
    does not draw from numpy's global state), for reproducible training.
    """
    entry = registry.AUGMENTATION_SETUPS.get(setup)
    if entry is None:
        raise ValueError(f"unknown augmentation setup {setup!r}; known setups: {', '.join(registry.setup_names())}")
    if not entry.augments:
        return None
    transforms = registry.resolve(entry.chain)(_resolve(params), input_size)
    import albumentations as A

    return A.Compose(transforms, seed=seed)
