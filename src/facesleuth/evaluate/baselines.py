"""Published detectors as baselines of the study (config ``baselines``).

A baseline is an imported run folder (:mod:`facesleuth.published.runfolder`; a built-in one by
its name, e.g. ``Meso4_DF``) that the workflow scores exactly as it scores a grid run: the same
test-flow faces files, the same face-score aggregation (``evaluation.aggregation``), its own
preprocessing (run.yaml ``preprocessing``, :func:`facesleuth.evaluate.predict.predict_testset`). It is
not trained by the pipeline, so it has no validation threshold of the study: the threshold-
dependent metrics of its ``validation`` kind use the run folder's own threshold (run.yaml
``threshold.value``; the shipped MesoNet runs: 0.5, the network's decision boundary), which is
what a user of the detector gets and keeps the study's validation data out of its scores
(docs/weights.md, "Baselines in the study"). Its rows carry ``kind`` baseline and ``aug``
:data:`facesleuth.registry.BASELINE`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from facesleuth import registry
from facesleuth.evaluate.metrics import evaluate

KIND = "baseline"
#: The description of a baseline's ``validation`` threshold kind in its metrics JSON.
OWN_THRESHOLD = "the baseline's own threshold from its run folder (run.yaml threshold; not chosen on the study's data)"


class BaselineError(ValueError):
    """A configured baseline cannot be found or is not an imported detector; the message says which."""


def resolve_baseline(source: str | os.PathLike, base: str | os.PathLike = ".") -> Path:
    """The run folder a baseline's ``source`` names: a built-in detector's name, else a path
    (relative to ``base``, the workflow's working directory) of an imported run folder."""
    from facesleuth.published.builtin import BUILTIN_RUNS
    from facesleuth.published.runfolder import is_published_run

    if str(source) in BUILTIN_RUNS:
        return BUILTIN_RUNS[str(source)]
    folder = Path(base) / Path(source).expanduser()
    if not is_published_run(folder):
        what = "is no folder" if not folder.is_dir() else "holds no run.yaml of kind published"
        raise BaselineError(
            f"baseline {str(source)!r}: {folder} {what}; name a built-in detector ({', '.join(BUILTIN_RUNS)}) or "
            "a run folder made by facesleuth weights import")
    return folder


def baseline_files(source: str | os.PathLike, base: str | os.PathLike = ".") -> dict[str, str]:
    """The files of a baseline's run folder its predictions depend on: ``run`` (run.yaml) and ``weights``."""
    from facesleuth.published.runfolder import RUN_FILE, read_run_yaml

    folder = resolve_baseline(source, base)
    spec = read_run_yaml(folder) or {}
    weights = folder / str(spec.get("weights", ""))
    if not spec.get("weights") or not weights.is_file():
        raise BaselineError(f"baseline {str(source)!r}: {folder / RUN_FILE} names the weights "
                            f"{spec.get('weights')!r}, which are not in the folder")
    return {"run": str(folder / RUN_FILE), "weights": str(weights)}


def own_threshold(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A run.yaml's threshold as ``{value, source, chosen_on}``; a bare number is accepted too."""
    threshold = spec.get("threshold")
    if isinstance(threshold, Mapping):
        value = threshold.get("value")
        recorded = {"source": threshold.get("source"), "chosen_on": threshold.get("chosen_on")}
    else:
        value, recorded = threshold, {"source": None, "chosen_on": None}
    if value is None or not np.isfinite(float(value)):
        raise BaselineError(f"the run folder's threshold is {value!r}: a baseline needs a finite run.yaml threshold.value")
    return {"value": float(value), **recorded}


def baseline_metrics(videos_df: pd.DataFrame, spec: Mapping[str, Any], name: str, testset: str) -> dict[str, Any]:
    """The metrics JSON of baseline ``name`` on ``testset`` from its video predictions and its run.yaml ``spec``.

    The same numbers as a grid run's (:func:`facesleuth.evaluate.metrics.evaluate`), at the run folder's own
    threshold in place of a validation EER threshold, plus what the baseline is.
    """
    threshold = own_threshold(spec)
    result = evaluate(videos_df, threshold["value"])
    result["thresholds"]["validation"]["description"] = OWN_THRESHOLD
    result["at_threshold"]["validation"]["description"] = OWN_THRESHOLD
    return {
        "testset": testset,
        "model": name,
        "aug": registry.BASELINE,
        "kind": KIND,
        "baseline": name,
        **result,
        "validation": {"eer_threshold": threshold["value"], "source": threshold["source"] or "run_folder",
                       "chosen_on": threshold["chosen_on"]},
        "trained_on": list(spec.get("trained_on") or []),
        "format": spec.get("format"),
        "variant": spec.get("variant"),
    }
