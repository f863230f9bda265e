"""Frame policies on every sample video: the frame that stands for a sampled index is checked
against OpenCV's sequential ``VideoCapture.read()`` (an independent decoder), pixel for pixel."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesleuth import registry
from facesleuth.config import section_defaults
from facesleuth.extract.video import (
    EXACT,
    EXACT_FRAMES,
    NEAREST_REFERENCE,
    DecodeReport,
    FramePolicy,
    _windows,
    evenly_spaced_indices,
    iter_sampled_batches,
    probe,
)

SAMPLE_VIDEOS = [
    "dfdc/dfdc_train_part_0/brtujopkby.mp4",
    "dfdc/dfdc_train_part_10/widuwuoiur.mp4",
    "dfdc/dfdc_train_part_10/yhffcuhhjy.mp4",
    "ffpp/original_sequences/youtube/c23/videos/004.mp4",
    "ffpp/original_sequences/youtube/c23/videos/519.mp4",
    "ffpp/original_sequences/youtube/c23/videos/634.mp4",
    "ffpp/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4",
    "ffpp/manipulated_sequences/FaceSwap/c23/videos/634_660.mp4",
    "ffpp/manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4",
    "multiface/street.mp4",
    "nonhuman/Megamind.avi",
]
# H.264 with B-frames (x264 defaults): some sampled frames are non-reference B-frames
WITH_B_FRAMES = [name for name in SAMPLE_VIDEOS if name.startswith(("dfdc/", "ffpp/"))]
# where exact reading (and offset 0) is checked too, and the decoding saved: one of each kind,
# to keep the test time down (each reads its video three more times)
EXACT_CHECKED = [SAMPLE_VIDEOS[0], SAMPLE_VIDEOS[6], "multiface/street.mp4", "nonhuman/Megamind.avi"]


def opencv_sequential(path, indices: set[int]) -> dict[int, np.ndarray]:
    """Frames ``indices`` (RGB) as OpenCV's sequential read numbers them: the i-th ``read()``."""
    capture = cv2.VideoCapture(str(path))
    frames, position = {}, 0
    try:
        while position <= max(indices):
            ok, frame = capture.read()
            if not ok:
                break
            if position in indices:
                frames[position] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            position += 1
    finally:
        capture.release()
    return frames


def sampled(path, targets, policy):
    report = DecodeReport()
    out = [(t, u, f) for ts, us, fs in iter_sampled_batches(path, targets, policy, report=report)
           for t, u, f in zip(ts, us, fs, strict=True)]
    return out, report


@pytest.mark.parametrize("name", SAMPLE_VIDEOS)
def test_frames_used_equal_opencv_sequential_frames_within_the_bound(samples, name):
    path = samples / name
    total = probe(path).frames
    # the train flow's 10 frames, and a run of targets closer together than the bound (windows split)
    targets = sorted(set(evenly_spaced_indices(total, 10)) | {40, 41, 43, 46, 50})
    nearest, nearest_report = sampled(path, targets, FramePolicy(NEAREST_REFERENCE, 2))
    reference = opencv_sequential(path, {u for _, u, _ in nearest} | set(targets))

    assert [t for t, _, _ in nearest] == targets  # nothing lost: a target without a near frame is decoded exactly
    used = [u for _, u, _ in nearest]
    assert used == sorted(set(used)), "each frame stands for one target only, in order"
    for target, index, frame in nearest:
        assert abs(index - target) <= 2, (target, index)
        assert np.array_equal(frame, reference[index]), f"{name}: frame used {index} (for {target}) is not that frame"
    if name in WITH_B_FRAMES:
        assert any(u != t for t, u, _ in nearest)  # some targets are non-reference B-frames
    if name in EXACT_CHECKED:
        exact, exact_report = sampled(path, targets, EXACT_FRAMES)
        zero, _ = sampled(path, targets, FramePolicy(NEAREST_REFERENCE, 0))  # every B-frame target read exactly
        for policy, frames in (("exact", exact), ("offset 0", zero)):
            assert [(t, u) for t, u, _ in frames] == [(t, t) for t in targets], policy
            for target, _, frame in frames:
                assert np.array_equal(frame, reference[target]), f"{name}: {policy} frame {target} differs"
        if name in WITH_B_FRAMES:
            assert nearest_report.frames_decoded < 0.75 * exact_report.frames_decoded, (nearest_report, exact_report)
    if name.endswith(".avi"):  # no timestamps to number skipped frames by: read exactly
        assert used == targets


def test_windows_split_close_targets_at_the_midpoint():
    # worked by hand: bound 2; 40|41 meet at 40.5 -> 40 is 40's; 41|43 at 42 -> 42 goes to 41 (the earlier);
    # 43|46 at 44.5 -> 44 is 43's, 45 is 46's; 46 and 50 at 48 -> 48 is 46's
    assert _windows([40, 41, 43, 46, 50], 2) == [(38, 40), (41, 42), (43, 44), (45, 48), (49, 52)]
    assert _windows([0, 10], 3) == [(0, 3), (7, 13)]
    assert _windows([5, 9], 0) == [(5, 5), (9, 9)]


def test_policy_names_and_defaults():
    assert set(registry.FRAME_POLICIES) == {EXACT, NEAREST_REFERENCE}
    with pytest.raises(ValueError, match="frame policy must be one of"):
        FramePolicy("nearest")
    with pytest.raises(ValueError, match="max_frame_offset"):
        FramePolicy(NEAREST_REFERENCE, -1)
    # the train flow's sampled frames are not fixed by the thesis (2.4.1: "up to 10 frames"); the
    # test flow detects on every frame (2.4.2), so it stays exact
    assert section_defaults("extraction", "train_flow")["frame_policy"] == NEAREST_REFERENCE
    assert section_defaults("extraction", "test_flow")["frame_policy"] == EXACT
    assert FramePolicy.from_settings({"frame_policy": "nearest_reference", "max_frame_offset": 1}) == \
        FramePolicy(NEAREST_REFERENCE, 1)
