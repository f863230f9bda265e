"""The trained run a scan uses: weights, settings, threshold, calibration and aggregation from its run folder.

A run folder (``results/models/{model}/{setup}/``, docs/architecture.md "Run folder") carries
everything a scan needs: ``best.pt`` holds the weights and the resolved settings (model name,
input size, preprocessing, what it was trained on), ``threshold.json`` the validation EER
threshold that turns a score into a verdict. The scanner reads the folder, never the config
the run was trained with, so a copied run folder scans the same anywhere.

``calibration.json`` (the temperature fitted on the run's validation videos) makes the scanner
report calibrated probabilities; the threshold is then moved onto the same scale, so verdicts
do not change. An ensemble folder (``ensemble.yaml``, :mod:`facesleuth.evaluate.ensembles`) or several
runs given together scan as one ensemble: each member scores the faces and aggregates them its
way, and the members' video scores are joined by the ensemble's method.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from facesleuth.evaluate.calibration import apply_temperature
from facesleuth.evaluate.ensembles import (
    EnsembleError,
    check_method,
    combine_videos,
    is_ensemble_folder,
    read_spec,
)
from facesleuth.evaluate.predict import (
    AGGREGATIONS,
    is_aggregation,
    validation_threshold,
    validation_videos,
)
from facesleuth.train.preprocess import PREPROCESSING, is_published_preprocessing
from facesleuth.published.runfolder import is_published_run
from facesleuth.evaluate.inference import TORCH, OnnxClassifier, OpenVinoClassifier, load_classifier, run_files
from facesleuth.evaluate.studies import fit_calibration

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
DEFAULT_AGGREGATION = "mean"  # the thesis: mean fake confidence of the sampled faces

RUN_FOLDER_HELP = (
    "A run folder (results/models/<model>/<setup>/) holds best.pt (the trained weights and their "
    "settings), run.yaml (the same settings, readable) and threshold.json (the validation EER "
    "threshold). Make one with `snakemake results/models/<model>/<setup>/best.pt`, or "
    "`snakemake results/models/<model>/<setup>/threshold.json` for the weights and the threshold, "
    "then pass the folder (or its best.pt) to --model. A published detector's run folder (run.yaml "
    "and its authors' checkpoint) is made by `facesleuth weights import FORMAT FILE OUT`."
)


class RunFolderError(ValueError):
    """``--model`` does not name a usable run; the message says what a run folder holds."""


@dataclass
class ScanRun:
    """A loaded run: the model in eval mode on ``device`` and how to read its scores."""

    folder: Path
    checkpoint: Path
    model: nn.Module | OnnxClassifier | OpenVinoClassifier = field(repr=False)  # called on prepared faces: two logits each
    info: dict[str, Any]
    device: str
    threshold: float
    threshold_source: str  # "validation" (threshold.json) or "default" (none found)
    threshold_info: dict[str, Any]
    aggregation: str
    notes: list[str] = field(default_factory=list)
    #: temperature of calibration.json; scores and ``threshold`` are then calibrated probabilities
    temperature: float | None = None
    raw_threshold: float | None = None  # the threshold on uncalibrated scores (``threshold`` when not calibrated)
    members: list[ScanRun] = field(default_factory=list)  # an ensemble's runs (empty for one run)
    ensemble_method: str | None = None
    #: what the run's verdicts cannot be trusted for (run.yaml ``limits``), stated in every output
    limits: list[str] = field(default_factory=list)
    backend: str = TORCH  # what runs the classifier: torch, onnx or openvino (facesleuth.evaluate.inference)
    #: the detection and crop settings its training faces were cut with (run.yaml ``face_crops``);
    #: None: not recorded (an older run, a published detector, an ensemble whose members differ)
    face_crops: dict[str, Any] | None = None

    @property
    def calibrated(self) -> bool:
        return self.temperature is not None

    def calibrate(self, score: float) -> float:
        """The reported probability of an uncalibrated video score (itself when not calibrated)."""
        if self.temperature is None:
            return float(score)
        return float(apply_temperature([score], self.temperature)[0])

    @property
    def scorers(self) -> list[ScanRun]:
        """The runs whose models score faces: the members of an ensemble, else the run itself."""
        return self.members or [self]

    @property
    def name(self) -> str:
        """``model/setup``, as the run folder is named; ``ensemble <name>`` for an ensemble."""
        if self.members:
            return f"ensemble {self.info.get('ensemble', self.folder.name)}"
        return f"{self.info.get('model', '?')}/{self.info.get('setup', '?')}"

    @property
    def input_size(self) -> int:
        return int(self.info["input_size"])

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for reports (no weights)."""
        return {
            "run": str(self.folder),
            "checkpoint": str(self.checkpoint),
            "name": self.name,
            "model": self.info.get("model"),
            "timm_name": self.info.get("timm_name"),
            "architecture": self.info.get("architecture"),
            "setup": self.info.get("setup"),
            "input_size": self.input_size,
            "trained_on": list(self.info.get("trained_on") or []),
            "best_epoch": self.info.get("best_epoch"),
            "device": self.device,
            "backend": self.backend,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "eer": self.threshold_info.get("eer"),
            "auc": self.threshold_info.get("auc"),
            "aggregation": self.aggregation,
            "notes": list(self.notes),
            "calibrated": self.calibrated,
            "temperature": self.temperature,
            "raw_threshold": self.threshold if self.raw_threshold is None else self.raw_threshold,
            "ensemble_method": self.ensemble_method,
            "members": [member.name for member in self.members],
            "limits": list(self.limits),
            "published": self.info.get("provenance") if self.info.get("kind") == "published" else None,
        }


def _locate(path: Path) -> tuple[Path, Path]:
    """(run folder, best.pt) for a folder or a checkpoint file; RunFolderError when neither."""
    if not path.exists():
        raise RunFolderError(f"--model {path}: no such file or folder. {RUN_FOLDER_HELP}")
    if path.is_dir() and not is_published_run(path) and not (path / "best.pt").is_file():
        present = sorted(p.name for p in path.iterdir())[:8]
        raise RunFolderError(
            f"--model {path}: not a training run folder, it has no best.pt "
            f"(it holds: {', '.join(present) or 'nothing'}). {RUN_FOLDER_HELP}"
        )
    return run_files(path)


def read_threshold(folder: Path) -> tuple[float, str, dict[str, Any]]:
    """(threshold, source, threshold.json content) of a run folder; 0.5 when it has none."""
    path = folder / "threshold.json"
    if not path.exists():
        return DEFAULT_THRESHOLD, "default", {}
    try:
        content = json.loads(path.read_text())
        threshold = float(content["eer_threshold"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunFolderError(
            f"{path} is not a valid threshold file ({type(err).__name__}: {err}); it should hold "
            f'{{"eer_threshold": <0..1>, ...}}. Rebuild it with '
            f"`snakemake {path}` or delete it to scan at the default threshold {DEFAULT_THRESHOLD}."
        ) from None
    if not math.isfinite(threshold):
        raise RunFolderError(f"{path}: eer_threshold is {threshold}; rebuild it with `snakemake {path}`")
    return threshold, str(content.get("source") or "validation"), content


def load_scan_run(path: str | Path, device: str = "cpu", aggregation: str | None = None,
                  calibrate: bool = True, backend: str = TORCH) -> ScanRun:
    """Load the run at ``path`` (run folder, its best.pt, or an ensemble folder) onto ``device`` (already resolved).

    ``aggregation``: how to join face scores (default: the one the run's threshold was chosen
    with). ``calibrate``: report calibrated probabilities when the folder has calibration.json.
    ``backend``: torch, onnx or openvino (:func:`facesleuth.evaluate.inference.resolve_backend` resolves auto).
    Raises :class:`RunFolderError` with what a run folder must hold and how to make one.
    """
    if Path(path).is_dir() and is_ensemble_folder(path):
        return load_ensemble_folder(path, device, aggregation, calibrate, backend)
    run = _load_single_run(path, device, backend)
    return _settle(run, [run.folder], aggregation, calibrate)


def _load_single_run(path: str | Path, device: str, backend: str = TORCH) -> ScanRun:
    """The run's model, settings and stored threshold, before aggregation and calibration are settled."""
    folder, checkpoint = _locate(Path(path))
    try:
        model, info = load_classifier(folder, checkpoint, device, backend)
    except Exception as err:  # noqa: BLE001 - any failure means the file is not a usable run
        raise RunFolderError(f"--model {path}: cannot load {checkpoint}: {err}. {RUN_FOLDER_HELP}") from None
    threshold, source, threshold_info = read_threshold(folder)
    notes = []
    published = info.get("kind") == "published"
    if published and source == "default":
        # an imported detector without a validated threshold: the boundary its run.yaml names
        stated = info.get("threshold") or {}
        threshold = float(stated.get("value", DEFAULT_THRESHOLD))
        source = "published"
        notes.append(f"threshold {threshold} is {stated.get('note') or 'the one its run.yaml names'}")
    elif source == "default":
        notes.append(
            f"no threshold.json in {folder}: verdicts use the default threshold {DEFAULT_THRESHOLD} "
            f"(make the validation EER threshold with `snakemake {folder / 'threshold.json'}`)"
        )
    # The threshold was chosen on video scores made with one aggregation; the same one by default.
    aggregation = str(threshold_info.get("aggregation") or info.get("aggregation") or DEFAULT_AGGREGATION)
    if not is_aggregation(aggregation):
        raise RunFolderError(f"{folder}: unknown aggregation {aggregation!r} (known: {', '.join(AGGREGATIONS)})")
    threshold_info = {**threshold_info, "aggregation": aggregation}
    preprocessing = info.get("preprocessing")
    if preprocessing and preprocessing != PREPROCESSING and not is_published_preprocessing(preprocessing):
        notes.append(
            f"the run was trained with preprocessing {preprocessing}, this facesleuth prepares faces as "
            f"{PREPROCESSING}: scores may be off"
        )
    return ScanRun(  # the notes are logged once the aggregation and calibration are settled
        folder=folder, checkpoint=checkpoint, model=model, info=info, device=str(device),
        threshold=threshold, threshold_source=source, threshold_info=threshold_info,
        aggregation=aggregation, notes=notes, limits=[str(limit) for limit in info.get("limits") or []],
        backend=backend, face_crops=info.get("face_crops"),
    )


# ---------------------------------------------------------------- aggregation, calibration, ensembles

VALIDATION_VIDEOS = "validation.parquet"  # the validate rule's video scores of the validation split
VALIDATION_FACES = "validation.faces.parquet"  # ... and its face scores (any aggregation can be remade)
CALIBRATION_FILE = "calibration.json"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RunFolderError(f"{path} is not valid JSON ({err}); rebuild it with `snakemake {path}`") from None


def _validation_videos(folder: Path, aggregation: str):
    """A run folder's validation video scores made with ``aggregation``, or None when it cannot say."""


    videos_path, faces_path = folder / VALIDATION_VIDEOS, folder / VALIDATION_FACES
    if faces_path.is_file():
        return validation_videos(pd.read_parquet(faces_path), aggregation)
    stored = _read_json(folder / "threshold.json").get("aggregation") if (folder / "threshold.json").is_file() else None
    if videos_path.is_file() and (stored or DEFAULT_AGGREGATION) == aggregation:
        return pd.read_parquet(videos_path)
    return None


def _settle(run: ScanRun, folders: list[Path], aggregation: str | None, calibrate: bool,
            method: str | None = None) -> ScanRun:
    """Fix the run's aggregation, threshold and temperature.

    The stored threshold.json and calibration.json hold when they were made for this aggregation
    (and, for an ensemble folder, this method). Otherwise, where the run folders keep their
    validation scores, the threshold and temperature are chosen again on them, as the pipeline
    would; else the verdict falls back and a note says so.
    """

    stored_aggregation = run.threshold_info.get("aggregation", DEFAULT_AGGREGATION)
    wanted = aggregation or stored_aggregation
    if not is_aggregation(wanted):
        raise RunFolderError(f"unknown aggregation {wanted!r} (known: {', '.join(AGGREGATIONS)}, top<k>_mean)")
    for member in run.members:
        member.aggregation = wanted
    stored_method = run.threshold_info.get("ensemble_method")
    stored_fits = (wanted == stored_aggregation and run.threshold_source == "validation"
                   and (not run.members or stored_method == method))
    calibration = None
    if stored_fits:
        path = run.folder / CALIBRATION_FILE
        if path.is_file():
            calibration = _read_json(path)
            if calibration.get("aggregation", wanted) != wanted:
                calibration = None
    else:
        member_videos = [_validation_videos(folder, wanted) for folder in folders]
        if all(videos is not None for videos in member_videos):
            videos = combine_videos(member_videos, method) if run.members else member_videos[0]
            try:
                run.threshold_info = validation_threshold(videos, wanted, f"{run.folder} validation scores")
                calibration = fit_calibration(videos, wanted)
            except ValueError as err:
                raise RunFolderError(f"{run.folder}: cannot choose a threshold on the validation scores: {err}") from None
            run.threshold, run.threshold_source = float(run.threshold_info["eer_threshold"]), "validation"
            run.notes = [note for note in run.notes if "threshold.json" not in note]
            run.notes.append(f"threshold and temperature chosen again on the validation scores for the "
                             f"{wanted} aggregation" + (f" and {method}" if run.members else ""))
        elif all(m.threshold_source == "published" for m in run.scorers) and (wanted == stored_aggregation
                                                                             or run.members):
            if run.members:  # the members' boundary, 0.5, is the mean probability's too
                run.threshold, run.threshold_source = DEFAULT_THRESHOLD, "published"
                run.notes = [note for note in run.notes if not note.startswith("no threshold.json")]
        elif wanted != stored_aggregation or run.members:
            run.notes.append(
                f"no validation scores ({VALIDATION_FACES}) in the run folder: the threshold "
                f"{run.threshold:.4f} was chosen for other scores than these ({wanted} aggregation"
                + (f", {method}" if run.members else "") + "), so verdicts and probabilities are uncalibrated guesses")
            if run.members:
                run.threshold, run.threshold_source = DEFAULT_THRESHOLD, "default"
    run.aggregation = wanted
    run.raw_threshold = run.threshold
    if calibrate and calibration is not None:
        run.temperature = float(calibration["temperature"])
        run.threshold = run.calibrate(run.raw_threshold)
    elif calibrate and run.threshold_source == "validation":
        run.notes.append(f"no {CALIBRATION_FILE} for these scores: the score is the model's uncalibrated "
                         f"probability (make it with `snakemake {run.folder / CALIBRATION_FILE}`)")
    for note in run.notes:
        log.warning("%s", note)
    return run


def _ensemble(folder: Path, members: list[ScanRun], method: str, info: dict[str, Any],
              threshold: tuple[float, str, dict[str, Any]]) -> ScanRun:
    first = members[0]
    # the members' own notes (other preprocessing...) still matter; their missing thresholds do not
    notes = [f"{m.info.get('model', '?')}/{m.info.get('setup', '?')}: {note}" for m in members for note in m.notes
             if "threshold.json" not in note]
    return ScanRun(
        folder=folder, checkpoint=first.checkpoint, model=first.model, info={**first.info, **info},
        device=first.device, threshold=threshold[0], threshold_source=threshold[1], threshold_info=threshold[2],
        aggregation=first.aggregation, notes=notes, members=members, ensemble_method=method,
        limits=list(dict.fromkeys(limit for m in members for limit in m.limits)), backend=first.backend,
        # the members' crops when they agree; otherwise no one set fits them all
        face_crops=first.face_crops if all(m.face_crops == first.face_crops for m in members) else None,
    )


def load_ensemble_folder(path: str | Path, device: str = "cpu", aggregation: str | None = None,
                         calibrate: bool = True, backend: str = TORCH) -> ScanRun:
    """An ensemble folder (``ensemble.yaml`` naming member run folders and the method) as one ScanRun."""

    folder = Path(path)
    try:
        spec = read_spec(folder)
    except EnsembleError as err:
        raise RunFolderError(str(err)) from None
    members = [_load_single_run(member, device, backend) for member in spec["members"]]
    threshold = read_threshold(folder)
    run = _ensemble(folder, members, spec["method"], {"ensemble": spec["name"]}, threshold)
    if threshold[1] == "default":
        run.notes.append(f"no threshold.json in {folder}")
    return _settle(run, [m.folder for m in members], aggregation, calibrate, spec["method"])


def load_scan_runs(paths: list[str | Path], device: str = "cpu", aggregation: str | None = None,
                   calibrate: bool = True, method: str = "mean_probability", backend: str = TORCH) -> ScanRun:
    """One path: :func:`load_scan_run`. Several run folders: an ensemble of them joined by ``method``,
    its threshold and temperature chosen on the members' validation scores when they have them."""

    if len(paths) == 1:
        return load_scan_run(paths[0], device, aggregation, calibrate, backend)
    try:
        check_method(method)
    except EnsembleError as err:
        raise RunFolderError(str(err)) from None
    members = [_load_single_run(path, device, backend) for path in paths]
    names = " + ".join(f"{m.info.get('model', '?')}/{m.info.get('setup', '?')}" for m in members)
    stored = members[0].threshold_info.get("aggregation", DEFAULT_AGGREGATION)
    # no stored threshold for this combination: chosen again from validation scores, else the default
    common = Path(os.path.commonpath([str(m.folder.resolve()) for m in members]))
    run = _ensemble(common, members, method, {"ensemble": names}, (DEFAULT_THRESHOLD, "default", {"aggregation": stored}))
    return _settle(run, [m.folder for m in members], aggregation or stored, calibrate, method)
