"""Rule ``manifest``: one dataset folder -> results/manifests/{dataset}.parquet."""

from facesleuth.manifests import build_manifest, write_manifest
from facesleuth.runtime import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)

manifest = build_manifest(snakemake.wildcards.dataset, dict(snakemake.params.dataset))  # noqa: F821
write_manifest(manifest, snakemake.output[0])  # noqa: F821
