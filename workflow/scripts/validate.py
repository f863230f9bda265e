"""Rule validate: a trained run's face and video scores on the validation data, its EER threshold and temperature.

The validation data is splits.validation_dataset's test-flow faces (scored as a test set's) when
configured, else the split's held-out faces; threshold.json records which, and the temperature
is fitted on the same video scores.
"""

import torch

from facesleuth.io import FACE_PREDICTIONS_SCHEMA, VIDEO_PREDICTIONS_SCHEMA, write_json, write_parquet
from facesleuth.evaluate.predict import score_validation_faces, validate_on_dataset, validation_threshold, validation_videos
from facesleuth.runtime import job_device, setup_logging
from facesleuth.evaluate.studies import fit_calibration

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)
torch.set_num_threads(snakemake.threads)  # noqa: F821

inputs = snakemake.input  # noqa: F821
evaluation = dict(snakemake.params.evaluation)  # noqa: F821
validation = dict(snakemake.params.validation)  # noqa: F821
aggregation = evaluation.get("aggregation") or "mean"
device = job_device(snakemake.resources.get("gpu", 0))  # noqa: F821 (the GPU this job claimed, or the CPU)
if "manifest" in inputs.keys():  # a validation dataset (test flow)
    faces, videos, threshold = validate_on_dataset(
        inputs.best, list(inputs.faces), list(inputs.status), inputs.manifest, evaluation, validation, device=device
    )
else:  # the split's hold-out
    faces = score_validation_faces(inputs.best, inputs.split, evaluation, device=device)
    videos = validation_videos(faces, aggregation)
    threshold = validation_threshold(videos, aggregation, inputs.split, validation)
write_parquet(faces, snakemake.output.faces, FACE_PREDICTIONS_SCHEMA)  # noqa: F821
write_parquet(videos, snakemake.output.predictions, VIDEO_PREDICTIONS_SCHEMA)  # noqa: F821
write_json(threshold, snakemake.output.threshold)  # noqa: F821
write_json(fit_calibration(videos, aggregation), snakemake.output.calibration)  # noqa: F821
