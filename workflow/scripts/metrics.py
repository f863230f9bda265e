"""Rule metrics: one run's video predictions on one test set -> metrics JSON (with the calibrated log loss)."""

import json
from pathlib import Path

import pandas as pd

from facesleuth.io import write_json
from facesleuth.evaluate.metrics import evaluate
from facesleuth.runtime import setup_logging
from facesleuth.evaluate.studies import calibrated_metrics

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)

videos = pd.read_parquet(snakemake.input.predictions)  # noqa: F821
threshold = json.loads(Path(snakemake.input.threshold).read_text())  # noqa: F821
if "eer_threshold" not in threshold:
    raise KeyError(f"{snakemake.input.threshold} has no 'eer_threshold'; rerun the validate rule")  # noqa: F821
calibration = json.loads(Path(snakemake.input.calibration).read_text())  # noqa: F821
result = {
    "testset": snakemake.wildcards.testset,  # noqa: F821
    "model": snakemake.wildcards.model,  # noqa: F821
    "aug": snakemake.wildcards.aug,  # noqa: F821
    **evaluate(videos, threshold["eer_threshold"]),
    "validation": threshold,
    "calibration": calibrated_metrics(videos, calibration),
}
if "trainset" in snakemake.wildcards.keys():  # noqa: F821 - a run of the generalisation matrix
    result["trainset"] = snakemake.wildcards.trainset  # noqa: F821
write_json(result, snakemake.output[0])  # noqa: F821
