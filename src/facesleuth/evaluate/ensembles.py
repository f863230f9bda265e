"""Ensembles of trained runs: their video scores joined into one (thesis 3.3, "joining only their output").

Each member run scores the videos on its own (its model, its aggregation of face scores); the
ensemble's video score is the mean of the members' fake probabilities, or the sigmoid of the
mean of their logits. The mean logit is the geometric mean of the odds: one member that is very
sure moves the result more than under the mean probability. Both leave an ensemble of one run
equal to that run.

An ensemble folder (``ensemble.yaml`` naming its member run folders and the method, plus the
``threshold.json`` and ``calibration.json`` chosen on its own validation scores) is what the
scanner takes in place of a run folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from facesleuth import registry
from facesleuth.evaluate.calibration import logit, sigmoid
from facesleuth.io import VIDEO_PREDICTIONS_SCHEMA, write_text_atomic

METHODS = registry.ENSEMBLE_METHODS
SPEC_FILE = "ensemble.yaml"


class EnsembleError(ValueError):
    """An ensemble cannot be formed from these members."""


def check_method(method: str) -> str:
    if method not in METHODS:
        raise EnsembleError(f"unknown ensemble method {method!r}; known: {', '.join(METHODS)}")
    return method


def combine_scores(member_scores: Sequence[np.ndarray], method: str) -> np.ndarray:
    """The ensemble's score per item from each member's scores (same items, same order).

    A NaN from any member makes the item's score NaN (it shows up in the metrics as such).
    """
    check_method(method)
    if not member_scores:
        raise EnsembleError("an ensemble needs at least one member")
    stacked = np.vstack([np.asarray(scores, dtype=np.float64).ravel() for scores in member_scores])
    if method == "mean_probability":
        return stacked.mean(axis=0)
    return sigmoid(logit(stacked).mean(axis=0))


def combine_videos(member_videos: Sequence[pd.DataFrame], method: str) -> pd.DataFrame:
    """One video predictions table (VIDEO_PREDICTIONS_SCHEMA) from the members' tables of one test set.

    The members must list the same videos (they were made from the same manifest); the result
    follows the first member's order. A video counts as ``scored`` when every member scored it;
    ``n_faces`` is the first member's (members share the extracted faces).
    """
    if not member_videos:
        raise EnsembleError("an ensemble needs at least one member")
    first = member_videos[0].reset_index(drop=True)
    if first["video_id"].duplicated().any():
        raise EnsembleError("a member's predictions list a video more than once")
    order = pd.Index(first["video_id"])
    aligned = []
    for i, videos in enumerate(member_videos):
        if set(videos["video_id"]) != set(order) or len(videos) != len(order):
            missing = sorted(set(order) ^ set(videos["video_id"]))[:3]
            raise EnsembleError(f"member {i} scored other videos than member 0 (e.g. {missing}): "
                                "ensemble members must be predictions on the same test set")
        aligned.append(videos.set_index("video_id").loc[order])
    combined = first.copy()
    combined["score"] = combine_scores([videos["score"].to_numpy() for videos in aligned], method)
    combined["scored"] = np.logical_and.reduce([videos["scored"].to_numpy(dtype=bool) for videos in aligned])
    return combined[VIDEO_PREDICTIONS_SCHEMA.names]


# ---------------------------------------------------------------- ensemble folders


def write_spec(folder: str | os.PathLike, name: str, members: Sequence[str | os.PathLike], method: str) -> Path:
    """``ensemble.yaml`` in ``folder``: the member run folders (relative to ``folder`` when below
    the same root, so the results tree can move) and the method."""
    check_method(method)
    folder = Path(folder)
    relative = [os.path.relpath(member, folder) for member in members]
    path = folder / SPEC_FILE
    write_text_atomic(yaml.safe_dump({"name": name, "method": method, "members": relative}, sort_keys=False), path)
    return path


def read_spec(folder: str | os.PathLike) -> dict[str, Any]:
    """The ensemble's name, method and member run folders (absolute paths)."""
    folder = Path(folder)
    path = folder / SPEC_FILE
    if not path.is_file():
        raise EnsembleError(f"{folder} is not an ensemble folder: it has no {SPEC_FILE}")
    spec = yaml.safe_load(path.read_text()) or {}
    members = spec.get("members") or []
    if not members:
        raise EnsembleError(f"{path} names no member runs")
    check_method(str(spec.get("method")))
    return {
        "name": str(spec.get("name") or folder.name),
        "method": str(spec["method"]),
        "members": [(folder / member).resolve() for member in members],
    }


def is_ensemble_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / SPEC_FILE).is_file()
