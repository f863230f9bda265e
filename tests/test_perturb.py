"""Perturbations of video frames (robustness suite and demo augmenters), on real sample frames."""

from __future__ import annotations

import numpy as np
import pytest

from facesleuth import registry
from facesleuth.extract import perturb
from facesleuth.demo.rendering import write_video
from facesleuth.extract.video import probe, read_frames

needs_h264 = pytest.mark.skipif(not perturb.h264_available(), reason="PyAV with libx264 is not installed")


def perturbed_frames(frames, fps, family, value, rng):
    stream, new_fps = perturb.perturb_stream(frames, fps, family, value, rng)
    return list(stream), new_fps


@pytest.fixture(scope="module")
def frames(samples):
    """Eight consecutive 640x480 frames of a real FF++ video."""
    return list(read_frames(samples / "ffpp/original_sequences/youtube/c23/videos/519.mp4", range(8)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    import cv2

    return cv2.PSNR(a, b)  # an implementation independent of facesleuth's


@pytest.mark.parametrize("family", list(perturb.FAMILIES))
def test_severity_zero_is_the_identity(frames, family):
    if not perturb.FAMILIES[family].needs():
        pytest.skip(f"{family} cannot run here")
    identity = perturb.FAMILIES[family].identity
    out, fps = perturbed_frames(frames, 25.0, family, identity, np.random.default_rng(0))
    assert fps == 25.0 and len(out) == len(frames)
    assert all(np.array_equal(a, b) for a, b in zip(out, frames))
    assert perturb.FAMILIES[family].severity(identity) == 0


def test_lower_jpeg_quality_loses_more(frames):
    scores = [np.mean([psnr(f, g) for f, g in zip(frames, perturb.jpeg(frames, q))]) for q in (90, 70, 50)]
    assert scores[0] > scores[1] > scores[2] > 25, scores


def test_downscaling_keeps_the_size_and_loses_more_with_the_factor(frames):
    half, quarter = perturb.downscale_frame(frames[0], 2), perturb.downscale_frame(frames[0], 4)
    assert half.shape == quarter.shape == frames[0].shape
    assert psnr(frames[0], half) > psnr(frames[0], quarter)


def test_blur_matches_scipys_gaussian_filter(frames):
    from scipy.ndimage import gaussian_filter

    frame = frames[0]
    mine = perturb.blur_frame(frame, 2.0).astype(np.float64)
    reference = gaussian_filter(frame.astype(np.float64), sigma=(2.0, 2.0, 0), mode="mirror", truncate=4.0)
    inner = (slice(10, -10), slice(10, -10))  # border handling differs (reflect-101 vs mirror)
    assert np.abs(mine[inner] - reference[inner]).max() <= 1.5


def test_noise_has_the_asked_spread():
    flat = [np.full((200, 200, 3), 128, np.uint8)] * 3
    noisy = perturb.noise(flat, 10.0, np.random.default_rng(0))
    spread = np.std(np.stack(noisy).astype(np.float64) - 128)
    assert spread == pytest.approx(10.0, rel=0.02)


def test_framerate_halving_keeps_every_second_frame(frames):
    out, fps = perturbed_frames(frames, 25.0, "framerate", 2, np.random.default_rng(0))
    assert fps == 12.5 and len(out) == 4
    assert all(np.array_equal(a, frames[i]) for a, i in zip(out, (0, 2, 4, 6)))


def test_keep_evenly_spreads_the_kept_frames():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(10)]
    kept, fps = perturb.keep_evenly(frames, 30.0, 4)
    assert [int(f[0, 0, 0]) for f in kept] == [0, 3, 6, 9] and fps == 12.0


def test_resize_gives_even_sides():
    small = perturb.resize([np.zeros((101, 203, 3), np.uint8)], 0.7)[0]
    assert small.shape[0] % 2 == 0 and small.shape[1] % 2 == 0
    assert small.shape[:2] == (round(101 * 0.7 / 2) * 2, round(203 * 0.7 / 2) * 2)


@needs_h264
@pytest.mark.parametrize("crf", [23, 35])
def test_h264_reencoding_keeps_frame_count_and_size(frames, crf):
    odd = [f[:477, :637] for f in frames]  # odd sides: padded for yuv420p, cropped back
    for video in (frames, odd):
        out = perturb.h264(video, 25.0, crf)
        assert len(out) == len(video)
        assert all(a.shape == b.shape and a.dtype == np.uint8 for a, b in zip(out, video))
        assert 25 < np.mean([psnr(a, b) for a, b in zip(out, video)]) < 60


@needs_h264
def test_higher_crf_loses_more(frames):
    loss = {crf: np.mean([psnr(a, b) for a, b in zip(perturb.h264(frames, 25.0, crf), frames)]) for crf in (18, 40)}
    assert loss[18] > loss[40] + 3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["blur_0", "jpeg_50", "framerate_2", "h264_35"])
def test_perturbed_videos_are_written_losslessly(tmp_path, frames, name):
    family, value = registry.parse_perturbation(name)
    if not perturb.FAMILIES[family].needs():
        pytest.skip(f"{family} cannot run here")
    source = write_video(frames, tmp_path / "source.mp4", 25.0)
    decoded = list(read_frames(source, range(len(frames))))
    target = tmp_path / f"{name}{perturb.LOSSLESS_SUFFIX}"
    result = perturb.perturb_video(source, target, family, value, seed=3)
    expected, fps = perturbed_frames(decoded, 25.0, family, value, np.random.default_rng(3))
    info = probe(target)
    assert (info.frames, info.width, info.height) == (len(expected), 640, 480) == (result["frames_out"], 640, 480)
    assert info.fps == pytest.approx(fps) and result["frames_in"] == len(frames)
    back = read_frames(target, range(info.frames))
    assert all(np.array_equal(a, b) for a, b in zip(back, expected))  # the file adds no loss
    assert not list(tmp_path.glob(".*tmp*"))


def test_names_round_trip_and_unknown_families_fail():
    assert registry.perturbation_name("jpeg", 70.0) == "jpeg_70"
    assert registry.perturbation_name("blur", 1.5) == "blur_1.5"
    assert registry.parse_perturbation("downscale_4") == ("downscale", 4.0)
    assert registry.perturbation_names({"jpeg": [90, 50], "h264": [23]}) == ["jpeg_90", "jpeg_50", "h264_23"]
    with pytest.raises(ValueError, match="unknown perturbation"):
        registry.parse_perturbation("sepia_3")
    with pytest.raises(ValueError, match="not a number"):
        registry.parse_perturbation("jpeg_high")
