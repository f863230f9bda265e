"""Helpers shared by the manifest adapters: labels, reading labels files, disk listings, rows.

Every adapter turns its dataset's own layout into plain row dicts with :func:`make_row` and hands
them to :func:`finalize`, so the manifest contract (columns, order, uniqueness, the summary log)
is enforced in one place whatever the format.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import posixpath
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

import pandas as pd

from facesleuth.io import LABEL_FAKE, LABEL_REAL, MANIFEST_SCHEMA
from facesleuth.registry import MISSING, OK, VIDEO_SUFFIXES

log = logging.getLogger(__name__)

# How many offending names a warning quotes before it only counts them.
EXAMPLES = 5


class ManifestError(ValueError):
    """A dataset folder or its labels file cannot be read; the message names the file or config key."""


_LABEL_WORDS = {"fake": LABEL_FAKE, "real": LABEL_REAL, "1": LABEL_FAKE, "0": LABEL_REAL}


def parse_label(value: Any) -> int:
    """1 for FAKE/fake/1/"1", 0 for REAL/real/0/"0"; anything else raises ``ValueError``.

    Strict on purpose: a silently mis-read label poisons training and every metric downstream.
    """
    if isinstance(value, bool):
        raise ValueError(f"unknown label {value!r}: expected FAKE/REAL or 1/0")
    if isinstance(value, (int, float)):
        if value in (0, 1):
            return int(value)
    elif isinstance(value, str):
        label = _LABEL_WORDS.get(value.strip().lower())
        if label is not None:
            return label
    elif hasattr(value, "item"):  # numpy scalars
        return parse_label(value.item())
    raise ValueError(f"unknown label {value!r}: expected FAKE/REAL or 1/0")


def examples(names: Sequence[str]) -> str:
    """A short quotation of offending names for a log line."""
    shown = ", ".join(str(n) for n in names[:EXAMPLES])
    return shown + (f", ... ({len(names) - EXAMPLES} more)" if len(names) > EXAMPLES else "")


# ---------------------------------------------------------------- config and paths


def dataset_root(name: str, dataset: dict[str, Any], expected: str) -> Path:
    """The dataset's root folder, checked to exist; ``expected`` says what it should hold."""
    root = Path(str(dataset.get("root", ""))).expanduser()
    if not str(dataset.get("root") or "").strip():
        raise ManifestError(f"datasets.{name}.root is not set; set it to the folder holding {expected}")
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise ManifestError(
            f"dataset {name!r}: root {str(root)!r} {what}; expected {expected} there. "
            f"Fix datasets.{name}.root in the config."
        )
    return root


def default_split(dataset: dict[str, Any]) -> str:
    """Split of rows whose labels file says nothing: the dataset's flow (train or test)."""
    return str(dataset.get("flow") or "test")


def relative_video_path(text: str, source: Path, where: str) -> PurePosixPath:
    """A labels file's path entry as a clean relative POSIX path (no ``./``, no ``..``)."""
    rel = PurePosixPath(text.strip().replace("\\", "/"))
    if not text.strip() or rel.is_absolute() or ".." in rel.parts:
        raise ManifestError(
            f"{source}, {where}: path {text!r} must be relative to the dataset root, without '..'"
        )
    return PurePosixPath(*[p for p in rel.parts if p != "."])


def video_id_of(rel: PurePosixPath | str) -> str:
    """The contract's video id: the path relative to the root, without its suffix.

    String operations, not ``PurePosixPath``: called for every video (120k in DFDC), where
    pathlib's parsing was most of the manifest's time. As pathlib's ``suffix``, a name ending in
    a dot has none; unlike it, leading dots always belong to the name (``..b`` has no suffix).
    """
    text = str(rel)
    stem, suffix = posixpath.splitext(text)
    return stem if suffix not in ("", ".") else text


class DiskListing:
    """Names of the files in each folder, listed once per folder.

    One ``scandir`` per folder instead of one ``stat`` per video: DFDC has 120k videos, often on
    network file systems where per-file calls dominate.
    """

    def __init__(self) -> None:
        self._files: dict[str, frozenset[str]] = {}

    def files(self, folder: Path | str) -> frozenset[str]:
        key = str(folder)
        if key not in self._files:
            try:
                with os.scandir(folder) as entries:
                    self._files[key] = frozenset(e.name for e in entries if e.is_file())
            except (FileNotFoundError, NotADirectoryError):
                self._files[key] = frozenset()
        return self._files[key]

    def exists(self, path: Path | str) -> bool:
        folder, name = os.path.split(os.fspath(path))
        return name in self.files(folder)

    def videos(self, folder: Path) -> list[str]:
        """Sorted names of the video files directly in ``folder``."""
        return sorted(n for n in self.files(folder) if os.path.splitext(n)[1].lower() in VIDEO_SUFFIXES)


# ---------------------------------------------------------------- labels files


class _FirstWinsDict(dict):
    """A JSON object that keeps the first of duplicated keys and remembers the others."""

    duplicates: list[str]


def _first_wins(pairs: list[tuple[str, Any]]) -> _FirstWinsDict:
    obj = _FirstWinsDict()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        else:
            obj[key] = value
    return obj


def read_json_object(path: Path) -> dict[str, Any]:
    """A labels JSON file whose top level is an object; duplicated keys keep the first, with a warning.

    (``json.load`` would silently keep the last duplicate.)
    """
    try:
        with open(path, encoding="utf-8-sig") as fh:
            data = json.load(fh, object_pairs_hook=_first_wins)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{path}: invalid JSON: {err}") from None
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path}: not UTF-8 text: {err}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a JSON object {{\"<file>.mp4\": {{\"label\": ...}}}}, got {type(data).__name__}")
    if data.duplicates:
        warn_duplicates(path, data.duplicates)
    return dict(data)


def read_csv_table(path: Path, required: Sequence[str], usage: str) -> list[tuple[int, dict[str, str]]]:
    """Rows of a labels CSV as ``(line number, {column: stripped text})``; ``usage`` names the columns
    expected, for the error message when required ones are absent."""
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                found = ",".join(header) if header else "no header"
                raise ManifestError(
                    f"{path}: missing column(s) {','.join(missing)}; expected {usage} (found: {found})"
                )
            reader.fieldnames = header
            for record in reader:
                cells = {k: (v or "").strip() for k, v in record.items() if k is not None and not isinstance(v, list)}
                if not any(cells.values()):
                    continue  # blank line
                rows.append((reader.line_num, cells))
    except csv.Error as err:
        raise ManifestError(f"{path}: invalid CSV: {err}") from None
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path}: not UTF-8 text: {err}") from None
    return rows


def label_at(value: Any, source: Path, where: str) -> int:
    """:func:`parse_label`, with the labels file and the line (or entry) in the error."""
    try:
        return parse_label(value)
    except ValueError as err:
        raise ManifestError(f"{source}, {where}: {err}") from None


def split_names(value: Any) -> list[str]:
    """A ``;``-separated cell (or a JSON list) as a list of non-empty names."""
    if value is None:
        return []
    if isinstance(value, str):
        items: Iterable[Any] = value.split(";")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        items = [value]
    return [str(item).strip() for item in items if str(item).strip()]


def warn_duplicates(source: Path, duplicates: Sequence[str]) -> None:
    log.warning(
        "%s: %d duplicated entr%s, kept the first of each: %s",
        source,
        len(duplicates),
        "y" if len(duplicates) == 1 else "ies",
        examples(list(duplicates)),
    )


def warn_unlisted(unlisted: Sequence[str], where: str) -> None:
    """Videos on disk without a label are left out of the manifest, loudly."""
    if unlisted:
        log.warning(
            "%d video(s) on disk are not listed in %s and are left out (no label): %s",
            len(unlisted),
            where,
            examples(list(unlisted)),
        )


def warn_unlisted_beside(root: Path, listed: set[str], disk: DiskListing, where: str, *, include_root: bool = False) -> None:
    """Warn about videos on disk in the folders of the ``listed`` paths (relative to ``root``,
    and in ``root`` itself when ``include_root``) that the labels file does not list."""
    folders = {PurePosixPath(path).parent for path in listed} | ({PurePosixPath(".")} if include_root else set())
    warn_unlisted(
        [
            str(folder / video)
            for folder in sorted(folders)
            for video in disk.videos(root / str(folder))
            if str(folder / video) not in listed
        ],
        where,
    )


# ---------------------------------------------------------------- rows and the manifest


def make_row(
    *,
    dataset: str,
    root: Path,
    rel: PurePosixPath | str,
    label: int,
    split: str | None,
    original: str | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
    listed_in: Path | None = None,
    disk: DiskListing | None = None,
) -> dict[str, Any]:
    """One manifest row. With ``listed_in`` (a labels file), a file absent on disk becomes
    ``missing`` with a message naming that file; without it the row was found on disk."""
    # plain string join: ``rel`` is already a clean relative path, and pathlib per row is slow
    path = os.path.join(str(root), str(rel))
    status, message = OK, ""
    if listed_in is not None:
        on_disk = disk.exists(path) if disk is not None else os.path.isfile(path)
        if not on_disk:
            status, message = MISSING, f"listed in {listed_in} but not on disk"
    return {
        "dataset": dataset,
        "video_id": video_id_of(rel),
        "path": path,
        "label": int(label),
        "split": split,
        "original": original if label == LABEL_FAKE else None,
        "group": group,
        "tags": list(tags),
        "status": status,
        "message": message,
    }


def finalize(name: str, rows: list[dict[str, Any]], source: str) -> pd.DataFrame:
    """The manifest DataFrame: one row per video id, sorted by it, with a one-line summary logged.

    ``source`` says where the videos were looked for, for the error when there are none.
    """
    if not rows:
        raise ManifestError(f"dataset {name!r}: no videos found in {source}; check datasets.{name}.root")
    df = pd.DataFrame(rows, columns=MANIFEST_SCHEMA.names)
    clashes = df["video_id"].duplicated(keep="first")
    if clashes.any():
        log.warning(
            "dataset %r: %d video id(s) occur twice (same path but the suffix), kept the first: %s",
            name,
            int(clashes.sum()),
            examples(df.loc[clashes, "video_id"].tolist()),
        )
        df = df.loc[~clashes]
    df = df.sort_values("video_id", kind="stable").reset_index(drop=True)
    df["label"] = df["label"].astype("int8")
    fakes = int((df["label"] == LABEL_FAKE).sum())
    reals = int((df["label"] == LABEL_REAL).sum())
    missing = int((df["status"] == MISSING).sum())
    log.info("manifest %s: %d videos, %d fakes, %d reals, %d missing", name, len(df), fakes, reals, missing)
    return df
