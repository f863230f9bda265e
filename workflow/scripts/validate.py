"""Rule validate: a trained run's video scores on the validation data and its EER threshold.

The validation data is splits.validation_dataset's test-flow faces (scored as a test set's) when
configured, else the split's held-out faces; threshold.json records which.
"""

import torch

from facesleuth.io import VIDEO_PREDICTIONS_SCHEMA, write_json, write_parquet
from facesleuth.predict import validate_on_dataset, validate_run
from facesleuth.runtime import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)
torch.set_num_threads(snakemake.threads)  # noqa: F821

inputs = snakemake.input  # noqa: F821
evaluation = dict(snakemake.params.evaluation)  # noqa: F821
validation = dict(snakemake.params.validation)  # noqa: F821
if "manifest" in inputs.keys():
    videos, threshold = validate_on_dataset(
        inputs.best, list(inputs.faces), list(inputs.status), inputs.manifest, evaluation, validation, device="auto"
    )
else:
    videos, threshold = validate_run(inputs.best, inputs.split, evaluation, device="auto", validation=validation)
write_parquet(videos, snakemake.output.predictions, VIDEO_PREDICTIONS_SCHEMA)  # noqa: F821
write_json(threshold, snakemake.output.threshold)  # noqa: F821
