"""Snakemake script of rule extraction_summary: chunk status files -> one status table + counts CSV."""

import pandas as pd

from facesleuth.extract.flows import merge_status, summarize_status
from facesleuth.io import STATUS_SCHEMA, write_csv, write_parquet
from facesleuth.runtime import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)

manifest = pd.read_parquet(snakemake.input.manifest, columns=["video_id"])  # noqa: F821
status = merge_status(manifest, [pd.read_parquet(path) for path in snakemake.input.status])  # noqa: F821
summary = summarize_status(status)
log.info("extraction of %d videos:\n%s", len(status), summary.to_string(index=False))
write_parquet(status, snakemake.output.status, STATUS_SCHEMA)  # noqa: F821
write_csv(summary, snakemake.output.summary)  # noqa: F821
