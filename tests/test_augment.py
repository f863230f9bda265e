"""The augmentation setups (the thesis's four of Table 2.2, and sbi) on a real face crop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from face_crops import face_crop

from facesleuth.train.augment import SETUPS, augmentation_defaults, build_augmentation
from facesleuth.train.preprocess import letterbox


@pytest.fixture(scope="module")
def face(samples):
    return letterbox(face_crop(samples), 96)


def test_setups_are_the_thesis_four_and_self_blending():
    assert SETUPS == ("none", "default", "coarse", "grid", "sbi")


def test_none_is_no_pipeline():
    assert build_augmentation("none", 224, {}) is None


@pytest.mark.parametrize("setup", ["default", "coarse", "grid"])
def test_each_setup_runs_on_a_real_face(face, setup):
    pipeline = build_augmentation(setup, 96, {}, seed=0)
    changed = 0
    for _ in range(8):
        out = pipeline(image=face)["image"]
        assert out.shape == face.shape and out.dtype == np.uint8
        changed += not np.array_equal(out, face)
    assert changed >= 4  # most draws change something


def test_default_chain_follows_table_2_2_order():
    names = [type(t).__name__ for t in build_augmentation("default", 224, {}).transforms]
    assert names == ["ImageCompression", "GaussNoise", "OneOf", "HorizontalFlip", "RandomBrightnessContrast",
                     "ToGray", "Affine"]
    inner = [type(t).__name__ for t in build_augmentation("default", 224, {}).transforms[2].transforms]
    assert inner == ["GaussianBlur", "Sharpen"]


def test_probabilities_come_from_params():
    pipeline = build_augmentation("grid", 224, {"to_gray_p": 0.3, "grid_dropout_p": 0.7})
    by_name = {type(t).__name__: t for t in pipeline.transforms}
    assert by_name["ToGray"].p == 0.3
    assert by_name["GridDropout"].p == 0.7
    assert by_name["ImageCompression"].p == augmentation_defaults()["compression_p"] == 0.5


def test_coarse_holes_scale_with_input_size(face):
    # Forced on, with everything else off, so the holes are the only change.
    off = {key: 0.0 for key, value in augmentation_defaults().items() if key.endswith("_p")}
    for size, side in ((224, 64), (112, 32)):
        pipeline = build_augmentation("coarse", size, {**off, "coarse_dropout_p": 1.0, "coarse_dropout_holes": 1}, seed=1)
        white = np.full((size, size, 3), 255, np.uint8)
        out = pipeline(image=white)["image"]
        assert (out == 0).all(axis=2).sum() == side * side


def test_grid_dropout_is_5x5(face):
    off = {key: 0.0 for key, value in augmentation_defaults().items() if key.endswith("_p")}
    pipeline = build_augmentation("grid", 100, {**off, "grid_dropout_p": 1.0}, seed=2)
    out = pipeline(image=np.full((100, 100, 3), 255, np.uint8))["image"]
    dropped = (out == 0).all(axis=2).astype(np.uint8)
    # 5 x 5 cells of 20 px, each losing a 10 x 10 square (ratio 0.5): a quarter of the area
    assert dropped.mean() == pytest.approx(0.25, abs=0.01)
    count, _, stats, _ = cv2.connectedComponentsWithStats(dropped)
    sizes = [tuple(s) for s in stats[1:, 2:4].tolist()]
    assert 23 <= count - 1 <= 25  # holes cut by the random offset may join across the border
    assert sizes.count((10, 10)) >= 20


def test_seeded_pipelines_repeat(face):
    a = build_augmentation("coarse", 96, {}, seed=5)
    b = build_augmentation("coarse", 96, {}, seed=5)
    for _ in range(4):
        assert np.array_equal(a(image=face)["image"], b(image=face)["image"])


def test_unknown_setup_names_the_known_ones():
    with pytest.raises(ValueError, match="none, default, coarse, grid"):
        build_augmentation("cutmix", 224, {})


def test_unknown_parameter_is_an_error():
    with pytest.raises(ValueError, match="blur_p"):
        build_augmentation("default", 224, {"blur_p": 0.1})
