"""FaceDetector (MTCNN wrapper), crops and JPEG helpers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from facesleuth.extract.detect import (
    DETECTION_DEFAULTS,
    FaceDetector,
    _as_boxes,
    crop_with_margin,
    detection_size,
    encode_jpeg,
)
from facesleuth.train.preprocess import decode_jpeg
from facesleuth.extract.tracking import iou
from facesleuth.extract.video import read_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def face_image(samples):
    return read_image(samples / "images/ex_original.png")  # 640x480, one face


@pytest.fixture(scope="module")
def group_image(samples):
    return read_image(samples / "images/multiface.jpg")  # 1200x630, group photo


def test_from_config_defaults_and_unknown_keys():
    detector = FaceDetector.from_config({"detect_max_side": 480, "margin": 12})
    assert detector.detect_max_side == 480 and detector.margin == 12
    assert detector.min_face_size == 70 and detector.min_probability == 0.9  # schema defaults
    assert list(detector.thresholds) == [0.6, 0.7, 0.7]
    with pytest.raises(ValueError, match="extraction.detection.*marign"):
        FaceDetector.from_config({"marign": 3})


def test_defaults_are_the_schemas():
    schema = yaml.safe_load((REPO / "src" / "facesleuth" / "schemas" / "config.schema.yaml").read_text())
    written = {key: spec["default"] for key, spec in schema["definitions"]["face_detection"]["properties"].items()}
    assert DETECTION_DEFAULTS == written
    settable = {f.name: getattr(FaceDetector(), f.name) for f in dataclasses.fields(FaceDetector) if f.init}
    assert settable == {**written, "thresholds": tuple(written["thresholds"])}
    assert FaceDetector() == FaceDetector.from_config({})
    assert FaceDetector(thresholds=[0.5, 0.6, 0.7]).thresholds == (0.5, 0.6, 0.7)


@pytest.mark.parametrize(
    "size,max_side,expected",
    [((1920, 1080), 960, (960, 540)), ((1080, 1920), 960, (540, 960)), ((640, 480), 960, (640, 480)),
     ((720, 1280), 480, (270, 480))],
)
def test_detection_size_keeps_aspect_and_never_upscales(size, max_side, expected):
    assert detection_size(*size, max_side) == expected


def test_mtcnn_min_size_follows_the_kept_face_size():
    detector = FaceDetector(min_detection_size=20, min_face_size=70)
    assert detector.mtcnn_min_size(1.0) == 56  # 70 px faces, with slack
    assert detector.mtcnn_min_size(0.5) == 28
    assert detector.mtcnn_min_size(0.25) == 20  # never below min_detection_size


def test_as_boxes_handles_numpy2_object_arrays():
    boxes, probs = _as_boxes((None, [None]))
    assert boxes.shape == (0, 4) and probs.shape == (0,)
    raw_boxes = np.array([np.array([1.0, 2.0, 30.0, 40.0]), np.array([5.0, 6.0, 70.0, 80.0])], dtype=object)
    boxes, probs = _as_boxes((raw_boxes, np.array([0.99, 0.5], dtype=object)))
    assert boxes.dtype == np.float32 and boxes.shape == (2, 4)
    assert probs.tolist() == pytest.approx([0.99, 0.5])


def test_detects_the_face_and_maps_boxes_to_full_resolution(face_image):
    full = FaceDetector(min_face_size=40, detect_max_side=640).detect([face_image])[0]
    small = FaceDetector(min_face_size=40, detect_max_side=320).detect([face_image])[0]
    assert len(full.boxes) == len(small.boxes) == 1
    assert full.probs[0] > 0.99
    x0, y0, x1, y1 = full.boxes[0]
    assert 250 < (x0 + x1) / 2 < 450 and 60 < (y0 + y1) / 2 < 200  # the face in the FF++ frame
    # Detected at half size, the box comes back in full-resolution pixels.
    assert iou(full.boxes[0], small.boxes[0]) > 0.85
    # The same, when the caller hands over frames already at detection size.
    import cv2

    half = cv2.resize(face_image, (320, 240), interpolation=cv2.INTER_AREA)
    mapped = FaceDetector(min_face_size=40, detect_max_side=320).detect([half], full_size=(640, 480))[0]
    assert iou(mapped.boxes[0], small.boxes[0]) > 0.95


def _assert_plausible_landmarks(found):
    """Each face's five points inside its box, both eyes above both mouth corners, the left
    eye left of the right one (a face of a person facing the camera)."""
    assert found.landmarks.shape == (len(found.boxes), 5, 2)
    for box, points in zip(found.boxes, found.landmarks):
        x0, y0, x1, y1 = box
        assert ((points[:, 0] >= x0) & (points[:, 0] <= x1)).all(), (box, points)
        assert ((points[:, 1] >= y0) & (points[:, 1] <= y1)).all(), (box, points)
        left_eye, right_eye, nose, mouth_left, mouth_right = points
        assert max(left_eye[1], right_eye[1]) < min(mouth_left[1], mouth_right[1])
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert min(left_eye[1], right_eye[1]) < nose[1] < max(mouth_left[1], mouth_right[1])


@pytest.mark.parametrize("implementation", ["fast", "facenet"])
def test_landmarks_come_with_the_boxes_in_full_resolution(face_image, group_image, implementation):
    full = FaceDetector(min_face_size=40, detect_max_side=640, implementation=implementation).detect([face_image])[0]
    _assert_plausible_landmarks(full)
    # Detected at half size, the landmarks come back in full-resolution pixels, as the boxes do.
    small = FaceDetector(min_face_size=40, detect_max_side=320, implementation=implementation).detect([face_image])[0]
    _assert_plausible_landmarks(small)
    eye_distance = np.linalg.norm(full.landmarks[0, 1] - full.landmarks[0, 0])
    assert np.abs(small.landmarks[0] - full.landmarks[0]).max() < 0.15 * eye_distance
    group = FaceDetector(min_face_size=40, detect_max_side=1200, implementation=implementation).detect([group_image])[0]
    assert len(group.boxes) >= 4
    _assert_plausible_landmarks(group)


def test_landmarks_agree_with_facenet_pytorchs_own(face_image):
    """The reference: facenet-pytorch's MTCNN.detect(landmarks=True) on the same frame."""
    from facenet_pytorch import MTCNN

    found = FaceDetector(min_face_size=40, detect_max_side=640).detect([face_image])[0]
    _, _, points = MTCNN(keep_all=True, select_largest=False, min_face_size=32).detect(face_image, landmarks=True)
    assert np.abs(found.landmarks[0] - np.asarray(points[0], np.float32)).max() < 1.0


def test_filters_small_and_unlikely_faces(face_image):
    found = FaceDetector(min_face_size=40).detect([face_image])[0]
    side = min(found.boxes[0][2] - found.boxes[0][0], found.boxes[0][3] - found.boxes[0][1])
    too_big = FaceDetector(min_face_size=int(side) + 5).detect([face_image])[0]
    assert len(too_big.boxes) == 0
    strict = FaceDetector(min_face_size=40, min_probability=0.99999999).detect([face_image])[0]
    assert len(strict.boxes) == 0 and strict.detected >= 1  # found, then dropped: counted


def test_mixed_sizes_in_one_call(face_image, group_image):
    detector = FaceDetector(min_face_size=40, detect_max_side=640, batch_size=2)
    together = detector.detect([face_image, group_image, face_image, np.zeros((300, 200, 3), np.uint8)])
    alone = [detector.detect([face_image])[0], detector.detect([group_image])[0]]
    assert len(together) == 4
    assert np.allclose(together[0].boxes, alone[0].boxes, atol=1.0)
    assert np.allclose(together[2].boxes, alone[0].boxes, atol=1.0)
    assert len(together[1].boxes) == len(alone[1].boxes) >= 4  # the group photo
    assert len(together[3].boxes) == 0  # a black frame has no face
    for found in together[1:2]:
        assert (found.boxes[:, 2] <= 1200 + 20).all() and (found.boxes[:, 3] <= 630 + 20).all()


def test_crop_with_margin_and_clipping():
    frame = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    crop, box = crop_with_margin(frame, [50.4, 20.0, 90.0, 60.6], margin=10)
    assert box == (40, 10, 100, 71)
    assert crop.shape == (61, 60, 3)
    assert np.array_equal(crop, frame[10:71, 40:100])
    edge, edge_box = crop_with_margin(frame, [-5.0, 80.0, 30.0, 120.0], margin=30)
    assert edge_box == (0, 50, 60, 100)
    assert edge.shape == (50, 60, 3)
    with pytest.raises(ValueError, match="outside"):
        crop_with_margin(frame, [300, 300, 400, 400], margin=5)


def test_jpeg_round_trip_keeps_rgb_order():
    image = np.zeros((64, 48, 3), np.uint8)
    image[:32] = (250, 10, 10)  # red top
    image[32:] = (10, 10, 250)  # blue bottom
    data = encode_jpeg(image, quality=95)
    assert data[:3] == b"\xff\xd8\xff"
    back = decode_jpeg(data)
    assert back.shape == image.shape
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 4
    assert back[5, 5, 0] > 200 and back[60, 5, 2] > 200
    with pytest.raises(ValueError):
        decode_jpeg(b"not a jpeg")


def test_load_fails_clearly_on_a_missing_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        FaceDetector(device="cuda").load()
