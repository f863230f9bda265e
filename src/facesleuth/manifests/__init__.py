"""Dataset folders -> manifests: one row per listed video (``facesleuth.io.MANIFEST_SCHEMA``).

Each format has its adapter (``dfdc``, ``celebdf``, ``ffpp``, ``table`` for plain CSV); all
return the same columns, sorted by ``video_id``, every video once, with files that a labels file
lists but the disk lacks kept as ``missing`` rows (nothing is dropped silently).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from facesleuth.io import MANIFEST_SCHEMA, write_parquet
from facesleuth.manifests.celebdf import celebdf_manifest
from facesleuth.manifests.common import ManifestError, dataset_root, parse_label
from facesleuth.manifests.dfdc import (
    TRAIN_METADATA,
    dfdc_test_manifest,
    dfdc_train_manifest,
    tags_file,
    test_labels_file,
    train_parts,
)
from facesleuth.manifests.ffpp import ffpp_manifest
from facesleuth.manifests.table import csv_manifest

Adapter = Callable[[str, dict[str, Any]], pd.DataFrame]

ADAPTERS: dict[str, Adapter] = {
    "dfdc_train": dfdc_train_manifest,
    "dfdc_test": dfdc_test_manifest,
    "celebdf": celebdf_manifest,
    "ffpp": ffpp_manifest,
    "csv": csv_manifest,
}


def build_manifest(name: str, dataset: dict[str, Any]) -> pd.DataFrame:
    """The manifest of dataset ``name`` from its config entry (``config["datasets"][name]``).

    Raises :class:`ManifestError` for an unknown format, a missing root or an unreadable labels
    file, naming the file or the config key to fix.
    """
    dataset = dict(dataset)
    fmt = dataset.get("format")
    adapter = ADAPTERS.get(str(fmt))
    if adapter is None:
        raise ManifestError(f"datasets.{name}.format: unknown format {fmt!r} (known: {', '.join(ADAPTERS)})")
    return adapter(name, dataset)


def source_files(name: str, dataset: dict[str, Any]) -> list[Path]:
    """The labels/metadata files a manifest is read from, for Snakemake to rerun on change.

    Checked at planning time, so a wrong root fails before any job runs. FaceForensics++ has no
    labels file (labels come from the layout), so only its root is checked, and its split file
    when one is named.
    """
    dataset = dict(dataset)
    fmt = dataset.get("format")
    if fmt not in ADAPTERS:
        raise ManifestError(f"datasets.{name}.format: unknown format {fmt!r} (known: {', '.join(ADAPTERS)})")
    root = dataset_root(name, dataset, f"a {fmt} dataset")
    if fmt == "dfdc_train":
        return [part / TRAIN_METADATA for part in train_parts(root) if (part / TRAIN_METADATA).is_file()]
    if fmt == "dfdc_test":
        tags = tags_file(name, dataset, root)
        return [test_labels_file(name, dataset, root)] + ([tags] if tags else [])
    if fmt in ("celebdf", "csv", "ffpp") and dataset.get("labels"):
        return [root / str(dataset["labels"])]
    return []


def write_manifest(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a manifest atomically with its schema."""
    return write_parquet(df, path, MANIFEST_SCHEMA)


__all__ = ["ADAPTERS", "ManifestError", "build_manifest", "parse_label", "source_files", "write_manifest"]
