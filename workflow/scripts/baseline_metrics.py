"""Rule baseline_metrics: a baseline's video predictions on one test set -> metrics JSON (at its run folder's threshold)."""

import pandas as pd
import yaml

from facesleuth.evaluate.baselines import baseline_metrics
from facesleuth.io import write_json
from facesleuth.runtime import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)

videos = pd.read_parquet(snakemake.input.predictions)  # noqa: F821
spec = yaml.safe_load(open(snakemake.input.run)) or {}  # noqa: F821
result = baseline_metrics(videos, spec, snakemake.wildcards.baseline, snakemake.wildcards.testset)  # noqa: F821
write_json(result, snakemake.output[0])  # noqa: F821
