"""Validation data: DFDC's own validation set (splits.validation_dataset, test flow) or a hold-out.

With a validation dataset the split holds nothing out, training's validation loss is the loss
over that dataset's faces, and the EER threshold is chosen on its video scores; threshold.json,
captions and titles say which validation data was used. The checks compute each number again
without the code under test: cross-entropy from the model's probabilities, the EER threshold
from scikit-learn's ROC.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from face_crops import faces_frame, write_split
from sklearn.metrics import log_loss, roc_curve
from test_splits import SETTINGS as SPLIT_SETTINGS
from test_splits import dfdc_like
from train_settings import TINY_RUN as TRAIN_SETTINGS

from facesleuth.report import catalog
from facesleuth.config import reference_problems, validate_config, validation_source
from facesleuth.io import STATUS_SCHEMA, write_parquet
from facesleuth.evaluate.inference import load_run
from facesleuth.evaluate.predict import predict_faces, validate_on_dataset
from facesleuth.evaluate.validation import ValidationDataset, validate_run
from facesleuth.train.splits import make_splits
from facesleuth.train.loop import train_run
from report_captions import render_caption

REPO = Path(__file__).resolve().parents[1]
DATASET_SOURCE = {"kind": "dataset", "name": "dfdc_val", "flow": "test"}
# label, faces: three real and three fake validation videos
VALIDATION_VIDEOS = {"r0": (0, 3), "f0": (1, 3), "r1": (0, 2), "f1": (1, 3), "r2": (0, 3), "f2": (1, 2)}


def test_split_holds_nothing_out_with_a_validation_dataset():
    faces, status, manifest = dfdc_like()
    settings = {**SPLIT_SETTINGS, "validation_dataset": "dfdc_val", "validation_fraction": 0.5}
    split, summary = make_splits(faces, status, settings, manifest)
    assert set(split["split"]) == {"train"}
    # every real face trains; one fake face in fake_downsample (2) is kept, as with a hold-out
    n_real = int((faces["label"] == 0).sum())
    n_fake = int((faces["label"] == 1).sum())
    assert int((split["label"] == 0).sum()) == n_real
    assert int((split["label"] == 1).sum()) == math.ceil(n_fake / SPLIT_SETTINGS["fake_downsample"])
    assert summary.loc[summary["split"] == "val", "faces"].sum() == 0
    # without it, the same faces are held out by validation_fraction
    held, _ = make_splits(faces, status, {**SPLIT_SETTINGS, "validation_fraction": 0.5}, manifest)
    assert set(held["split"]) == {"train", "val"}


@pytest.fixture(scope="module")
def validation_run(samples, tmp_path_factory):
    """One epoch trained on a split without a val side, validated on a dataset's faces files."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("validation")
    split = write_split(root / "split.parquet", samples, train_videos=6, val_videos=0)
    labelled = faces_frame(samples, VALIDATION_VIDEOS, dataset="dfdc_val", seed=3)
    unlabelled = faces_frame(samples, {"unknown": (0, 2)}, dataset="dfdc_val", seed=11).assign(label=-1)
    files = [root / "000.parquet", root / "001.parquet"]
    write_parquet(labelled.iloc[:8], files[0])
    write_parquet(pd.concat([labelled.iloc[8:], unlabelled], ignore_index=True), files[1])
    settings = copy.deepcopy(TRAIN_SETTINGS)
    settings["training"]["epochs"] = 1
    settings["validation"] = DATASET_SOURCE
    summary = train_run(split, root / "run", settings, validation_faces=files)
    return root, files, labelled, summary


def test_training_validation_loss_is_the_loss_over_the_validation_dataset(validation_run):
    root, _, labelled, summary = validation_run
    [row] = summary["history"]
    assert row["val_images"] == len(labelled) == 16  # the unlabelled video's faces are left out
    model, info = load_run(root / "run", "cpu")
    p_fake = predict_faces(model, info, labelled, "cpu").astype(np.float64)
    labels = labelled["label"].to_numpy()
    cross_entropy = -np.mean(np.log(np.where(labels == 1, p_fake, 1 - p_fake)))
    assert row["val_loss"] == pytest.approx(cross_entropy, rel=1e-4)
    assert summary["best_epoch"] == 1
    assert yaml.safe_load((root / "run" / "run.yaml").read_text())["validation"] == DATASET_SOURCE


def test_torchrun_launch_passes_the_validation_faces_on(validation_run, samples, tmp_path, monkeypatch):
    """training.gpus > 1 starts torchrun; its processes get the validation faces on their command
    line. The launch is replaced by running that command line in this process."""
    import subprocess

    from facesleuth.train import loop as train_module

    root, files, labelled, _ = validation_run
    commands = []

    def run_in_process(command, check=False):
        commands.append(command)
        root_logger = logging.getLogger()
        handlers, level = root_logger.handlers[:], root_logger.level
        try:  # main() configures logging as a torchrun process does (force=True); pytest's capture stays
            assert train_module.main(command[command.index("facesleuth.train.loop") + 1 :]) == 0
        finally:
            root_logger.handlers[:] = handlers
            root_logger.setLevel(level)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(train_module.subprocess, "run", run_in_process)
    settings = copy.deepcopy(TRAIN_SETTINGS)
    settings["training"].update(epochs=1, gpus=2)
    summary = train_module.train_or_launch(root / "split.parquet", tmp_path / "run", settings, validation_faces=files)
    [command] = commands
    assert command[command.index("--validation-faces") + 1 :][: len(files)] == [str(f) for f in files]
    assert summary["history"][0]["val_images"] == len(labelled)


def test_training_without_any_validation_faces_fails_clearly(samples, tmp_path):
    split = write_split(tmp_path / "split.parquet", samples, train_videos=4, val_videos=0)
    settings = copy.deepcopy(TRAIN_SETTINGS)
    with pytest.raises(ValueError, match="0 validation faces"):
        train_run(split, tmp_path / "run", settings)


def _eer_threshold_by_sklearn(labels: np.ndarray, scores: np.ndarray) -> float:
    """Where FPR = FNR along scikit-learn's ROC, linearly interpolated (scores distinct)."""
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    gap = fpr - (1 - tpr)  # rises strictly from -1 to 1 when no two scores tie
    assert np.all(np.diff(gap) > 0)
    return float(np.interp(0.0, gap, thresholds))


def _write_manifest_and_status(tmp_path) -> list[str]:
    """The validation dataset's manifest (with an unlabelled video and one without faces) and status."""
    videos = [*VALIDATION_VIDEOS, "unknown", "nothing"]
    manifest = pd.DataFrame({
        "dataset": "dfdc_val", "video_id": videos, "path": [f"{v}.mp4" for v in videos],
        "label": [VALIDATION_VIDEOS[v][0] for v in VALIDATION_VIDEOS] + [-1, 1], "split": "test",
        "original": None, "group": "test", "tags": [[] for _ in videos], "status": "ok", "message": "",
    })
    write_parquet(manifest, tmp_path / "manifest.parquet")
    status = pd.DataFrame([{"dataset": "dfdc_val", "video_id": v, "path": "", "label": 0,
                            "status": "no_face" if v == "nothing" else "ok", "message": "", "frames_total": 10,
                            "frames_read": 10, "faces_detected": 1, "faces_kept": 1, "box_source": "self",
                            "seconds": 0.1, "frames_failed": 0, "frames_skipped": 0} for v in videos])
    write_parquet(status, tmp_path / "000.status.parquet", STATUS_SCHEMA)
    return videos


def _video_scores_independently(run_dir, labelled) -> pd.DataFrame:
    """Face scores -> mean per video, without the validation code."""
    model, info = load_run(run_dir, "cpu")
    faces = labelled.assign(score=predict_faces(model, info, labelled, "cpu").astype(np.float64))
    return faces.groupby("video_id").agg(label=("label", "first"), score=("score", "mean"))


def test_threshold_is_the_eer_of_the_validation_video_scores(validation_run, tmp_path):
    root, files, labelled, _ = validation_run
    _write_manifest_and_status(tmp_path)
    evaluation = {"aggregation": "mean", "no_face_score": 0.5, "batch_size": 4}
    face_scores, scored, threshold = validate_on_dataset(root / "run", files, [tmp_path / "000.status.parquet"],
                                                         tmp_path / "manifest.parquet", evaluation, DATASET_SOURCE,
                                                         "cpu")
    # independently: face scores -> mean per video -> scikit-learn's ROC
    video = _video_scores_independently(root / "run", labelled)
    expected = _eer_threshold_by_sklearn(video["label"].to_numpy(), video["score"].to_numpy())
    assert threshold["eer_threshold"] == pytest.approx(expected, abs=1e-6)
    assert threshold["n_videos"] == 6 and threshold["n_unscored"] == 1  # "nothing" had no face
    assert threshold["validation"] == DATASET_SOURCE and threshold["aggregation"] == "mean"
    # validation.parquet holds the videos the threshold was chosen on, with their video scores
    assert sorted(scored["video_id"]) == sorted(VALIDATION_VIDEOS)
    assert scored.set_index("video_id")["score"].to_dict() == pytest.approx(video["score"].to_dict())
    # and validation.faces.parquet their faces (the scanner re-aggregates them for another aggregation)
    assert sorted(face_scores["face_id"]) == sorted(labelled["face_id"])
    json.dumps(threshold)


@pytest.mark.parametrize("kind", ["dataset", "holdout"])
def test_validate_run_on_a_dataset_or_the_holdout(validation_run, samples, tmp_path, kind):
    """A run's whole validation on either kind of data: the faces and videos it was done on, the
    threshold chosen on those video scores and the temperature fitted on the same scores."""
    root, files, labelled, _ = validation_run
    evaluation = {"aggregation": "mean", "no_face_score": 0.5, "batch_size": 4}
    if kind == "dataset":
        _write_manifest_and_status(tmp_path)
        data = ValidationDataset(files, [tmp_path / "000.status.parquet"], tmp_path / "manifest.parquet")
        source, faces, n_unscored = DATASET_SOURCE, labelled, 1  # "nothing" had no face
    else:
        data = write_split(tmp_path / "split.parquet", samples, train_videos=2, val_videos=6, faces_per_video=3)
        source = {"kind": "holdout", "fraction": 0.25, "group_by": "original", "flow": "train"}
        faces, n_unscored = pd.read_parquet(data).query("split == 'val'"), 0
    result = validate_run(root / "run", data, evaluation, source, "cpu")
    # independently: face scores -> mean per video -> scikit-learn's ROC and log loss
    video = _video_scores_independently(root / "run", faces)
    labels, scores = video["label"].to_numpy(), video["score"].to_numpy()
    assert sorted(result.faces["face_id"]) == sorted(faces["face_id"])
    assert result.videos.set_index("video_id")["score"].to_dict() == pytest.approx(video["score"].to_dict())
    assert result.threshold["eer_threshold"] == pytest.approx(_eer_threshold_by_sklearn(labels, scores), abs=1e-6)
    assert result.threshold["validation"] == source and result.threshold["n_videos"] == 6
    assert result.threshold["n_unscored"] == n_unscored
    assert result.calibration["n_videos"] == 6 and result.calibration["aggregation"] == "mean"
    assert result.calibration["validation_log_loss_before"] == pytest.approx(log_loss(labels, scores), rel=1e-6)
    json.dumps(result.threshold)
    json.dumps(result.calibration)


def _run_validate_script(fake) -> None:
    """Run workflow/scripts/validate.py with ``fake`` as its snakemake object, restoring the root
    logger it points at its log file."""
    import runpy

    root_logger = logging.getLogger()
    handlers, level = root_logger.handlers[:], root_logger.level
    try:
        runpy.run_path(str(REPO / "workflow" / "scripts" / "validate.py"), init_globals={"snakemake": fake})
    finally:
        root_logger.handlers[:] = handlers
        root_logger.setLevel(level)


def test_validate_script_on_a_validation_dataset(validation_run, tmp_path):
    """workflow/scripts/validate.py as rule validate runs it with a validation dataset: threshold
    and temperature from that dataset's video scores, threshold.json saying so."""
    from types import SimpleNamespace

    from snakemake.iocontainers import Namedlist

    root, files, labelled, _ = validation_run
    _write_manifest_and_status(tmp_path)
    out = tmp_path / "out"
    names = ("predictions", "faces", "threshold", "calibration")
    outputs = dict(zip(names, (str(out / n) for n in ("validation.parquet", "validation.faces.parquet",
                                                       "threshold.json", "calibration.json")), strict=True))
    fake = SimpleNamespace(
        input=Namedlist(fromdict={"faces": [str(f) for f in files], "status": [str(tmp_path / "000.status.parquet")],
                                  "manifest": str(tmp_path / "manifest.parquet"), "best": str(root / "run" / "best.pt")}),
        output=Namedlist(fromdict=outputs),
        params=SimpleNamespace(evaluation={"aggregation": "mean", "no_face_score": 0.5, "batch_size": 4},
                               validation=DATASET_SOURCE),
        log=[str(tmp_path / "validate.log")], threads=1, resources=Namedlist(fromdict={"gpu": 0}),
    )
    _run_validate_script(fake)
    threshold = json.loads((out / "threshold.json").read_text())
    calibration = json.loads((out / "calibration.json").read_text())
    video = _video_scores_independently(root / "run", labelled)
    expected = _eer_threshold_by_sklearn(video["label"].to_numpy(), video["score"].to_numpy())
    assert threshold["eer_threshold"] == pytest.approx(expected, abs=1e-6)
    assert threshold["validation"] == DATASET_SOURCE and threshold["n_unscored"] == 1
    # the temperature is fitted on the same six video scores: its "before" is their log loss
    assert calibration["n_videos"] == 6
    assert calibration["validation_log_loss_before"] == pytest.approx(
        log_loss(video["label"].to_numpy(), video["score"].to_numpy()), rel=1e-6)
    assert sorted(pd.read_parquet(out / "validation.parquet")["video_id"]) == sorted(VALIDATION_VIDEOS)


def test_validate_script_on_the_holdout(validation_run, samples, tmp_path):
    """The same script without a validation dataset: the split's held-out faces, recorded as such."""
    from types import SimpleNamespace

    from snakemake.iocontainers import Namedlist

    root, _, _, _ = validation_run
    split = write_split(tmp_path / "split.parquet", samples, train_videos=2, val_videos=6, faces_per_video=3)
    out = tmp_path / "out"
    holdout = {"kind": "holdout", "fraction": 0.25, "group_by": "original", "flow": "train"}
    fake = SimpleNamespace(
        input=Namedlist(fromdict={"split": str(split), "best": str(root / "run" / "best.pt")}),
        output=Namedlist(fromdict={"predictions": str(out / "validation.parquet"),
                                   "faces": str(out / "validation.faces.parquet"),
                                   "threshold": str(out / "threshold.json"), "calibration": str(out / "calibration.json")}),
        params=SimpleNamespace(evaluation={"aggregation": "mean", "batch_size": 4}, validation=holdout),
        log=[str(tmp_path / "validate.log")], threads=1, resources=Namedlist(fromdict={"gpu": 0}),
    )
    _run_validate_script(fake)
    threshold = json.loads((out / "threshold.json").read_text())
    val_faces = pd.read_parquet(split).query("split == 'val'")
    video = _video_scores_independently(root / "run", val_faces)
    assert threshold["eer_threshold"] == pytest.approx(
        _eer_threshold_by_sklearn(video["label"].to_numpy(), video["score"].to_numpy()), abs=1e-6)
    assert threshold["validation"] == holdout and threshold["n_videos"] == 6 and threshold["n_unscored"] == 0


def test_holdout_threshold_records_its_fraction(samples, tmp_path):
    torch.set_num_threads(1)
    split = write_split(tmp_path / "split.parquet", samples)
    settings = copy.deepcopy(TRAIN_SETTINGS)
    settings["training"]["epochs"] = 1
    train_run(split, tmp_path / "run", settings)
    config = {"splits": {"validation_fraction": 0.1, "group_by": "original"}}
    source = validation_source(config)
    threshold = validate_run(tmp_path / "run", split, {"aggregation": "mean", "batch_size": 8}, source, "cpu").threshold
    assert threshold["validation"] == {"kind": "holdout", "fraction": 0.1, "group_by": "original", "flow": "train"}
    # a split made for a validation dataset has no val side: validate_run says so
    no_val = write_split(tmp_path / "no_val.parquet", samples, train_videos=4, val_videos=0)
    with pytest.raises(ValueError, match="no validation faces"):
        validate_run(tmp_path / "run", no_val, {"aggregation": "mean"}, source, "cpu")


def test_captions_and_titles_name_the_validation_data():
    holdout = validation_source({"splits": {"validation_fraction": 0.1, "group_by": "original"}})
    dataset = validation_source({"splits": {"validation_dataset": "dfdc_val", "validation_fraction": 0.1}})
    assert dataset == DATASET_SOURCE
    figures = catalog.figures(["default"])
    for source, words in ((holdout, "hold-out of 10% of the train-flow faces"), (dataset, "validation dataset dfdc_val")):
        for entry in (figures["validation_loss"], figures["eer"], figures["thresholds"], figures["celebdf_f1"],
                      catalog.TABLES["celebdf_sensitivity_specificity"], catalog.TABLES["celebdf_f1"]):
            text = " ".join(render_caption(entry, source).split())
            assert words in text and "{" not in text, (entry.name, text)
        # every table and figure of tested runs names it: their weights are the best epoch's on it
        for entry in [*catalog.TABLES.values(), *figures.values()]:
            if any(need.endswith("_testset") for need in entry.needs):
                assert words in " ".join(render_caption(entry, source).split()), entry.name
    assert catalog.short_validation(dataset) == "dfdc_val (test flow)"
    assert catalog.short_validation(holdout) == "10% train-flow hold-out"


def test_validation_dataset_must_be_a_test_flow_dataset():
    config = yaml.safe_load((REPO / "config" / "thesis.yaml").read_text())
    validate_config(config)
    assert reference_problems(config) == []
    config["splits"]["validation_dataset"] = "dfdc_train"
    assert any("splits.validation_dataset" in p and "flow 'test'" in p for p in reference_problems(config))
    config["splits"]["validation_dataset"] = "dfdc_valid"
    assert any("splits.validation_dataset: 'dfdc_valid' is not a dataset" in p for p in reference_problems(config))
