"""Rule validate: a trained run's video scores on the validation split and its EER threshold."""

import torch

from facesleuth.io import VIDEO_PREDICTIONS_SCHEMA, write_json, write_parquet
from facesleuth.predict import validate_run
from facesleuth.runtime import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)
torch.set_num_threads(snakemake.threads)  # noqa: F821

videos, threshold = validate_run(
    snakemake.input.best,  # noqa: F821
    snakemake.input.split,  # noqa: F821
    dict(snakemake.params.evaluation),  # noqa: F821
    device="auto",
)
write_parquet(videos, snakemake.output.predictions, VIDEO_PREDICTIONS_SCHEMA)  # noqa: F821
write_json(threshold, snakemake.output.threshold)  # noqa: F821
