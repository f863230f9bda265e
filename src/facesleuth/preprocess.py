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
    DFDC crops), where bilinear would alias. Area is 6-10x slower than bilinear (340 against
    54 us for a 290 px crop to 224 px), and the letterbox runs for every face of every epoch.
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
