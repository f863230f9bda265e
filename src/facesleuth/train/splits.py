"""Balanced train/validation faces from the train-flow extraction (thesis section 2.4.1).

With ``splits.validation_dataset`` set (DFDC's own validation set, extracted with the test flow,
as in the thesis), validation comes from that dataset and every train-flow face goes to the
train side: no hold-out is made and ``validation_fraction`` is ignored. Without one, a share of
the train-flow units is held out, as below.

DFDC labels videos, not faces, so each face takes its video's label. Faces of one video are
near-duplicates, and a fake shares its background and identity with its original, so the split
is made over *units* that never straddle train and validation: a video, an original with all
its fakes, or a whole group (DFDC part, identity). Fakes outnumber reals about 4 to 1 in DFDC;
the thesis kept one fake face in five, which :func:`make_splits` does with a fixed seed.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from facesleuth.io import LABEL_FAKE, LABEL_REAL, SPLITS_SCHEMA, atomic_path

log = logging.getLogger("facesleuth.train.splits")

TRAIN, VAL = "train", "val"
CLASS_NAMES = {LABEL_REAL: "real", LABEL_FAKE: "fake"}
GROUP_BY = ("group", "original", "video")


class SplitError(ValueError):
    """The faces cannot be split as configured; the message says why and what to do."""


def read_exclusions(path: str | os.PathLike) -> set[str]:
    """Face ids to drop, one per line; blank lines and ``#`` comments are ignored."""
    path = Path(path)
    if not path.is_file():
        raise SplitError(f"splits.exclude: file {path} not found (a text file of face ids, one per line)")
    ids = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.add(line)
    return ids


def _video_table(faces: pd.DataFrame, status: pd.DataFrame, manifest: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (dataset, video_id) with label, group and original.

    The label comes from the status table (the manifest's label, copied by extraction), so a
    face's label is always its video's; group and original come from the manifest.
    """
    videos = status[["dataset", "video_id", "label", "status"]].drop_duplicates(["dataset", "video_id"])
    if manifest is not None:
        meta = manifest[["dataset", "video_id", "group", "original"]].drop_duplicates(["dataset", "video_id"])
        videos = videos.merge(meta, on=["dataset", "video_id"], how="left")
    else:
        videos = videos.assign(group=None, original=None)
    with_faces = faces[["dataset", "video_id"]].drop_duplicates()
    unknown = with_faces.merge(videos[["dataset", "video_id"]], how="left", indicator=True)
    unknown = unknown[unknown["_merge"] == "left_only"]
    if len(unknown):
        examples = ", ".join(f"{d}:{v}" for d, v in unknown[["dataset", "video_id"]].head(3).itertuples(index=False))
        raise SplitError(
            f"{len(unknown)} videos have faces but no status row (e.g. {examples}); the faces and "
            f"status files come from different extraction runs: rerun extraction"
        )
    return videos


def _unit_of(videos: pd.DataFrame, group_by: str) -> pd.Series:
    """The key that keeps a video on one side of the split."""
    if group_by not in GROUP_BY:
        raise SplitError(f"splits.group_by: {group_by!r} is not one of {list(GROUP_BY)}")
    if group_by == "video":
        return videos["dataset"] + "/" + videos["video_id"]
    if group_by == "original":
        original = videos["original"].where(videos["label"] == LABEL_FAKE)
        family = original.where(original.notna() & (original != ""), videos["video_id"])
        return videos["dataset"] + "/" + family
    group = videos["group"]
    no_group = group.isna() | (group == "")
    if no_group.any():
        log.warning(
            "splits.group_by group: %d videos have no group; each is its own unit (e.g. %s)",
            int(no_group.sum()), videos.loc[no_group, "video_id"].iloc[0],
        )
    return videos["dataset"] + "/" + group.where(~no_group, "video:" + videos["video_id"])


def _assign_units(units: pd.DataFrame, fraction: float, seed: int) -> dict[str, str]:
    """unit -> train|val, stratified by what the unit holds (real only, fake only, both).

    Each stratum sends ``round(fraction * n)`` of its units (at least one, never all, when it
    has two or more) to validation, so both splits hold both classes whenever the data allows.
    """
    rng = np.random.default_rng(seed)
    side: dict[str, str] = {}
    for _, stratum in units.groupby(["has_real", "has_fake"], sort=True):
        names = np.array(sorted(stratum["unit"]))
        n = len(names)
        n_val = round(fraction * n)
        if n >= 2:
            n_val = min(max(n_val, 1), n - 1)
        chosen = set(rng.permutation(names)[:n_val])
        side.update({u: VAL if u in chosen else TRAIN for u in names})
    # A class present in two or more units but on one side only (strata of one unit each):
    # move its smallest unit across.
    for has, label in (("has_real", "real"), ("has_fake", "fake")):
        holders = units[units[has]].sort_values(["faces", "unit"])
        sides = {side[u] for u in holders["unit"]}
        if len(holders) >= 2 and len(sides) == 1:
            missing = VAL if TRAIN in sides else TRAIN
            unit = holders["unit"].iloc[0]
            side[unit] = missing
            log.info("moved unit %s to %s so that it holds %s faces", unit, missing, label)
    return side


def _downsample_fakes(faces: pd.DataFrame, factor: int, seed: int) -> pd.DataFrame:
    """Keep ``ceil(n / factor)`` fake faces per split, chosen by a seeded permutation of the
    face ids in sorted order, so the choice depends only on the faces and the seed."""
    if factor <= 1:
        return faces
    kept = []
    rng = np.random.default_rng(seed)
    for split_name in (TRAIN, VAL):
        part = faces[faces["split"] == split_name]
        fakes = part[part["label"] == LABEL_FAKE].sort_values(["dataset", "face_id"])
        n_keep = math.ceil(len(fakes) / factor)
        order = rng.permutation(len(fakes))[:n_keep]
        kept.append(part[part["label"] != LABEL_FAKE])
        kept.append(fakes.iloc[np.sort(order)])
    return pd.concat(kept, ignore_index=True)


def _summary(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for split_name in (TRAIN, VAL):
        for label, name in CLASS_NAMES.items():
            b = before[(before["split"] == split_name) & (before["label"] == label)]
            a = after[(after["split"] == split_name) & (after["label"] == label)]
            rows.append(
                {
                    "split": split_name,
                    "class": name,
                    "videos": int(a[["dataset", "video_id"]].drop_duplicates().shape[0]),
                    "faces": int(len(a)),
                    "faces_before_downsampling": int(len(b)),
                }
            )
    return pd.DataFrame(rows)


def _counts_by_dataset(videos: pd.DataFrame, faces: pd.DataFrame) -> str:
    parts = []
    for dataset in sorted(videos["dataset"].unique()):
        v = videos[videos["dataset"] == dataset]
        f = faces[faces["dataset"] == dataset]
        parts.append(
            f"{dataset}: {int((v['label'] == LABEL_REAL).sum())} real / {int((v['label'] == LABEL_FAKE).sum())} fake "
            f"videos, {int((f['label'] == LABEL_REAL).sum())} real / {int((f['label'] == LABEL_FAKE).sum())} fake faces"
        )
    return "; ".join(parts)


def make_splits(
    faces_df: pd.DataFrame,
    status_df: pd.DataFrame,
    settings: dict[str, Any],
    manifest_df: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split faces into balanced train and validation sets.

    ``faces_df`` holds train-flow faces (``FACES_SCHEMA``; ``jpeg`` and ``landmarks`` optional:
    they are carried through when present, the landmarks moved into crop pixels), ``status_df`` one row per video (``STATUS_SCHEMA``), ``settings`` the
    config's ``splits`` section and ``manifest_df`` the manifests (``MANIFEST_SCHEMA``) that
    give each video's ``group`` and ``original``; without them only ``group_by: video`` is
    possible. Returns ``(split_df, summary_df)``: the faces in ``SPLITS_SCHEMA`` column order
    (``jpeg`` only when given) and faces/videos per split and class.
    """
    group_by = settings.get("group_by", "original")
    fraction = float(settings.get("validation_fraction", 0.2))
    factor = int(settings.get("fake_downsample", 5))
    seed = int(settings.get("seed", 42))
    # A validation dataset of its own replaces the hold-out: every train-flow face trains.
    holdout = not settings.get("validation_dataset")
    if holdout and not 0 < fraction < 1:
        raise SplitError(f"splits.validation_fraction must be between 0 and 1, got {fraction}")
    if factor < 1:
        raise SplitError(f"splits.fake_downsample must be 1 or more, got {factor}")
    if manifest_df is None and group_by != "video":
        raise SplitError(
            f"splits.group_by {group_by!r} needs the manifests (group and original of each video); "
            f"pass manifest_df, or use group_by: video"
        )

    videos = _video_table(faces_df, status_df, manifest_df)
    unlabelled = videos[~videos["label"].isin([LABEL_REAL, LABEL_FAKE])]
    if len(unlabelled):
        log.warning("%d videos have no label (-1); their faces are left out of the split", len(unlabelled))
    videos = videos[videos["label"].isin([LABEL_REAL, LABEL_FAKE])].copy()
    not_ok = videos[videos["status"] != "ok"]
    if len(not_ok):
        log.info("videos without usable faces, by status: %s", not_ok["status"].value_counts().to_dict())

    faces = faces_df.drop(columns=[c for c in ("label", "group", "original") if c in faces_df.columns])
    faces = faces.merge(videos[["dataset", "video_id", "label", "group", "original"]], on=["dataset", "video_id"])
    if "label" in faces_df.columns:
        disagree = faces_df.merge(videos[["dataset", "video_id", "label"]], on=["dataset", "video_id"], suffixes=("", "_video"))
        disagree = disagree[disagree["label"] != disagree["label_video"]]
        if len(disagree):
            log.warning("%d faces carried a label other than their video's; the video's label is used", len(disagree))

    exclude = settings.get("exclude")
    if exclude:
        excluded = read_exclusions(exclude)
        known = set(faces["face_id"])
        unknown = sorted(excluded - known)
        if unknown:
            warnings.warn(
                f"splits.exclude ({exclude}): {len(unknown)} of {len(excluded)} face ids are not among the "
                f"faces (e.g. {unknown[:3]}); they are ignored",
                stacklevel=2,
            )
        faces = faces[~faces["face_id"].isin(excluded)]
        log.info("excluded %d faces listed in %s", len(excluded) - len(unknown), exclude)

    n_real = int((faces["label"] == LABEL_REAL).sum())
    n_fake = int((faces["label"] == LABEL_FAKE).sum())
    if n_real == 0 or n_fake == 0:
        missing = "real" if n_real == 0 else "fake"
        raise SplitError(
            f"no {missing} faces to train on ({_counts_by_dataset(videos, faces) or 'no faces at all'}); "
            f"add a dataset with {missing} videos to splits.train_datasets or check the extraction status"
        )

    videos = videos[videos.set_index(["dataset", "video_id"]).index.isin(faces.set_index(["dataset", "video_id"]).index)]
    videos = videos.assign(unit=_unit_of(videos, group_by).to_numpy())
    faces = faces.merge(videos[["dataset", "video_id", "unit"]], on=["dataset", "video_id"])
    units = faces.groupby("unit")["label"].agg(["min", "max", "size"]).reset_index()
    units = pd.DataFrame(
        {
            "unit": units["unit"],
            "has_real": units["min"] == LABEL_REAL,  # labels are 0/1 here, so min 0 means a real
            "has_fake": units["max"] == LABEL_FAKE,
            "faces": units["size"],
        }
    )
    if holdout and len(units) < 2:
        raise SplitError(
            f"all faces belong to one {group_by} unit ({units['unit'].iloc[0]}); nothing can be held out "
            f"for validation: use splits.group_by original or video"
        )
    if holdout:
        side = _assign_units(units, fraction, seed)
        faces["split"] = faces["unit"].map(side)
    else:
        faces["split"] = TRAIN
        log.info("validation comes from the dataset %s: no hold-out, all %d units train",
                 settings["validation_dataset"], len(units))
    for split_name in (TRAIN, VAL) if holdout else (TRAIN,):
        labels = set(faces.loc[faces["split"] == split_name, "label"])
        for label, name in CLASS_NAMES.items():
            if label not in labels:
                log.warning(
                    "the %s split has no %s faces: all %s faces come from a single %s unit",
                    split_name, name, name, group_by,
                )

    balanced = _downsample_fakes(faces, factor, seed)
    summary = _summary(faces, balanced)
    if "landmarks" in balanced and {"x0", "y0"} <= set(balanced.columns):
        balanced = with_crop_landmarks(balanced)  # a split keeps them in crop pixels
    columns = [c for c in SPLITS_SCHEMA.names if c in balanced.columns or c not in FACE_PAYLOAD]
    split_df = balanced.sort_values(["split", "dataset", "face_id"], ignore_index=True)[columns]
    log.info("split by %s (%d units): %s", group_by, len(units), summary.to_dict(orient="records"))
    return split_df, summary


#: Per-face columns a split copies from the faces files (the split is chosen without them).
FACE_PAYLOAD = ("landmarks", "jpeg")


def payload_columns(faces_path: str | os.PathLike) -> list[str]:
    """Columns of a faces file that :func:`write_split` reads (files extracted before faces
    kept their landmarks have none)."""
    import pyarrow.parquet as pq

    names = pq.read_schema(faces_path).names
    return ["dataset", "face_id", "jpeg"] + (["x0", "y0", "landmarks"] if "landmarks" in names else [])


def with_crop_landmarks(faces: pd.DataFrame) -> pd.DataFrame:
    """``faces`` with its frame-pixel ``landmarks`` moved into crop pixels (minus x0, y0), or
    with a null ``landmarks`` column where the faces have none."""
    if "landmarks" not in faces:
        return faces.assign(landmarks=None)
    shifted = [
        None if points is None else (np.asarray(points, np.float32).reshape(-1, 2) - (x0, y0)).reshape(-1).tolist()
        for points, x0, y0 in zip(faces["landmarks"], faces["x0"], faces["y0"])
    ]
    return faces.drop(columns=["x0", "y0"]).assign(landmarks=shifted)


def write_split(split_df: pd.DataFrame, faces_paths: Iterable[str | os.PathLike], out_path: str | os.PathLike) -> int:
    """Write the split with each face's JPEG bytes, reading the faces files one at a time.

    ``split_df`` may lack ``jpeg`` (the split is chosen on the face metadata alone, so the
    crops, which are most of the bytes, never all sit in memory). Writes atomically; returns
    the number of faces written.
    """
    meta = split_df.drop(columns=["jpeg"], errors="ignore")
    wanted = set(meta["face_id"])
    target = Path(out_path)
    written = 0
    with atomic_path(target) as tmp:
        with pq.ParquetWriter(tmp, SPLITS_SCHEMA, compression="zstd") as writer:
            for path in tqdm(list(faces_paths), desc="split faces", unit="file", disable=None):
                table = pq.read_table(path, columns=payload_columns(path), filters=[("face_id", "in", wanted)])
                if table.num_rows == 0:
                    continue
                part = meta.drop(columns=list(FACE_PAYLOAD), errors="ignore").merge(
                    with_crop_landmarks(table.to_pandas()), on=["dataset", "face_id"], how="inner"
                )
                part = part.sort_values(["split", "dataset", "face_id"])[SPLITS_SCHEMA.names]
                writer.write_table(pa.Table.from_pandas(part, schema=SPLITS_SCHEMA, preserve_index=False), row_group_size=2048)
                written += len(part)
        if written != len(meta):
            raise SplitError(
                f"found crops for {written} of {len(meta)} split faces in the faces files; the faces "
                f"files changed while the split was made: rerun the splits rule"
            )
    log.info("wrote %d faces to %s", written, target)
    return written
