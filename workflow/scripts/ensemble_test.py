"""Rule ensemble_test: members' video scores on one test set -> the ensemble's predictions and metrics."""

import json
from pathlib import Path

import pandas as pd

from facesleuth.io import VIDEO_PREDICTIONS_SCHEMA, write_json, write_parquet
from facesleuth.runtime import setup_logging
from facesleuth.evaluate.studies import calibrated_metrics, ensemble_metrics

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)

name = snakemake.wildcards.ensemble  # noqa: F821
threshold = json.loads(Path(snakemake.input.threshold).read_text())  # noqa: F821
members = [pd.read_parquet(path) for path in snakemake.input.predictions]  # noqa: F821
videos, result = ensemble_metrics(members, snakemake.params.method, threshold, name, list(snakemake.params.runs))  # noqa: F821
result.update({
    "testset": snakemake.wildcards.testset,  # noqa: F821
    "model": "ensemble",
    "aug": name,
    "validation": threshold,
    "calibration": calibrated_metrics(videos, json.loads(Path(snakemake.input.calibration).read_text())),  # noqa: F821
})
write_parquet(videos, snakemake.output.predictions, VIDEO_PREDICTIONS_SCHEMA)  # noqa: F821
write_json(result, snakemake.output.metrics)  # noqa: F821
