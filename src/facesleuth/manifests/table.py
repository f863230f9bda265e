"""Plain CSV adapter (``csv``), for any dataset without an adapter of its own.

``labels:`` names a CSV (relative to the root) with columns ``path,label`` and optionally
``split,original,group,tags``; paths are relative to the root and tags are ``;``-separated.
``original`` may be given as the original's path or its video id; either becomes the video id.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from facesleuth.manifests.common import (
    DiskListing,
    ManifestError,
    dataset_root,
    default_split,
    finalize,
    label_at,
    make_row,
    read_csv_table,
    relative_video_path,
    split_names,
    video_id_of,
    warn_duplicates,
    warn_unlisted_beside,
)

REQUIRED = ("path", "label")
USAGE = "path,label[,split,original,group,tags]"


def csv_manifest(name: str, dataset: dict[str, Any]) -> pd.DataFrame:
    """Rows of the CSV named by ``labels:``; listed files absent on disk are ``missing``."""
    if not dataset.get("labels"):
        raise ManifestError(f"datasets.{name}.labels: a csv dataset needs labels: <file.csv> with columns {USAGE}")
    root = dataset_root(name, dataset, f"the videos and the CSV {dataset['labels']}")
    source = root / str(dataset["labels"])
    if not source.is_file():
        raise ManifestError(
            f"dataset {name!r}: labels file {source} does not exist; fix datasets.{name}.labels "
            "(a CSV relative to the root)"
        )
    disk = DiskListing()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    for line, cells in read_csv_table(source, REQUIRED, USAGE):
        where = f"line {line}"
        rel = relative_video_path(cells["path"], source, where)
        if str(rel) in seen:
            duplicates.append(str(rel))
            continue
        seen.add(str(rel))
        original = cells.get("original") or None
        if original is not None:
            original = video_id_of(relative_video_path(original, source, f"{where}, column original"))
        rows.append(
            make_row(
                dataset=name,
                root=root,
                rel=rel,
                label=label_at(cells["label"], source, where),
                split=cells.get("split") or default_split(dataset),
                original=original,
                group=cells.get("group") or None,
                tags=split_names(cells.get("tags")),
                listed_in=source,
                disk=disk,
            )
        )
    if duplicates:
        warn_duplicates(source, duplicates)
    warn_unlisted_beside(root, seen, disk, str(source))
    if not rows:
        raise ManifestError(f"{source}: lists no videos; add rows {USAGE} or fix datasets.{name}.labels")
    return finalize(name, rows, str(source))
