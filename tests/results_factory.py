"""Small but realistic pipeline outputs for the table and figure tests.

Scores are made so every ordering the tables mark is known in advance: a run's video score is
``sigmoid(strength * (+1 fake / -1 real) + noise)`` with the same noise for every run, so a
larger strength gives a strictly lower log loss. Fakes tagged ``augmenter:noise`` are pushed
towards real (the thesis's worst augmenter), so that row is every model's worst.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from facesleuth.io import FACE_PREDICTIONS_SCHEMA, FACES_SCHEMA, VIDEO_PREDICTIONS_SCHEMA, write_parquet
from facesleuth.evaluate.metrics import evaluate

MODELS = ["efb4_ns", "resnet50"]
SETUPS = ["none", "default", "coarse", "grid"]
# efb4 is best with default, resnet50 with grid; per setup: none -> resnet50, default and
# coarse -> efb4, grid -> resnet50.
STRENGTHS = {
    ("efb4_ns", "none"): 0.8, ("efb4_ns", "default"): 2.0, ("efb4_ns", "coarse"): 1.6, ("efb4_ns", "grid"): 1.2,
    ("resnet50", "none"): 1.0, ("resnet50", "default"): 1.4, ("resnet50", "coarse"): 1.5, ("resnet50", "grid"): 1.9,
}
BEST_LOGLOSS_SETUP = {"efb4_ns": "default", "resnet50": "grid"}
BEST_MODEL_PER_SETUP = {"none": "resnet50", "default": "efb4_ns", "coarse": "efb4_ns", "grid": "resnet50"}
FACES_PER_VIDEO = 3
# boxes (x0, y0, x1, y1) inside the 8-face group photo of the samples, for realistic crops
CROP_SIDE = 96


def dfdc_videos(n: int = 48, testset: str = "dfdc_test") -> pd.DataFrame:
    """Half fake; tags cycle through noise, dots, blur+text and none."""
    cycle = [["augmenter:noise"], ["distractor:dots"], ["augmenter:blur", "distractor:text"], []]
    rows = []
    for i in range(n):
        label = i % 2
        rows.append({"dataset": testset, "video_id": f"v{i:03d}", "label": label, "tags": cycle[(i // 2) % 4]})
    return pd.DataFrame(rows)


def celebdf_videos(n: int = 30, testset: str = "celebdf") -> pd.DataFrame:
    """About two fakes per real, as Celeb-DF-v2 is unbalanced; no tags."""
    rows = [{"dataset": testset, "video_id": f"Celeb-{'synthesis' if i % 3 else 'real'}/id{i}_0000", "label": int(i % 3 != 0), "tags": []} for i in range(n)]
    return pd.DataFrame(rows)


def scores(videos: pd.DataFrame, strength: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 1.0, len(videos))
    sign = np.where(videos["label"] == 1, 1.0, -1.0)
    push = np.array([-3.0 if ("augmenter:noise" in tags and label == 1) else 0.0 for tags, label in zip(videos["tags"], videos["label"])])
    return 1.0 / (1.0 + np.exp(-(strength * sign + noise + push)))


def crops_from(samples: Path, count: int) -> list[bytes]:
    """``count`` JPEG crops cut from the sample group photo on a grid (real image content)."""
    import cv2

    image = cv2.imread(str(samples / "images" / "multiface.jpg"))
    height, width = image.shape[:2]
    crops = []
    ys = np.linspace(0, height - CROP_SIDE, 4).astype(int)
    xs = np.linspace(0, width - CROP_SIDE, 8).astype(int)
    for k in range(count):
        y, x = ys[k % len(ys)], xs[(k // len(ys)) % len(xs)]
        ok, data = cv2.imencode(".jpg", image[y : y + CROP_SIDE, x : x + CROP_SIDE + 16])
        assert ok
        crops.append(data.tobytes())
    return crops


def write_faces(root: Path, videos: pd.DataFrame, samples: Path) -> Path:
    testset = videos["dataset"].iloc[0]
    rows = []
    jpegs = crops_from(samples, len(videos) * FACES_PER_VIDEO)
    for v, video in enumerate(videos.itertuples(index=False)):
        for f in range(FACES_PER_VIDEO):
            rows.append(
                {
                    "dataset": testset, "video_id": video.video_id, "face_id": f"{video.video_id}/{f * 5}/0",
                    "frame": f * 5, "target_frame": f * 5, "face": 0, "track": 0, "x0": 0.0, "y0": 0.0, "x1": 96.0, "y1": 96.0,
                    "prob": 0.99, "label": video.label, "box_source": "self", "landmarks": None, "jpeg": jpegs[v * FACES_PER_VIDEO + f],
                }
            )
    return write_parquet(pd.DataFrame(rows), root / "results" / "faces" / testset / "000.parquet", FACES_SCHEMA)


def write_run(root: Path, videos: pd.DataFrame, model: str, aug: str, strength: float, validation_threshold: float = 0.45) -> dict:
    """Video and face predictions and the metrics JSON of one run on one test set."""
    testset = videos["dataset"].iloc[0]
    video_scores = scores(videos, strength)
    predictions = videos.assign(status="ok", n_faces=FACES_PER_VIDEO, score=video_scores, scored=True)
    base = root / "results" / "predictions" / testset / model
    write_parquet(predictions, base / f"{aug}.parquet", VIDEO_PREDICTIONS_SCHEMA)
    faces = []
    for video, score in zip(videos.itertuples(index=False), video_scores):
        for f, offset in enumerate((-0.05, 0.0, 0.05)):  # mean of the face scores = video score
            faces.append({"dataset": testset, "video_id": video.video_id, "face_id": f"{video.video_id}/{f * 5}/0",
                          "frame": f * 5, "track": 0, "label": video.label, "score": score + offset})
    write_parquet(pd.DataFrame(faces), base / f"{aug}.faces.parquet", FACE_PREDICTIONS_SCHEMA)
    metrics = {"testset": testset, "model": model, "aug": aug, **evaluate(predictions, validation_threshold)}
    path = root / "results" / "metrics" / testset / model / f"{aug}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics))
    return metrics


def write_history(root: Path, model: str, aug: str, epochs: int = 4, seconds: float = 30.0) -> Path:
    history = pd.DataFrame(
        {
            "epoch": range(1, epochs + 1),
            "train_loss": [0.7 / (e + 1) for e in range(epochs)],
            "val_loss": [0.65 / (e + 1) + 0.05 for e in range(epochs)],
            "seconds": [seconds + e for e in range(epochs)],
            "images_per_s": 100.0,
        }
    )
    path = root / "results" / "models" / model / aug / "history.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(path, index=False)
    return path


def write_study(root: Path, samples: Path) -> dict:
    """Metrics, predictions, faces and histories of the whole grid on both test sets."""
    dfdc, celebdf = dfdc_videos(), celebdf_videos()
    out = {"dfdc_videos": dfdc, "celebdf_videos": celebdf, "dfdc": {}, "celebdf": {}}
    for (model, setup), strength in STRENGTHS.items():
        out["dfdc"][(model, setup)] = write_run(root, dfdc, model, setup, strength)
        # on Celeb-DF-v2 the order of setups is reversed for efb4, so F1 picks other runs
        celeb_strength = strength if model != "efb4_ns" else 2.8 - strength
        out["celebdf"][(model, setup)] = write_run(root, celebdf, model, setup, celeb_strength)
        write_history(root, model, setup)
    write_faces(root, dfdc, samples)
    write_faces(root, celebdf, samples)
    return out


def paths(root: Path, kind: str, testset: str, models=MODELS, setups=SETUPS) -> list[str]:
    if kind == "metrics":
        return [str(root / "results" / "metrics" / testset / m / f"{s}.json") for m in models for s in setups]
    if kind == "videos":
        return [str(root / "results" / "predictions" / testset / m / f"{s}.parquet") for m in models for s in setups]
    if kind == "face_scores":
        return [str(root / "results" / "predictions" / testset / m / f"{s}.faces.parquet") for m in models for s in setups]
    if kind == "faces":
        return [str(root / "results" / "faces" / testset / "000.parquet")]
    if kind == "histories":
        return [str(root / "results" / "models" / m / f"{s}" / "history.csv") for m in models for s in setups]
    raise ValueError(kind)
