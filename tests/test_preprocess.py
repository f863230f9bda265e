"""Letterbox and normalisation (thesis 2.3): aspect kept, zero padding, ImageNet mean/std."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facesleuth.train.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    decode_jpeg,
    letterbox,
    normalize_batch,
    prepare,
    to_tensor,
)


def _bright(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), 200, dtype=np.uint8)


@pytest.mark.parametrize("height,width", [(300, 150), (150, 300), (40, 80), (224, 224), (7, 500)])
def test_letterbox_shape_and_dtype(height, width):
    out = letterbox(_bright(height, width), 224)
    assert out.shape == (224, 224, 3)
    assert out.dtype == np.uint8


def test_portrait_is_padded_left_and_right_centred():
    out = letterbox(_bright(300, 150), 100)  # -> 100 x 50 content
    content_cols = np.flatnonzero(out.any(axis=(0, 2)))
    content_rows = np.flatnonzero(out.any(axis=(1, 2)))
    assert content_rows.min() == 0 and content_rows.max() == 99
    assert (content_cols.min(), content_cols.max()) == (25, 74)  # 50 wide, centred
    assert not out[:, :25].any() and not out[:, 75:].any()  # zero padding


def test_landscape_is_padded_top_and_bottom_centred():
    out = letterbox(_bright(60, 240), 120)  # -> 30 x 120 content
    rows = np.flatnonzero(out.any(axis=(1, 2)))
    assert (rows.min(), rows.max()) == (45, 74)
    assert not out[:45].any() and not out[75:].any()
    assert out[45:75].min() == 200


def test_aspect_ratio_is_kept():
    image = np.zeros((90, 30, 3), np.uint8)
    image[:, :, 0] = 255
    out = letterbox(image, 60)
    rows = np.flatnonzero(out[:, :, 0].any(axis=1))
    cols = np.flatnonzero(out[:, :, 0].any(axis=0))
    assert len(rows) == 60 and len(cols) == 20  # 3:1 stays 3:1


def test_upscales_small_faces():
    out = letterbox(_bright(20, 10), 64)
    assert np.flatnonzero(out.any(axis=(1, 2))).size == 64


def test_letterbox_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        letterbox(np.zeros((10, 10, 3), np.float32), 32)
    with pytest.raises(ValueError, match="H, W, 3"):
        letterbox(np.zeros((10, 10), np.uint8), 32)


def test_to_tensor_normalises_with_imagenet_stats():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 255, 0, 128
    tensor = to_tensor(image)
    assert tensor.shape == (3, 4, 4) and tensor.dtype == torch.float32
    expected = [(1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], -IMAGENET_MEAN[1] / IMAGENET_STD[1],
                (128 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]]
    assert torch.allclose(tensor[:, 0, 0], torch.tensor(expected), atol=1e-5)


def test_batch_normalisation_matches_to_tensor_in_both_layouts():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    single = torch.stack([to_tensor(img) for img in images])
    for channels_last in (False, True):
        batch = normalize_batch(torch.from_numpy(images), channels_last=channels_last)
        assert batch.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        assert torch.allclose(batch, single)


def test_decode_and_prepare_a_real_face(samples):
    import cv2

    image = cv2.imread(str(samples / "images" / "ex_original.png"))
    ok, jpeg = cv2.imencode(".jpg", image)
    rgb = decode_jpeg(jpeg.tobytes())
    assert rgb.shape == (480, 640, 3)
    assert np.abs(rgb.astype(int)[..., ::-1] - image.astype(int)).mean() < 4  # RGB order, JPEG loss only
    assert prepare(rgb, 96).shape == (3, 96, 96)
    with pytest.raises(ValueError, match="could not decode"):
        decode_jpeg(b"not a jpeg")
