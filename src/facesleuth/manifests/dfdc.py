"""DFDC adapters: the train parts (``dfdc_train``) and the test/validation sets (``dfdc_test``).

Layouts (docs: formats.md):

- train: ``<root>/dfdc_train_part_<N>/metadata.json`` = ``{"<file>.mp4": {"label", "split",
  "original"}}`` with the videos beside it. Real downloads are often partial, so listed files that
  are absent become ``missing`` rows rather than errors.
- test: videos in ``<root>`` (or the ``videos:`` subfolder, or a subfolder named in the labels
  file's paths) and ``labels.csv`` or ``metadata.json``. The public DFDC test set ships
  ``labels.csv`` with the columns ``filename,label`` (label 1 fake, 0 real) and no per-video
  tags. Augmenter and distractor tags (``;``-separated names) come from columns of the labels
  file or from a separate tags file, both named under the dataset's ``tags:`` (defaults:
  columns ``augmenters`` and ``distractors``, no file). Without tags the manifest's ``tags``
  are empty, and Tables 3.2-3.5 say that the test set has no tags.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from facesleuth.manifests.common import (
    DiskListing,
    ManifestError,
    dataset_root,
    finalize,
    label_at,
    make_row,
    read_csv_table,
    read_json_object,
    relative_video_path,
    split_names,
    video_id_of,
    warn_duplicates,
    warn_unlisted,
    warn_unlisted_beside,
)

log = logging.getLogger(__name__)

PART_PATTERN = re.compile(r"^dfdc_train_part_(\d+)$")
TRAIN_METADATA = "metadata.json"
TEST_LABEL_FILES = ("labels.csv", "metadata.json")
TEST_GROUP = "test"
TEST_SPLIT = "test"
#: Tag kind -> the ``tags:`` key naming its column, and that column's default name.
TAG_COLUMNS = {"augmenter": ("augmenters", "augmenters"), "distractor": ("distractors", "distractors")}


# ---------------------------------------------------------------- train parts


def train_parts(root: Path) -> list[Path]:
    """``dfdc_train_part_<N>`` folders in numeric order (part_2 before part_10)."""
    parts = [p for p in root.iterdir() if p.is_dir() and PART_PATTERN.match(p.name)]
    return sorted(parts, key=lambda p: int(PART_PATTERN.match(p.name).group(1)))


def _train_entry(entry: Any, metadata: Path, filename: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or "label" not in entry:
        raise ManifestError(
            f"{metadata}: entry {filename!r} should be an object with a \"label\" (and \"split\", "
            f"\"original\" for fakes), got {entry!r}"
        )
    return entry


def dfdc_train_manifest(name: str, dataset: dict[str, Any]) -> pd.DataFrame:
    """Rows of every ``dfdc_train_part_<N>/metadata.json`` under the root; group = the part."""
    root = dataset_root(name, dataset, "dfdc_train_part_<N>/metadata.json folders")
    parts = train_parts(root)
    labelled = [p for p in parts if (p / TRAIN_METADATA).is_file()]
    if not labelled:
        raise ManifestError(
            f"dataset {name!r}: no dfdc_train_part_<N>/{TRAIN_METADATA} under {root} "
            f"(found {len(parts)} part folder(s)); set datasets.{name}.root to the folder holding the "
            "unzipped dfdc_train_part_* folders."
        )
    disk = DiskListing()
    for part in parts:
        if part not in labelled:
            log.warning("%s has no %s: its %d video(s) are left out (no labels)", part, TRAIN_METADATA, len(disk.videos(part)))

    metadata = {part.name: read_json_object(part / TRAIN_METADATA) for part in labelled}
    # Where each listed stem lives, so an original listed in another part resolves there.
    parts_of_stem: dict[str, list[str]] = {}
    for part_name, entries in metadata.items():
        for filename in entries:
            parts_of_stem.setdefault(video_id_of(filename), []).append(part_name)

    rows: list[dict[str, Any]] = []
    unlisted: list[str] = []
    for part in tqdm(labelled, desc=f"manifest {name}", unit="part", disable=None):
        source = part / TRAIN_METADATA
        entries = metadata[part.name]
        for filename, raw in entries.items():
            entry = _train_entry(raw, source, filename)
            plain = filename.strip()
            if not plain or "/" in plain or "\\" in plain or plain in (".", ".."):
                rel = str(PurePosixPath(part.name) / relative_video_path(filename, source, f"entry {filename!r}"))
            else:  # DFDC's plain file names: a string join, pathlib per row was most of the time
                rel = f"{part.name}/{plain}"
            original = None
            if entry.get("original"):
                original = _resolve_original(str(entry["original"]), part.name, parts_of_stem)
            rows.append(
                make_row(
                    dataset=name,
                    root=root,
                    rel=rel,
                    label=label_at(entry["label"], source, f"entry {filename!r}"),
                    split=entry.get("split") or dataset.get("flow") or "train",
                    original=original,
                    group=part.name,
                    listed_in=source,
                    disk=disk,
                )
            )
        listed = set(entries)
        unlisted += [f"{part.name}/{v}" for v in disk.videos(part) if v not in listed]
    warn_unlisted(unlisted, f"the parts' {TRAIN_METADATA}")
    return finalize(name, rows, f"{root}/dfdc_train_part_*/{TRAIN_METADATA}")


def _resolve_original(filename: str, part: str, parts_of_stem: dict[str, list[str]]) -> str:
    """The original's video id: in the fake's own part unless only another part lists it."""
    stem = video_id_of(filename.rstrip("/").rsplit("/", 1)[-1])
    holders = parts_of_stem.get(stem, [])
    home = part if part in holders or not holders else holders[0]
    return f"{home}/{stem}"


# ---------------------------------------------------------------- test / validation sets


def test_labels_file(name: str, dataset: dict[str, Any], root: Path) -> Path:
    """``labels:`` when set, else the first of labels.csv, metadata.json that exists."""
    if dataset.get("labels"):
        path = root / str(dataset["labels"])
        if not path.is_file():
            raise ManifestError(
                f"dataset {name!r}: labels file {path} does not exist; fix datasets.{name}.labels "
                f"(relative to the root {root}) or set it to null to find {' or '.join(TEST_LABEL_FILES)}"
            )
        return path
    for candidate in TEST_LABEL_FILES:
        if (root / candidate).is_file():
            return root / candidate
    raise ManifestError(
        f"dataset {name!r}: neither {' nor '.join(TEST_LABEL_FILES)} found in {root}; "
        f"fix datasets.{name}.root or name the labels file with datasets.{name}.labels"
    )


def _test_entries_csv(path: Path) -> list[tuple[str, str, Any, dict[str, Any]]]:
    rows = read_csv_table(path, ["filename", "label"], "filename,label[,tag columns]")
    return [(r["filename"], f"line {line}", r["label"], r) for line, r in rows]


def _test_entries_json(path: Path) -> list[tuple[str, str, Any, dict[str, Any]]]:
    entries = []
    for filename, entry in read_json_object(path).items():
        if not isinstance(entry, dict) or "label" not in entry:
            raise ManifestError(
                f"{path}: entry {filename!r} should be an object with a \"label\" (and optional "
                f"tag lists such as \"augmenters\", \"distractors\"), got {entry!r}"
            )
        entries.append((filename, f"entry {filename!r}", entry["label"], entry))
    return entries


def tag_columns(name: str, dataset: dict[str, Any]) -> dict[str, str]:
    """Tag kind -> the column (or JSON key) holding it, from ``datasets.<name>.tags``."""
    tags = dict(dataset.get("tags") or {})
    columns = {kind: str(tags.get(key) or default) for kind, (key, default) in TAG_COLUMNS.items()}
    if len(set(columns.values())) < len(columns):
        raise ManifestError(f"datasets.{name}.tags: augmenters and distractors name the same column {columns}")
    return columns


def tags_file(name: str, dataset: dict[str, Any], root: Path) -> Path | None:
    """``datasets.<name>.tags.file`` (relative to the root), checked; None when tags come with the labels."""
    file = (dataset.get("tags") or {}).get("file")
    if not file:
        return None
    path = root / str(file)
    if not path.is_file():
        raise ManifestError(f"dataset {name!r}: tags file {path} does not exist; fix datasets.{name}.tags.file "
                            f"(relative to the root {root}) or set it to null")
    return path


def _tags_by_video(path: Path, columns: dict[str, str]) -> dict[str, dict[str, Any]]:
    """A tags CSV (``filename`` and the tag columns) as {relative video path: row}."""
    usage = "filename," + ",".join(columns.values())
    rows = read_csv_table(path, ["filename"], usage)
    header = set(rows[0][1]) if rows else set()
    if rows and not header & set(columns.values()):
        raise ManifestError(f"{path}: none of the tag columns {sorted(columns.values())}; expected {usage}")
    out: dict[str, dict[str, Any]] = {}
    for line, row in rows:
        out.setdefault(str(relative_video_path(row["filename"], path, f"line {line}")), row)
    return out


def _tags(record: dict[str, Any], columns: dict[str, str]) -> list[str]:
    return [f"{kind}:{value}" for kind, column in columns.items() for value in split_names(record.get(column))]


def dfdc_test_manifest(name: str, dataset: dict[str, Any]) -> pd.DataFrame:
    """Rows of a DFDC test/validation labels file, tagged ``augmenter:<x>`` / ``distractor:<y>``."""
    root = dataset_root(name, dataset, f"the test videos and {' or '.join(TEST_LABEL_FILES)}")
    source = test_labels_file(name, dataset, root)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        entries = _test_entries_csv(source)
    elif suffix == ".json":
        entries = _test_entries_json(source)
    else:
        raise ManifestError(f"{source}: a dfdc_test labels file must be .csv or .json; fix datasets.{name}.labels")

    columns = tag_columns(name, dataset)
    tag_source = tags_file(name, dataset, root)
    tag_rows = _tags_by_video(tag_source, columns) if tag_source else None
    videos_dir = PurePosixPath(str(dataset.get("videos") or "."))

    disk = DiskListing()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    for filename, where, label, record in entries:
        listed = relative_video_path(filename, source, where)
        rel = PurePosixPath(videos_dir, listed) if str(videos_dir) != "." else listed
        if str(rel) in seen:
            duplicates.append(str(rel))
            continue
        seen.add(str(rel))
        tags = _tags(record if tag_rows is None else tag_rows.get(str(listed), {}), columns)
        rows.append(
            make_row(
                dataset=name,
                root=root,
                rel=rel,
                label=label_at(label, source, where),
                split=TEST_SPLIT,
                group=TEST_GROUP,
                tags=tags,
                listed_in=source,
                disk=disk,
            )
        )
    if duplicates:
        warn_duplicates(source, duplicates)
    warn_unlisted_beside(root, seen, disk, str(source), include_root=True)
    if not rows:
        raise ManifestError(f"{source}: lists no videos; check datasets.{name}.labels and datasets.{name}.root")
    if tag_rows is not None:
        listed_names = {str(relative_video_path(f, source, w)) for f, w, _, _ in entries}
        strays = sorted(set(tag_rows) - listed_names)
        if strays:
            log.warning("%s: %d video(s) are not in %s, their tags are ignored: %s", tag_source, len(strays), source,
                        ", ".join(strays[:5]) + (" ..." if len(strays) > 5 else ""))
    if not any(row["tags"] for row in rows):
        log.warning("dataset %r: no video carries an augmenter or distractor tag (columns %s of %s); "
                    "the per-tag tables (3.2-3.5) will say the test set has no tags", name,
                    ", ".join(columns.values()), tag_source or source)
    return finalize(name, rows, str(source))

