"""Rule validate: a trained run's face and video scores on the validation split, its EER threshold and temperature."""

import torch

from facesleuth.io import FACE_PREDICTIONS_SCHEMA, VIDEO_PREDICTIONS_SCHEMA, write_json, write_parquet
from facesleuth.predict import score_validation_faces, validation_threshold, validation_videos
from facesleuth.runtime import setup_logging
from facesleuth.studies import fit_calibration

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)
torch.set_num_threads(snakemake.threads)  # noqa: F821

evaluation = dict(snakemake.params.evaluation)  # noqa: F821
aggregation = evaluation.get("aggregation") or "mean"
faces = score_validation_faces(snakemake.input.best, snakemake.input.split, evaluation, device="auto")  # noqa: F821
videos = validation_videos(faces, aggregation)
write_parquet(faces, snakemake.output.faces, FACE_PREDICTIONS_SCHEMA)  # noqa: F821
write_parquet(videos, snakemake.output.predictions, VIDEO_PREDICTIONS_SCHEMA)  # noqa: F821
write_json(validation_threshold(videos, aggregation, snakemake.input.split), snakemake.output.threshold)  # noqa: F821
write_json(fit_calibration(videos, aggregation), snakemake.output.calibration)  # noqa: F821
