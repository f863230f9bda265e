"""A real trained run folder for scanner tests, and small broken media files.

The run is made the way the pipeline makes one: :func:`facesleuth.train.loop.train_run` on a tiny
split of real face crops (``face_crops.write_split``), then :func:`facesleuth.evaluate.predict.validate_on_holdout`
for threshold.json. A 1-epoch mobilenetv3_small_050 at 64 px scores near 0.5; the tests check
the machinery (scores, aggregation, verdicts at the threshold), not the accuracy.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

from face_crops import write_split

RUN_SETTINGS = {
    "model": "mobilenetv3_small_050",
    "setup": "none",
    "training": {
        "input_size": 64, "epochs": 1, "batch_size": 8, "precision": "fp32", "lr": 0.001, "dropout": 0.2,
        "pretrained": False, "weights": None, "num_workers": 0, "seed": 3, "device": "cpu",
        "channels_last": False, "max_steps_per_epoch": None, "gpus": 1,
    },
    "augmentations": {},
}

# Detection small enough for CI (2 cores): frames downscaled to 480 px before MTCNN.
FAST_DETECTION_YAML = "extraction:\n  detection:\n    detect_max_side: 480\n    batch_size: 8\n"


def make_trained_run(samples: Path, folder: Path, face_crops: dict | None = None) -> Path:
    """Train a tiny run into ``folder`` and write its validation threshold.json; returns ``folder``.

    ``face_crops``: the crop settings its run.yaml records (as rule train passes them); None: none.
    """
    from facesleuth.evaluate.predict import validate_on_holdout
    from facesleuth.train.loop import train_run

    split = write_split(folder.parent / f"{folder.name}.split.parquet", samples)
    settings = copy.deepcopy(RUN_SETTINGS)
    if face_crops is not None:
        settings["face_crops"] = face_crops
    train_run(split, folder, settings)
    _, _, threshold = validate_on_holdout(folder, split, {"aggregation": "mean", "batch_size": 16}, device="cpu")
    (folder / "threshold.json").write_text(json.dumps(threshold, indent=1) + "\n")
    return folder


def copy_without_threshold(run: Path, folder: Path) -> Path:
    """A run folder holding best.pt only (as if threshold.json had never been made)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run / "best.pt", folder / "best.pt")
    return folder


def truncated_copy(source: Path, target: Path, fraction: float) -> Path:
    """The first ``fraction`` of ``source``'s bytes (an interrupted download)."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def make_calibrated_copy(run: Path, folder: Path) -> Path:
    """A copy of ``run`` with what the pipeline's validate and calibrate rules add: the validation
    face and video scores and calibration.json (the temperature fitted on the video scores)."""
    from facesleuth.evaluate.validation import validate_run

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("best.pt", "threshold.json"):
        shutil.copy2(run / name, folder / name)
    split = run.parent / f"{run.name}.split.parquet"
    validation = validate_run(folder, split, {"batch_size": 16}, {"kind": "holdout", "flow": "train"}, device="cpu")
    validation.faces.to_parquet(folder / "validation.faces.parquet")
    validation.videos.to_parquet(folder / "validation.parquet")
    (folder / "calibration.json").write_text(json.dumps(validation.calibration) + "\n")
    return folder
