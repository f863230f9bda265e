"""Model input: letterbox to a square, ImageNet normalisation (thesis 2.3).

One implementation serves training, validation, prediction and the scanner, so the pixels a
model sees at test time are prepared exactly as in training:

1. :func:`letterbox` scales the longest side to ``size`` (aspect ratio kept) and pads the rest
   with zeros, **centred** (the face stays in the middle of the square, as albumentations'
   ``LongestMaxSize`` + ``PadIfNeeded`` would place it). Augmentations then run on this uint8
   image (thesis Fig. 2.12 caption: "resized ... and padded with 0 value before an augmentation
   was applied").
2. :func:`to_tensor` turns one image into a normalised CHW float tensor.
   :func:`normalize_batch` does the same for a whole batch of uint8 HWC images already on the
   training device: the data loader ships uint8 (four times fewer bytes than float32 through
   pinned memory) and the GPU normalises; the permuted HWC batch is already in
   ``channels_last`` layout, so no copy is spent on the memory format either.

torch is imported inside the functions that use it: the report's figures and ``facesleuth
faces`` import this module for :func:`letterbox` and :func:`decode_jpeg` alone, and torch takes
seconds to import.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Written into run.yaml so a run folder says how its inputs were made.
PREPROCESSING = {
    "resize": "letterbox: longest side to input_size, aspect ratio kept (bilinear; area below half size)",
    "padding": "zeros, centred",
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
}


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Scale ``image`` (H, W, 3) uint8 so its longest side is ``size``; zero-pad to (size, size, 3), centred.

    Bilinear interpolation, except area interpolation when shrinking by more than half (large
    DFDC crops), where bilinear would alias: area is several times slower (benchmarks/README.md,
    train_throughput.py), and the letterbox runs for every face of every epoch.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"letterbox expects an (H, W, 3) image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"letterbox expects a uint8 image, got {image.dtype}")
    if size < 1:
        raise ValueError(f"letterbox size must be positive, got {size}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"letterbox got an empty image of shape {image.shape}")
    scale = size / max(height, width)
    new_w = min(size, max(1, round(width * scale)))
    new_h = min(size, max(1, round(height * scale)))
    if (new_h, new_w) != (height, width):
        interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
        image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    if new_h == size and new_w == size:
        return np.ascontiguousarray(image)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    top = (size - new_h) // 2
    left = (size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = image
    return out


@functools.lru_cache(maxsize=16)
def _mean_std(device: "torch.device", dtype: "torch.dtype") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Cached per device: building them anew each step would be a blocking host-to-GPU copy."""
    import torch  # imported on use: see the module docstring

    # Scaled to 0..255 so the uint8 input needs one subtraction and one division only.
    mean = torch.tensor(IMAGENET_MEAN, device=device, dtype=dtype).mul_(255.0).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device, dtype=dtype).mul_(255.0).view(1, 3, 1, 1)
    return mean, std


def normalize_batch(batch: "torch.Tensor", channels_last: bool = False) -> "torch.Tensor":
    """uint8 (N, H, W, 3) -> normalised float32 (N, 3, H, W), on ``batch``'s device.

    With ``channels_last`` the result keeps the NHWC memory layout the permute gives for free;
    otherwise it is made contiguous NCHW.
    """
    import torch  # imported on use: see the module docstring

    if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"normalize_batch expects uint8 (N, H, W, 3), got {tuple(batch.shape)} {batch.dtype}")
    mean, std = _mean_std(batch.device, torch.float32)
    images = batch.permute(0, 3, 1, 2)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    images = images.to(dtype=torch.float32, memory_format=memory_format)
    return images.sub_(mean).div_(std)


def to_tensor(image: np.ndarray) -> "torch.Tensor":
    """Normalised float32 (3, H, W) tensor of one letterboxed uint8 (H, W, 3) RGB image."""
    import torch  # imported on use: see the module docstring

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"to_tensor expects a uint8 (H, W, 3) image, got {image.shape} {image.dtype}")
    return normalize_batch(torch.from_numpy(np.ascontiguousarray(image))[None])[0]


def decode_jpeg(data: bytes | np.ndarray) -> np.ndarray:
    """JPEG (or PNG) bytes -> RGB uint8 (H, W, 3). Raises ValueError on undecodable data."""
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise ValueError(f"could not decode an image from {buffer.size} bytes")
    return image


def prepare(image: np.ndarray, size: int) -> "torch.Tensor":
    """RGB uint8 image of any size -> model input (3, size, size): letterbox then normalise."""
    return to_tensor(letterbox(image, size))


# ---------------------------------------------------------------------------- published detectors
# An imported detector (facesleuth.published) takes its inputs as its authors prepared them,
# described by its run's ``preprocessing`` dict (docs/weights.md); a trained run's dict is the
# descriptive PREPROCESSING above and means letterbox + ImageNet normalisation.


def is_published_preprocessing(preprocessing: object) -> bool:
    """Whether a run's ``preprocessing`` is a published detector's (it names its ``output``)."""
    return isinstance(preprocessing, dict) and "output" in preprocessing and "input_size" in preprocessing


def recrop(crop: np.ndarray, face_scale: float, margin: int) -> np.ndarray:
    """The square of side ``face_scale`` x the face box's longer side, centred on the box, from a
    pipeline crop (the box grown by ``margin`` px on every side, clipped to the frame).

    The box is the crop less the margin; what the square needs beyond the crop (a face near the
    frame's edge, or a scale above the margin's) is zero-padded.
    """
    height, width = crop.shape[:2]
    box_w, box_h = max(1, width - 2 * margin), max(1, height - 2 * margin)
    side = max(1, round(face_scale * max(box_w, box_h)))
    cx, cy = width / 2, height / 2
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    out = np.zeros((side, side, 3), dtype=crop.dtype)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(width, x0 + side), min(height, y0 + side)
    out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = crop[sy0:sy1, sx0:sx1]
    return out


def stretch(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` resized to (size, size), aspect ratio ignored (area interpolation when shrinking by more than half)."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return np.ascontiguousarray(image)
    interpolation = cv2.INTER_AREA if size < 0.5 * min(height, width) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def published_geometry(crop: np.ndarray, preprocessing: dict, margin: int) -> np.ndarray:
    """A face crop (RGB uint8) cut and resized as a published detector's authors did: uint8 (S, S, 3)."""
    from facesleuth.published import RESIZES, applied_resize

    size = int(preprocessing["input_size"])
    if preprocessing.get("face_scale") is not None:
        crop = recrop(crop, float(preprocessing["face_scale"]), margin)
    # a resize the crops cannot reproduce (landmark alignment) is approximated, as run.yaml says
    resize = applied_resize(preprocessing["resize"])
    if resize == "stretch":
        return stretch(crop, size)
    if resize == "isotropic_pad":
        return letterbox(crop, size)
    raise ValueError(f"unknown resize {preprocessing['resize']!r} ({', '.join(RESIZES)})")


def published_tensor(batch: "torch.Tensor", preprocessing: dict) -> "torch.Tensor":
    """uint8 (N, S, S, 3) RGB -> the float (N, 3, S, S) a published network takes: colour order,
    value scale, then mean and std."""
    import torch  # imported on use: see the module docstring

    images = batch.permute(0, 3, 1, 2).to(torch.float32)
    if preprocessing["colour_order"] == "BGR":
        images = images.flip(1)
    images = images * float(preprocessing["value_scale"])
    if preprocessing.get("mean") is not None:
        images = images - torch.tensor(preprocessing["mean"], dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    if preprocessing.get("std") is not None:
        images = images / torch.tensor(preprocessing["std"], dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return images.contiguous()


def prepare_faces(crops: "list[np.ndarray]", run_info: dict, device: "torch.device | str" = "cpu",
                  margin: int | None = None) -> "torch.Tensor":
    """RGB uint8 face crops -> the model input of the run ``run_info`` (its run.yaml settings).

    A trained run: letterbox to its input size and ImageNet normalisation (channels_last). An
    imported detector: its authors' preprocessing. ``margin``: the pixels the crops were grown
    by around the detector's box (the extraction's ``detection.margin``, its default when None),
    for ``face_scale``.
    """
    import torch  # imported on use: see the module docstring

    preprocessing = run_info.get("preprocessing")
    if is_published_preprocessing(preprocessing):
        if margin is None:
            from facesleuth.extract.detect import DETECTION_DEFAULTS

            margin = int(DETECTION_DEFAULTS["margin"])
        batch = np.stack([published_geometry(crop, preprocessing, margin) for crop in crops])
        return published_tensor(torch.from_numpy(batch).to(device), preprocessing)
    size = int(run_info["input_size"])
    batch = np.stack([letterbox(crop, size) for crop in crops])
    return normalize_batch(torch.from_numpy(batch).to(device), channels_last=True)
