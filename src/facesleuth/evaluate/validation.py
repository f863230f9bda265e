"""A run's whole validation, as rule validate records it: the validation face and video scores,
the EER threshold chosen on those video scores and the calibration temperature fitted on them.

The validation data is a validation dataset's test-flow faces, scored as a test set's
(:func:`facesleuth.evaluate.predict.validate_on_dataset`), or the split's held-out train-flow
faces (:func:`facesleuth.evaluate.predict.validate_on_holdout`). A module of its own because
the temperature comes from :mod:`facesleuth.evaluate.studies`, which imports
:mod:`facesleuth.evaluate.predict`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from facesleuth.evaluate.predict import validate_on_dataset, validate_on_holdout
from facesleuth.evaluate.studies import fit_calibration

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ValidationDataset:
    """A validation dataset's test-flow extraction: its faces and status files and its manifest."""

    faces: Sequence[str | os.PathLike]
    status: Sequence[str | os.PathLike]
    manifest: str | os.PathLike


class RunValidation(NamedTuple):
    """What a run's validation records (rule validate: validation.faces.parquet, validation.parquet,
    threshold.json, calibration.json)."""

    faces: pd.DataFrame
    videos: pd.DataFrame
    threshold: dict[str, Any]
    calibration: dict[str, Any]


def validate_run(
    run_dir: str | os.PathLike,
    data: ValidationDataset | str | os.PathLike,
    evaluation: dict[str, Any],
    validation: dict[str, Any],
    device: "str | torch.device" = "auto",
) -> RunValidation:
    """The run's validation on ``data``: a :class:`ValidationDataset`, or the path of the split
    whose held-out faces to use.

    ``evaluation``: the config's evaluation settings (aggregation, no_face_score, batch_size);
    ``validation``: what the data is, as threshold.json records it
    (:func:`facesleuth.config.validation_source`). The temperature is fitted on the same video
    scores the threshold is chosen on.
    """
    if isinstance(data, ValidationDataset):
        faces, videos, threshold = validate_on_dataset(run_dir, list(data.faces), list(data.status), data.manifest,
                                                       evaluation, validation, device=device)
    else:
        faces, videos, threshold = validate_on_holdout(run_dir, data, evaluation, device, validation)
    calibration = fit_calibration(videos, evaluation.get("aggregation") or "mean")
    return RunValidation(faces, videos, threshold, calibration)
