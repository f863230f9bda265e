"""Rule ensemble_validate: members' validation video scores -> the ensemble's folder, threshold and temperature."""

from pathlib import Path

import pandas as pd

from facesleuth.evaluate.ensembles import write_spec
from facesleuth.io import VIDEO_PREDICTIONS_SCHEMA, write_json, write_parquet
from facesleuth.runtime import setup_logging
from facesleuth.evaluate.studies import ensemble_validation

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)

name = snakemake.wildcards.ensemble  # noqa: F821
method = snakemake.params.method  # noqa: F821
members = [pd.read_parquet(path) for path in snakemake.input.validation]  # noqa: F821
videos, threshold, calibration = ensemble_validation(  # noqa: F821
    members, method, snakemake.params.aggregation, name, dict(snakemake.params.validation)  # noqa: F821
)
write_parquet(videos, snakemake.output.predictions, VIDEO_PREDICTIONS_SCHEMA)  # noqa: F821
write_json(threshold, snakemake.output.threshold)  # noqa: F821
write_json(calibration, snakemake.output.calibration)  # noqa: F821
write_spec(Path(snakemake.output.spec).parent, name, list(snakemake.params.runs), method)  # noqa: F821
