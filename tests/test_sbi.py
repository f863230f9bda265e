"""Self-blended images on a real face crop and its MTCNN landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from facesleuth.extract.detect import FaceDetector
from facesleuth.train.sbi import SelfBlender, SelfBlendSettings, blend, hull_mask, landmarks_array
from facesleuth.extract.video import read_image

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


# ---------------------------------------------------------------- the sbi setup's training set


@pytest.fixture(scope="module")
def split(samples, tmp_path_factory):
    from face_crops import write_split

    # train: 3 real and 3 fake videos of 4 faces each; every face has its landmarks
    return write_split(tmp_path_factory.mktemp("sbi") / "split.parquet", samples)


def test_real_only_pairs_each_real_with_its_blend(split):
    from facesleuth.train.data import SelfBlendedFaceDataset

    dataset = SelfBlendedFaceDataset.from_split(split, "train", 64, seed=3, real_only=True)
    reals = np.flatnonzero(dataset.face_labels == 0)
    assert len(reals) == 12 and len(dataset) == 24
    assert dataset.labels.tolist() == [0] * 12 + [1] * 12
    assert dataset.sources.tolist() == reals.tolist() * 2  # no split fake is used
    real, blended = dataset.load(0), dataset.load(12)
    assert real.shape == blended.shape == (64, 64, 3)
    assert not np.array_equal(real, blended)
    # the blend is the SelfBlender's on the decoded crop, seeded by (seed, epoch, index)
    crop = dataset.decode(int(reals[0]))
    expected = SelfBlender()(crop, dataset.landmarks[int(reals[0])], np.random.default_rng([3, 0, 12, 1])).image
    from facesleuth.train.preprocess import letterbox

    assert np.array_equal(blended, letterbox(expected, 64))
    assert np.array_equal(dataset.load(12), blended)  # same epoch, same blend
    dataset.set_epoch(1)
    assert not np.array_equal(dataset.load(12), blended)  # a new blend each epoch


def test_with_real_fakes_adds_the_blends_to_the_whole_split(split):
    from facesleuth.train.data import SelfBlendedFaceDataset

    dataset = SelfBlendedFaceDataset.from_split(split, "train", 64, real_only=False)
    assert len(dataset) == 24 + 12
    assert int((dataset.labels == 1).sum()) == 12 + 12


def test_faces_without_landmarks_cannot_be_blended(face):
    import pyarrow as pa

    from facesleuth.train.data import SelfBlendedFaceDataset
    from facesleuth.extract.detect import encode_jpeg

    crop, landmarks = face
    jpegs = pa.array([encode_jpeg(crop)] * 3, type=pa.binary())
    some = SelfBlendedFaceDataset(jpegs, [0, 0, 1], [landmarks.reshape(-1).tolist(), None, None], 64)
    assert len(some) == 3 and some.sources.tolist() == [0, 1, 0]  # only the first real is blended
    with pytest.raises(ValueError, match="extracted again"):
        SelfBlendedFaceDataset(jpegs, [0, 0, 1], [None, [np.nan] * 10, None], 64)


@pytest.mark.parametrize("real_only,images", [(True, 24), (False, 32)])
def test_an_sbi_run_trains_on_the_self_blended_set(split, tmp_path, real_only, images):
    """The registry's sbi entry reaches training: 12 reals + 12 blends (+ 12 split fakes,
    with batches of 8 the last incomplete one dropped)."""
    import torch

    from facesleuth.train.loop import train_run

    torch.set_num_threads(1)
    settings = {
        "model": "mobilenetv3_small_050", "setup": "sbi", "augmentations": {},
        "training": {
            "input_size": 64, "epochs": 1, "batch_size": 8, "precision": "fp32", "lr": 0.001, "dropout": 0.2,
            "pretrained": False, "weights": None, "num_workers": 0, "seed": 7, "device": "cpu",
            "channels_last": True, "max_steps_per_epoch": None, "gpus": 1, "sbi": {"real_only": real_only},
        },
    }
    summary = train_run(split, tmp_path, settings)
    assert summary["history"][0]["train_images"] == images
    assert summary["history"][0]["val_images"] == 16  # validation: the split's own val faces
