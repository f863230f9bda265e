"""Celeb-DF-v2 adapter (``celebdf``).

Layout: ``Celeb-real/id<N>_<NNNN>.mp4`` (real, group ``id<N>``), ``YouTube-real/<NNNNN>.mp4``
(real, group ``youtube``), ``Celeb-synthesis/id<T>_id<S>_<NNNN>.mp4`` (fake made from
``Celeb-real/id<T>_<NNNN>``, group ``id<T>``). The folder is the label; the optional
``List_of_testing_videos.txt`` (lines ``<flag> <folder>/<file>.mp4``) restricts the manifest to
the official test list. Its flag follows Celeb-DF's own convention, 1 = REAL and 0 = FAKE, the
opposite of ours, so the adapter checks every flag against the folder and reports disagreements.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from facesleuth.io import LABEL_FAKE, LABEL_REAL
from facesleuth.manifests.common import (
    DiskListing,
    ManifestError,
    dataset_root,
    default_split,
    examples,
    finalize,
    make_row,
    relative_video_path,
    video_id_of,
    warn_duplicates,
)

log = logging.getLogger(__name__)

REAL_FOLDERS = ("Celeb-real", "YouTube-real")
FAKE_FOLDER = "Celeb-synthesis"
FOLDERS = (*REAL_FOLDERS, FAKE_FOLDER)
# Celeb-DF's testing list: 1 means REAL, 0 means FAKE.
FLAG_LABEL = {"1": LABEL_REAL, "0": LABEL_FAKE}

CELEB_REAL = re.compile(r"^(id\d+)_(\d+)$")
CELEB_FAKE = re.compile(r"^(id\d+)_(id\d+)_(\d+)$")


def describe(rel: PurePosixPath) -> tuple[int | None, str | None, str | None]:
    """Label, group and original video id that the folder and file name imply.

    The label is None for a folder outside the layout; group/original are None for names that
    do not follow Celeb-DF's pattern.
    """
    folder, stem = (rel.parts[0] if len(rel.parts) > 1 else ""), video_id_of(rel.name)
    if folder == "YouTube-real":
        return LABEL_REAL, "youtube", None
    if folder == "Celeb-real":
        match = CELEB_REAL.match(stem)
        return LABEL_REAL, match.group(1) if match else None, None
    if folder == FAKE_FOLDER:
        match = CELEB_FAKE.match(stem)
        if not match:
            return LABEL_FAKE, None, None
        target, _source, clip = match.groups()
        return LABEL_FAKE, target, f"Celeb-real/{target}_{clip}"
    return None, None, None


def read_testing_list(path: Path) -> list[tuple[int, int, PurePosixPath]]:
    """``(line number, flag label, relative path)`` for each line of List_of_testing_videos.txt."""
    entries = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path}: not UTF-8 text: {err}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        if len(fields) != 2 or fields[0] not in FLAG_LABEL:
            raise ManifestError(
                f"{path}, line {number}: expected '<flag> <folder>/<file>.mp4' with flag 1 (REAL) or "
                f"0 (FAKE), got {line.strip()!r}"
            )
        rel = relative_video_path(fields[1], path, f"line {number}")
        entries.append((number, FLAG_LABEL[fields[0]], rel))
    return entries


def celebdf_manifest(name: str, dataset: dict[str, Any]) -> pd.DataFrame:
    """Every video of the three folders, or (with ``labels:`` set) those of the testing list."""
    expected = " and/or ".join(f"{f}/" for f in FOLDERS)
    root = dataset_root(name, dataset, expected)
    present = [f for f in FOLDERS if (root / f).is_dir()]
    if not present:
        raise ManifestError(
            f"dataset {name!r}: none of {expected} found in {root}; set datasets.{name}.root to the "
            "Celeb-DF-v2 folder"
        )
    disk = DiskListing()
    on_disk = [PurePosixPath(f) / v for f in present for v in disk.videos(root / f)]
    split = default_split(dataset)
    if dataset.get("labels"):
        rows = _listed_rows(name, dataset, root, split, disk, on_disk)
        source = str(root / str(dataset["labels"]))
    else:
        rows = _disk_rows(name, root, split, on_disk)
        source = f"{root}/{{{','.join(FOLDERS)}}}"
    return finalize(name, rows, source)


def _disk_rows(name: str, root: Path, split: str, on_disk: list[PurePosixPath]) -> list[dict[str, Any]]:
    rows, unnamed = [], []
    for rel in on_disk:
        label, group, original = describe(rel)
        if group is None:
            unnamed.append(str(rel))
        rows.append(make_row(dataset=name, root=root, rel=rel, label=label, split=split, original=original, group=group))
    _warn_unnamed(unnamed)
    return rows


def _listed_rows(
    name: str, dataset: dict[str, Any], root: Path, split: str, disk: DiskListing, on_disk: list[PurePosixPath]
) -> list[dict[str, Any]]:
    source = root / str(dataset["labels"])
    if not source.is_file():
        raise ManifestError(
            f"dataset {name!r}: labels file {source} does not exist; fix datasets.{name}.labels "
            "(List_of_testing_videos.txt, relative to the root) or set it to null to take every video"
        )
    rows: list[dict[str, Any]] = []
    seen: set[PurePosixPath] = set()
    duplicates, disagree, outside, unnamed = [], [], [], []
    for number, flag_label, rel in read_testing_list(source):
        if rel in seen:
            duplicates.append(str(rel))
            continue
        seen.add(rel)
        label, group, original = describe(rel)
        if label is None:
            outside.append(str(rel))
            label = flag_label
        else:
            if label != flag_label:
                disagree.append(f"line {number} {rel}")
            if group is None:
                unnamed.append(str(rel))
        rows.append(
            make_row(
                dataset=name, root=root, rel=rel, label=label, split=split, original=original, group=group,
                listed_in=source, disk=disk,
            )
        )
    if duplicates:
        warn_duplicates(source, duplicates)
    if disagree:
        log.warning(
            "%s: %d flag(s) disagree with their folder (Celeb-DF's flag is 1 REAL, 0 FAKE; labels follow "
            "the folder: %s real, %s fake): %s",
            source, len(disagree), " and ".join(REAL_FOLDERS), FAKE_FOLDER, examples(disagree),
        )
    if outside:
        log.warning(
            "%s: %d video(s) outside %s; their label comes from the list's flag: %s",
            source, len(outside), ", ".join(FOLDERS), examples(outside),
        )
    _warn_unnamed(unnamed)
    left_out = [str(r) for r in on_disk if r not in seen]
    if left_out:
        log.info(
            "%d video(s) on disk are not in %s and are left out (datasets.%s.labels restricts to the list)",
            len(left_out), source, name,
        )
    return rows


def _warn_unnamed(unnamed: list[str]) -> None:
    if unnamed:
        log.warning(
            "%d Celeb-DF video name(s) do not follow id<N>_<NNNN> / id<T>_id<S>_<NNNN>: no group or "
            "original for them: %s",
            len(unnamed), examples(unnamed),
        )
