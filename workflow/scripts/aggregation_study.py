"""Rule aggregation_study: every grid run's face scores on one test set -> log loss and AUC per aggregation."""

from pathlib import Path

import pandas as pd

from facesleuth.io import read_parquets, write_json
from facesleuth.runtime import setup_logging
from facesleuth.evaluate.studies import aggregation_metrics

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)

testset = snakemake.wildcards.testset  # noqa: F821
manifest = pd.read_parquet(snakemake.input.manifest)  # noqa: F821
status = read_parquets(list(snakemake.input.status), columns=["video_id", "status"])  # noqa: F821
records = []
for path in map(Path, snakemake.input.face_scores):  # noqa: F821
    # results/predictions/<testset>/<model>/<aug>.faces.parquet
    model, aug = path.parent.name, path.name.removesuffix(".faces.parquet")
    faces = pd.read_parquet(path, columns=["video_id", "track", "score"])
    by_aggregation = aggregation_metrics(faces, status, manifest, list(snakemake.params.aggregations),  # noqa: F821
                                         snakemake.params.no_face_score)  # noqa: F821
    records.append({"model": model, "aug": aug, "testset": testset, "aggregations": by_aggregation})
    log.info("%s/%s: %s", model, aug, {name: round(m["log_loss"], 4) for name, m in by_aggregation.items()})
write_json({"testset": testset, "runs": records}, snakemake.output[0])  # noqa: F821
