"""Self-blended images on a real face crop and its MTCNN landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from facesleuth.detect import FaceDetector
from facesleuth.sbi import SelfBlender, SelfBlendSettings, blend, crop_landmarks, hull_mask, landmarks_array
from facesleuth.video import read_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SEEDS = range(8)


@pytest.fixture(scope="module")
def face(samples):
    """The FF++ frame's face, cropped as extraction crops it, with its landmarks in crop pixels."""
    frame = read_image(samples / "images/ex_original.png")
    detector = FaceDetector(min_face_size=40)
    found = detector.detect([frame])[0]
    crop, (x0, y0, _, _) = detector.crop(frame, found.boxes[0])
    return np.ascontiguousarray(crop), found.landmarks[0] - np.array([x0, y0], np.float32)


@pytest.mark.parametrize("seed", SEEDS)
def test_blend_changes_pixels_only_inside_its_mask(face, seed):
    crop, landmarks = face
    blended = SelfBlender()(crop, landmarks, np.random.default_rng(seed))
    assert blended.image.shape == crop.shape and blended.image.dtype == np.uint8
    assert blended.mask.shape == crop.shape[:2]
    assert 0.0 <= blended.mask.min() and blended.mask.max() <= 1.0
    outside = blended.mask == 0
    assert np.array_equal(blended.image[outside], crop[outside])
    changed = (blended.image != crop).any(axis=2)
    assert not (changed & outside).any()
    assert changed.sum() > 0.05 * changed.size, "a self-blended face differs from the real one"


@pytest.mark.parametrize("seed", SEEDS)
def test_mask_covers_the_face_and_not_the_background(face, seed):
    crop, landmarks = face
    height, width = crop.shape[:2]
    mask = SelfBlender()(crop, landmarks, np.random.default_rng(seed)).mask
    support = mask > 0
    assert 0.1 < support.mean() < 0.95
    # every landmark (MTCNN's, independent of the mask code) lies inside the mask
    for x, y in landmarks:
        assert mask[int(round(y)), int(round(x))] > 0
    # the crop's corners are background (30 px margin around the face box): never blended
    for y, x in ((0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1)):
        assert mask[y, x] == 0


def test_deterministic_under_a_seed(face):
    crop, landmarks = face
    blender = SelfBlender()
    first = blender(crop, landmarks, np.random.default_rng(7))
    again = blender(crop, landmarks, np.random.default_rng(7))
    other = blender(crop, landmarks, np.random.default_rng(8))
    assert np.array_equal(first.image, again.image) and np.array_equal(first.mask, again.mask)
    assert not np.array_equal(first.image, other.image)


def test_blend_is_the_masked_mix_rounded():
    target = np.full((2, 3, 3), 10, np.uint8)
    source = np.full((2, 3, 3), 200, np.uint8)
    mask = np.array([[0.0, 0.25, 1.0], [0.5, 0.75, 1e-9]], np.float32)
    out = blend(target, source, mask)[..., 0]
    # 0.25 * 200 + 0.75 * 10 = 57.5 -> 58; 0.5 -> 105; 0.75 -> 152.5 -> 153
    assert out.tolist() == [[10, 58, 200], [105, 153, 10]]


def test_hull_grows_with_the_expansion_and_holds_the_landmarks():
    points = np.array([[40, 40], [60, 40], [50, 52], [42, 62], [58, 62]], np.float64)
    tight = hull_mask((100, 100), points, 1.0)
    wide = hull_mask((100, 100), points, 2.0)
    assert tight.sum() < wide.sum() and (wide >= tight).all()
    assert all(tight[int(y), int(x)] for x, y in points)
    edge = hull_mask((100, 100), points + [45, 0], 3.0)  # pushed past the right border: clipped
    assert edge.shape == (100, 100) and edge[:, -1].any()


def test_landmark_helpers():
    flat = [30.0, 40.0, 50.0, 40.0, 40.0, 50.0, 32.0, 60.0, 48.0, 60.0]
    assert landmarks_array(flat).shape == (5, 2)
    assert landmarks_array(None) is None
    assert landmarks_array([np.nan] * 10) is None
    assert crop_landmarks(flat, 10.0, 20.0)[0].tolist() == [20.0, 20.0]


def test_bad_inputs_are_rejected(face):
    crop, landmarks = face
    with pytest.raises(ValueError, match="landmarks"):
        SelfBlender()(crop, landmarks[:4], np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        SelfBlender()(crop.astype(np.float32), landmarks, np.random.default_rng(0))


def test_settings_reach_the_mask(face):
    """A blend ratio of 0.5 only: the mask never exceeds one half."""
    crop, landmarks = face
    half = SelfBlender(SelfBlendSettings(blend_ratios=(0.5,)))(crop, landmarks, np.random.default_rng(0))
    assert 0.45 < half.mask.max() <= 0.5
