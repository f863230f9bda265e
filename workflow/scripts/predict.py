"""Rule predict: a trained run x a test set's faces -> face scores and one score per manifest video."""

import torch

from facesleuth.io import FACE_PREDICTIONS_SCHEMA, VIDEO_PREDICTIONS_SCHEMA, write_parquet
from facesleuth.evaluate.predict import predict_testset
from facesleuth.runtime import job_device, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)
torch.set_num_threads(snakemake.threads)  # noqa: F821

videos, faces = predict_testset(
    snakemake.input.best,  # noqa: F821
    list(snakemake.input.faces),  # noqa: F821
    list(snakemake.input.status),  # noqa: F821
    snakemake.input.manifest,  # noqa: F821
    dict(snakemake.params.evaluation),  # noqa: F821
    device=job_device(snakemake.resources.get("gpu", 0)),  # noqa: F821 (the GPU this job claimed, or the CPU)
)
write_parquet(videos, snakemake.output.videos, VIDEO_PREDICTIONS_SCHEMA)  # noqa: F821
write_parquet(faces, snakemake.output.faces, FACE_PREDICTIONS_SCHEMA)  # noqa: F821
