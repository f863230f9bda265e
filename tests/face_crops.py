"""Real face crops from the shared samples, and small split / faces Parquet files built from them.

``ex_original.png`` and ``ex_deepfakes.png`` are the same FF++ frame, real and Deepfakes
(pixels differ only inside the face). Crops of the face with jittered boxes stand in for the
faces of several short videos; the fake frame's crops are labelled 1.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from facesleuth.io import FACES_SCHEMA, SPLITS_SCHEMA, write_parquet

# The presenter's face in the 640x480 FF++ frame, with some margin (x0, y0, x1, y1).
FACE_BOX = (265, 35, 415, 205)
# Its five landmarks in the frame, as MTCNN finds them (eyes, nose, mouth corners; x, y).
FRAME_LANDMARKS = np.array([[330.3, 110.0], [370.7, 116.6], [349.2, 137.2], [324.8, 155.4], [363.1, 161.3]])


def _rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)
    assert image is not None, f"cannot read {path}"
    return image


def face_crop(samples: Path, fake: bool = False) -> np.ndarray:
    """The face of the sample frame, RGB uint8 (about 170x150, portrait)."""
    image = _rgb(samples / "images" / ("ex_deepfakes.png" if fake else "ex_original.png"))
    x0, y0, x1, y1 = FACE_BOX
    return image[y0:y1, x0:x1].copy()


def jittered_crops(samples: Path, count: int, fake: bool, seed: int, scale: float = 0.5) -> list[bytes]:
    """``count`` JPEG crops of the face with shifted boxes, downscaled by ``scale`` (keeps tests fast)."""
    return [jpeg for jpeg, _ in jittered_crops_with_landmarks(samples, count, fake, seed, scale)]


def jittered_crops_with_landmarks(
    samples: Path, count: int, fake: bool, seed: int, scale: float = 0.5
) -> list[tuple[bytes, list[float]]]:
    """As :func:`jittered_crops`, each with the face's landmarks in its own pixels (flat x, y)."""
    image = _rgb(samples / "images" / ("ex_deepfakes.png" if fake else "ex_original.png"))
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = FACE_BOX
    crops = []
    for _ in range(count):
        dx0, dy0, dx1, dy1 = rng.integers(-15, 16, size=4)
        crop = image[y0 + dy0 : y1 + dy1, x0 + dx0 : x1 + dx1]
        height, width = crop.shape[:2]
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        factors = (crop.shape[1] / width, crop.shape[0] / height)
        points = (FRAME_LANDMARKS - (x0 + dx0, y0 + dy0)) * factors
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        crops.append((encoded.tobytes(), points.reshape(-1).tolist()))
    return crops


def write_split(path: Path, samples: Path, train_videos: int = 6, val_videos: int = 4, faces_per_video: int = 4,
                seed: int = 0) -> Path:
    """A splits Parquet (SPLITS_SCHEMA): half real, half fake videos on each side, with landmarks."""
    rows = []
    for side, videos in (("train", train_videos), ("val", val_videos)):
        for v in range(videos):
            fake = v % 2 == 1
            video_id = f"part_0/{side}{v:02d}"
            crops = jittered_crops_with_landmarks(samples, faces_per_video, fake, seed=hash((seed, side, v)) % 2**32)
            for f, (jpeg, landmarks) in enumerate(crops):
                rows.append({
                    "dataset": "samples", "video_id": video_id, "face_id": f"{video_id}/{f}/0", "group": "part_0",
                    "original": None if not fake else f"part_0/{side}{v - 1:02d}", "label": int(fake),
                    "split": side, "landmarks": landmarks, "jpeg": jpeg,
                })
    write_parquet(pd.DataFrame(rows), path, SPLITS_SCHEMA)
    return path


def faces_frame(samples: Path, videos: dict[str, tuple[int, int]], dataset: str = "testset", seed: int = 0) -> pd.DataFrame:
    """Faces rows (FACES_SCHEMA) for ``videos`` = {video_id: (label, number of faces)}."""
    rows = []
    for i, (video_id, (label, count)) in enumerate(videos.items()):
        for f, jpeg in enumerate(jittered_crops(samples, count, bool(label), seed=seed + i)):
            rows.append({
                "dataset": dataset, "video_id": video_id, "face_id": f"{video_id}/{f}/0", "frame": f, "target_frame": f, "face": 0,
                "track": 0, "x0": 0.0, "y0": 0.0, "x1": 1.0, "y1": 1.0, "prob": 0.99, "label": label,
                "box_source": "self", "jpeg": jpeg,
            })
    frame = pd.DataFrame(rows, columns=FACES_SCHEMA.names)
    return frame
