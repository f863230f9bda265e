"""facesleuth.extract.mtcnn_fast against facenet-pytorch's own detect_face: same faces on real frames,
bit-identical resampling, batches, empty results, the inputs facenet accepts."""

from __future__ import annotations

import numpy as np
import pytest

from facesleuth.extract import mtcnn_fast
from facesleuth.extract.detect import FaceDetector, detection_size
from facesleuth.extract.tracking import iou
from facesleuth.extract.video import read_frames, read_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Detection runs at 960 px with MTCNN's smallest face raised for the 70 px filter, as
# FaceDetector does: (sample, frame indices, min_face_size at detection size).
SAMPLE_FRAMES = [
    ("images/multiface.jpg", None, 20),  # group photo, 8 faces (6 found at 960 px)
    ("multiface/street.mp4", [0, 60], 28),  # 1920x1080 -> 960x540, 1-4 faces, a batch of 2
    ("dfdc/dfdc_train_part_0/brtujopkby.mp4", [0], 28),  # portrait 1080x1920 -> 540x960
    ("ffpp/original_sequences/youtube/c23/videos/519.mp4", [0], 56),  # 640x480, one face
    ("nonhuman/Megamind.avi", [40], 56),  # animation: whatever fires must fire in both
]


@pytest.fixture(scope="module")
def mtcnn():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, select_largest=False, device="cpu")


def detection_batch(samples, path, indices) -> np.ndarray:
    """Frames of a sample at detection size (longest side 960), as FaceDetector prepares them."""
    import cv2

    if indices is None:
        frames = read_image(samples / path)[None]
    else:
        frames = read_frames(samples / path, indices)
    width, height = detection_size(frames.shape[2], frames.shape[1], 960)
    if (width, height) == (frames.shape[2], frames.shape[1]):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def assert_same_faces(reference, fast, label: str) -> tuple[float, float]:
    """Same face count per frame, boxes and probabilities within float rounding; returns the
    worst IoU deviation and probability difference."""
    worst_iou, worst_prob = 0.0, 0.0
    assert len(reference) == len(fast), label
    for frame, ((ref_boxes, ref_probs), (boxes, probs)) in enumerate(zip(reference, fast)):
        assert len(ref_boxes) == len(boxes), f"{label} frame {frame}: {len(ref_boxes)} faces vs {len(boxes)}"
        assert boxes.dtype == probs.dtype == np.float32 and boxes.shape == (len(probs), 4)
        for ref_box, box in zip(ref_boxes, boxes):
            worst_iou = max(worst_iou, 1.0 - iou(ref_box, box))
        if len(probs):
            worst_prob = max(worst_prob, float(np.abs(ref_probs - probs).max()))
    assert worst_iou < 1e-4 and worst_prob < 1e-4, f"{label}: IoU deviation {worst_iou:.2e}, prob {worst_prob:.2e}"
    return worst_iou, worst_prob


def test_same_faces_as_facenet_on_the_samples(samples, mtcnn):
    found = 0
    for path, indices, min_size in SAMPLE_FRAMES:
        batch = detection_batch(samples, path, indices)
        mtcnn.min_face_size = min_size
        reference = mtcnn_fast.detect(mtcnn, batch, "facenet")
        fast = mtcnn_fast.detect(mtcnn, batch, "fast")
        assert_same_faces(reference, fast, path)
        found += sum(len(boxes) for boxes, _ in fast)
    assert found >= 10  # the group photo's 6, the street's, the portrait's, 519's


def test_summed_area_table_crops_find_the_same_faces(samples, mtcnn):
    """The vectorised crops (the default: the pyramid's tables on the CPU) are identical to the
    per-box loop's."""
    import torch

    batch = detection_batch(samples, "images/multiface.jpg", None)
    mtcnn.min_face_size = 20
    with torch.no_grad():
        args = (mtcnn.min_face_size, mtcnn.pnet, mtcnn.rnet, mtcnn.onet, mtcnn.thresholds, mtcnn.factor, "cpu")
        loop, loop_points = mtcnn_fast.detect_face(batch, *args, crop_method="loop")
        table, table_points = mtcnn_fast.detect_face(batch, *args, crop_method="table")
    assert len(loop[0]) >= 6  # of the 8 faces, 6 are found at 960 px
    np.testing.assert_array_equal(loop[0], table[0])
    np.testing.assert_array_equal(loop_points[0], table_points[0])
    assert loop_points[0].shape == (len(loop[0]), 5, 2)  # landmarks, as facenet returns them


def test_pyramid_levels_are_bit_identical_to_interpolate():
    import torch
    from facenet_pytorch.models.utils.detect_face import imresample

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 77, 131, 3), dtype=np.uint8)
    # down, same, up, the smallest level (its shorter side >= 12 px); (1, 1) is not a level and
    # PyTorch computes it as a mean with other rounding.
    sizes = [(33, 57), (24, 41), (77, 131), (100, 150), (12, 13)]
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    levels = mtcnn_fast.FrameTables(frames).pyramid(sizes)
    for size, level in zip(sizes, levels):
        assert level.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(level, imresample(pixels, size)), size


def test_crops_are_bit_identical_to_facenets_per_box_resize():
    import torch
    from facenet_pytorch.models.utils.detect_face import imresample

    rng = np.random.default_rng(1)
    frames = torch.from_numpy(rng.integers(0, 256, (2, 60, 90, 3), dtype=np.uint8))
    pixels = frames.permute(0, 3, 1, 2)
    # (image, y0, y1, x0, x1): large, 1x1, smaller than the output (upsampled), the full frame, edges
    boxes = torch.tensor([[0, 5, 50, 10, 61], [1, 7, 8, 3, 4], [1, 40, 53, 70, 89], [0, 0, 60, 0, 90], [1, 59, 60, 0, 90]])
    image_inds, y0, y1, x0, x1 = boxes.T
    float_pixels = pixels.float()
    for size in (24, 48):
        expected = torch.cat([imresample(float_pixels[i : i + 1, :, a:b, c:d], (size, size)) for i, a, b, c, d in boxes.tolist()])
        by_loop = mtcnn_fast.crops_by_loop(pixels, image_inds, y0, y1, x0, x1, size, torch.float32)
        by_table = mtcnn_fast.SummedAreaTable(pixels, torch.float32).crops(image_inds, y0, y1, x0, x1, size)
        by_frame_tables = mtcnn_fast.FrameTables(frames.numpy()).crops(image_inds, y0, y1, x0, x1, size)
        for crops in (by_loop, by_table, by_frame_tables):
            assert crops.is_contiguous(memory_format=torch.channels_last)
            assert torch.equal(crops, expected)
        # A float frame takes the float64 table: the same to float rounding.
        from_float = mtcnn_fast.SummedAreaTable(float_pixels, torch.float32).crops(image_inds, y0, y1, x0, x1, size)
        assert torch.allclose(from_float, expected, atol=1e-3)
    empty = torch.zeros(0, dtype=torch.long)
    assert mtcnn_fast.crops_by_loop(pixels, empty, empty, empty, empty, empty, 24, torch.float32).shape == (0, 3, 24, 24)
    table = mtcnn_fast.SummedAreaTable(pixels, torch.float32)
    assert table.crops(empty, empty, empty, empty, empty, 24).shape == (0, 3, 24, 24)
    assert mtcnn_fast.FrameTables(frames.numpy()).crops(empty, empty, empty, empty, empty, 24).shape == (0, 3, 24, 24)


def test_candidates_with_empty_boxes_are_dropped_not_misaligned():
    """facenet keeps boxes whose clipped crop is empty and then fails on the shape mismatch."""
    import torch

    pixels = torch.zeros(1, 3, 40, 50, dtype=torch.uint8)
    boxes = torch.tensor([[5.0, 5.0, 25.0, 25.0, 0.9], [60.0, 10.0, 80.0, 30.0, 0.8], [10.0, 45.0, 30.0, 65.0, 0.7]])
    image_inds = torch.zeros(3, dtype=torch.long)

    def crop(*box_args):
        return mtcnn_fast.crops_by_loop(pixels, *box_args, dtype=torch.float32)

    inputs, valid = mtcnn_fast._network_inputs(crop, boxes, image_inds, 50, 40, 24)
    assert valid.tolist() == [True, False, False]
    assert inputs.shape == (1, 3, 24, 24)
    assert torch.equal(inputs, torch.full_like(inputs, -127.5 * 0.0078125))  # a black crop, normalised


def test_batches_blank_frames_and_tiny_images(samples, mtcnn):
    face = detection_batch(samples, "images/ex_original.png", None)[0]
    blank = np.zeros_like(face)
    mtcnn.min_face_size = 40
    together = mtcnn_fast.detect(mtcnn, np.stack([blank, face, blank, face]))
    alone = mtcnn_fast.detect(mtcnn, face)
    assert [len(boxes) for boxes, _ in together] == [0, 1, 0, 1]
    for boxes, probs in (together[0], together[2]):
        assert boxes.shape == (0, 4) and probs.shape == (0,) and boxes.dtype == np.float32
    np.testing.assert_allclose(together[1][0], alone[0][0], atol=1e-3)
    np.testing.assert_allclose(together[3][0], alone[0][0], atol=1e-3)
    # Smaller than the smallest face searched: no pyramid at all. facenet fails there
    # (torch.cat of an empty list); the fast path finds nothing.
    tiny = mtcnn_fast.detect(mtcnn, np.zeros((2, 30, 30, 3), np.uint8))
    assert [boxes.shape for boxes, _ in tiny] == [(0, 4), (0, 4)]


def test_accepts_what_facenet_accepts(samples, mtcnn):
    import torch
    from PIL import Image

    face = read_image(samples / "images/ex_original.png")
    mtcnn.min_face_size = 40
    expected = mtcnn_fast.detect(mtcnn, face)
    assert len(expected[0][0]) == 1
    for variant in (Image.fromarray(face), [Image.fromarray(face)], [face], torch.from_numpy(face.copy())):
        np.testing.assert_array_equal(mtcnn_fast.detect(mtcnn, variant)[0][0], expected[0][0])
    # Float pixels take facenet's pyramid and the float64 table: the same face.
    as_float = mtcnn_fast.detect(mtcnn, torch.from_numpy(face.copy()).float())
    assert iou(as_float[0][0][0], expected[0][0][0]) > 0.999
    with pytest.raises(ValueError, match="one size"):
        mtcnn_fast.detect(mtcnn, [face, face[:100]])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        mtcnn_fast.detect(mtcnn, face[..., 0])
    with pytest.raises(ValueError, match="implementation"):
        mtcnn_fast.detect(mtcnn, face, "onnx")
    with pytest.raises(ValueError, match="crop_method"):
        mtcnn_fast.detect_face(face, 40, mtcnn.pnet, mtcnn.rnet, mtcnn.onet, [0.6, 0.7, 0.7], 0.709, "cpu", "gather")


def test_face_detector_switch(samples):
    face = read_image(samples / "images/ex_original.png")
    fast = FaceDetector(min_face_size=40).detect([face])[0]
    reference = FaceDetector(min_face_size=40, implementation="facenet").detect([face])[0]
    assert fast.detected == reference.detected == 1
    np.testing.assert_allclose(fast.boxes, reference.boxes, atol=1e-3)
    np.testing.assert_allclose(fast.probs, reference.probs, atol=1e-5)
    assert FaceDetector.from_config({"implementation": "facenet"}).implementation == "facenet"
    assert FaceDetector.from_config({}).implementation == "fast"
    with pytest.raises(ValueError, match="extraction.detection.implementation"):
        FaceDetector(implementation="fastest")


def test_box_arithmetic_is_facenets_to_the_bit():
    """candidate_boxes, regress, square and clipped_corners against facenet-pytorch's
    generateBoundingBox, bbreg, rerec and pad (which change their input: given copies)."""
    import torch
    from facenet_pytorch.models.utils.detect_face import bbreg, generateBoundingBox, pad, rerec

    generator = torch.Generator().manual_seed(0)
    reg = torch.randn(3, 4, 37, 53, generator=generator) * 0.2
    probs = torch.rand(3, 37, 53, generator=generator)
    for scale in (0.6, 0.2127, 0.0521):
        boxes, image_inds = mtcnn_fast.candidate_boxes(reg, probs, scale, 0.6)
        expected, expected_inds = generateBoundingBox(reg, probs, scale, 0.6)
        assert len(boxes) > 100 and torch.equal(boxes, expected) and torch.equal(image_inds, expected_inds)
    offsets = torch.randn(len(boxes), 4, generator=generator) * 0.1
    assert torch.equal(mtcnn_fast.regress(boxes[:, :5], offsets), bbreg(boxes[:, :5].clone(), offsets))
    assert torch.equal(mtcnn_fast.square(boxes[:, :5]), rerec(boxes[:, :5].clone()))
    # boxes reaching past every edge of a 300 x 200 frame
    spread = boxes[:, :4] * 3 - 200
    corners = mtcnn_fast.clipped_corners(spread, 300, 200)
    for got, want in zip(corners, pad(spread.clone(), 300, 200)):
        assert np.array_equal(got.numpy(), want)
    assert corners[0].min() == 1 and corners[3].max() == 300


@pytest.mark.parametrize("count", [300, 1500])  # one block of overlaps; several, and torchvision's per-image path
def test_nms_keeps_what_torchvision_and_facenet_keep(count):
    import torch
    from facenet_pytorch.models.utils.detect_face import batched_nms_numpy
    from torchvision.ops import batched_nms as torchvision_batched_nms

    generator = torch.Generator().manual_seed(count)
    corner = torch.rand(count, 2, generator=generator) * 6 * count**0.5  # crowded: about half suppressed
    size = 10 + torch.rand(count, 1, generator=generator) * 90
    boxes = torch.cat([corner, corner + size * (0.8 + 0.4 * torch.rand(count, 2, generator=generator))], dim=1)
    scores = torch.rand(count, generator=generator)
    image_inds = torch.randint(0, 3, (count,), generator=generator)
    for threshold in (0.5, 0.7):
        kept = mtcnn_fast.batched_nms(boxes, scores, image_inds, threshold)
        expected = torchvision_batched_nms(boxes, scores, image_inds, threshold)
        assert torch.equal(kept, expected), threshold
        kept_min = mtcnn_fast.batched_nms(boxes, scores, image_inds, threshold, "min")
        assert torch.equal(kept_min, batched_nms_numpy(boxes, scores, image_inds, threshold, "Min")), threshold
        for kept_boxes in (kept, kept_min):  # both suppress many boxes and keep many
            assert 0.05 * count < len(kept_boxes) < 0.95 * count
    empty = torch.zeros(0, 4)
    assert mtcnn_fast.batched_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).shape == (0,)
