"""Rule validate: a trained run's face and video scores on the validation data, its EER threshold and temperature.

The validation data is splits.validation_dataset's test-flow faces (scored as a test set's) when
configured, else the split's held-out faces; threshold.json records which, and the temperature
is fitted on the same video scores (facesleuth.evaluate.validation.validate_run).
"""

import torch

from facesleuth.io import FACE_PREDICTIONS_SCHEMA, VIDEO_PREDICTIONS_SCHEMA, write_json, write_parquet
from facesleuth.evaluate.validation import ValidationDataset, validate_run
from facesleuth.runtime import job_device, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)
torch.set_num_threads(snakemake.threads)  # noqa: F821

inputs = snakemake.input  # noqa: F821
device = job_device(snakemake.resources.get("gpu", 0))  # noqa: F821 (the GPU this job claimed, or the CPU)
if "manifest" in inputs.keys():  # a validation dataset (test flow)
    data = ValidationDataset(list(inputs.faces), list(inputs.status), inputs.manifest)
else:  # the split's hold-out
    data = inputs.split
result = validate_run(inputs.best, data, dict(snakemake.params.evaluation), dict(snakemake.params.validation),  # noqa: F821
                      device=device)
write_parquet(result.faces, snakemake.output.faces, FACE_PREDICTIONS_SCHEMA)  # noqa: F821
write_parquet(result.videos, snakemake.output.predictions, VIDEO_PREDICTIONS_SCHEMA)  # noqa: F821
write_json(result.threshold, snakemake.output.threshold)  # noqa: F821
write_json(result.calibration, snakemake.output.calibration)  # noqa: F821
