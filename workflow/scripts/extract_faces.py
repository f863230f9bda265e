"""Snakemake script of rule extract_faces: one chunk of a manifest -> faces + status Parquet."""

import pandas as pd

from facesleuth.extract.detect import set_cpu_threads
from facesleuth.extract.flows import extract_chunk
from facesleuth.io import FACES_SCHEMA, STATUS_SCHEMA, write_parquet
from facesleuth.runtime import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
set_cpu_threads(snakemake.threads)  # noqa: F821 (jobs side by side must not oversubscribe cores)

params = snakemake.params.extraction  # noqa: F821
if list(params["faces_columns"]) != FACES_SCHEMA.names:  # the rule's rerun trigger must track the contract
    raise RuntimeError(f"rule extract_faces passes faces_columns {params['faces_columns']}, not {FACES_SCHEMA.names}")
faces, status = extract_chunk(
    pd.read_parquet(snakemake.input.manifest),  # noqa: F821
    chunk=int(snakemake.wildcards.chunk),  # noqa: F821
    chunks=int(params["chunks"]),
    flow=params["flow"],
    detection=params["detection"],
    flow_settings=params["flow_settings"],
)
write_parquet(faces, snakemake.output.faces, FACES_SCHEMA)  # noqa: F821
write_parquet(status, snakemake.output.status, STATUS_SCHEMA)  # noqa: F821
