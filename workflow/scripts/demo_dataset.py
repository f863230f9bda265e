"""Rule ``demo_dataset``: generate the embedded demo's dataset folders and ``<out>/demo.json``."""

from pathlib import Path

from facesleuth.demo import DEMO_JSON, generate_demo
from facesleuth.runtime import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)

summary_path = Path(snakemake.output[0])  # noqa: F821
if summary_path.name != DEMO_JSON:
    raise ValueError(f"rule demo_dataset: its output must be <demo.out>/{DEMO_JSON}, got {summary_path}")
# The datasets are generated beside demo.json, which is written last.
generate_demo(summary_path.parent, dict(snakemake.params.demo), workers=snakemake.threads)  # noqa: F821
