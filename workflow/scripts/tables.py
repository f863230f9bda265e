"""Rules table_*: the pipeline's outputs -> one thesis table as CSV and Markdown."""

from facesleuth.runtime import setup_logging
from facesleuth.report.tables import make_table

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)

inputs = {name: [files] if isinstance(files, str) else list(files) for name, files in snakemake.input.items()}  # noqa: F821
make_table(
    snakemake.params.table,  # noqa: F821
    inputs,
    dict(snakemake.params.settings),  # noqa: F821
    snakemake.output.csv,  # noqa: F821
    snakemake.output.md,  # noqa: F821
)
