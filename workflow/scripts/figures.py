"""Rules figure_*: the pipeline's outputs -> one thesis figure (two for figure_losses) as PNG."""

from facesleuth.report.figures import make_figures
from facesleuth.runtime import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)

inputs = {name: [files] if isinstance(files, str) else list(files) for name, files in snakemake.input.items()}  # noqa: F821
make_figures(
    snakemake.params.figure,  # noqa: F821
    inputs,
    dict(snakemake.params.settings),  # noqa: F821
    dict(snakemake.output.items()),  # noqa: F821
)
