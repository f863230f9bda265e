"""Rule splits: train-flow faces + status + manifests -> balanced train/validation split."""

from facesleuth.io import read_parquets, write_csv
from facesleuth.train.splits import make_splits, write_split
from facesleuth.runtime import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected)

faces_paths = list(snakemake.input.faces)  # noqa: F821
# The split is chosen on the face metadata; the crops are copied file by file afterwards.
face_columns = ["dataset", "video_id", "face_id", "label"]
faces = read_parquets(faces_paths, columns=face_columns)
status = read_parquets(snakemake.input.status)  # noqa: F821
manifests = read_parquets(snakemake.input.manifests)  # noqa: F821
split, summary = make_splits(faces, status, dict(snakemake.params.splits), manifest_df=manifests)  # noqa: F821
write_split(split, faces_paths, snakemake.output.split)  # noqa: F821
write_csv(summary, snakemake.output.summary)  # noqa: F821
