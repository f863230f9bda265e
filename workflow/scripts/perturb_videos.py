"""Rule perturb_videos: one chunk of a test set's manifest -> perturbed lossless videos + their manifest."""

import pandas as pd

from facesleuth.io import MANIFEST_SCHEMA, write_parquet
from facesleuth.evaluate.robustness import perturb_chunk
from facesleuth.runtime import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)

rows = perturb_chunk(
    pd.read_parquet(snakemake.input.manifest),  # noqa: F821
    chunk=int(snakemake.wildcards.chunk),  # noqa: F821
    chunks=int(snakemake.params.chunks),  # noqa: F821
    perturbation=snakemake.wildcards.perturbation,  # noqa: F821
    out_dir=snakemake.output.videos,  # noqa: F821
    seed=int(snakemake.params.seed),  # noqa: F821
)
write_parquet(rows, snakemake.output.manifest, MANIFEST_SCHEMA)  # noqa: F821
