"""Parquet contracts of the pipeline and atomic writes.

Every stage writes exactly one schema per file, through :func:`write_parquet`. Every file the
package writes (Parquet, CSV, JSON, YAML, checkpoints, images, videos) goes through
:func:`atomic_path`: it is written to a temporary file beside the target and renamed, so an
interrupted job never leaves a half-written output that Snakemake would take for a finished one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

LABEL_REAL = 0
LABEL_FAKE = 1

MANIFEST_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("video_id", pa.string()),  # unique within the dataset: path relative to its root, no suffix
        ("path", pa.string()),
        ("label", pa.int8()),  # 1 fake, 0 real, -1 unknown
        ("split", pa.string()),
        ("original", pa.string()),  # video_id of the real video a fake was made from, if known
        ("group", pa.string()),  # DFDC part, Celeb-DF identity, FF++ method...
        ("tags", pa.list_(pa.string())),  # augmenter/distractor names, may be empty
        ("status", pa.string()),  # ok | missing
        ("message", pa.string()),
    ]
)

FACES_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("video_id", pa.string()),
        ("face_id", pa.string()),  # f"{video_id}/{frame}/{face}", unique within the dataset
        ("frame", pa.int32()),  # the frame the face was cut from (the one decoded)
        # the sampled frame index it stands for: frame itself under frame_policy exact, at most
        # max_frame_offset away under nearest_reference
        ("target_frame", pa.int32()),
        ("face", pa.int16()),  # index of the face within its frame
        ("track", pa.int32()),  # test flow: track id within the video; train flow: -1
        ("x0", pa.float32()),  # box with margin, full-resolution pixels, clipped to the frame
        ("y0", pa.float32()),
        ("x1", pa.float32()),
        ("y1", pa.float32()),
        ("prob", pa.float32()),  # detector probability
        ("label", pa.int8()),
        ("box_source", pa.string()),  # self | original (train flow fakes reuse their original's boxes)
        # MTCNN's five landmarks (eyes, nose, mouth corners) as x, y pairs, full-resolution
        # pixels like the box (subtract x0, y0 for crop coordinates); null where unknown
        ("landmarks", pa.list_(pa.float32(), 10)),
        ("jpeg", pa.binary()),  # the crop, JPEG-encoded
    ]
)

STATUS_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("video_id", pa.string()),
        ("path", pa.string()),
        ("label", pa.int8()),
        ("status", pa.string()),  # one of registry.EXTRACTION_STATUSES
        ("message", pa.string()),
        ("frames_total", pa.int32()),
        ("frames_read", pa.int32()),
        ("faces_detected", pa.int32()),
        ("faces_kept", pa.int32()),
        ("box_source", pa.string()),
        ("seconds", pa.float32()),
        ("frames_failed", pa.int32()),  # packets the decoder rejected or decoded with errors concealed
        ("frames_skipped", pa.int32()),  # sampled frames that never came out of the decoder
    ]
)

SPLITS_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("video_id", pa.string()),
        ("face_id", pa.string()),
        ("group", pa.string()),
        ("original", pa.string()),
        ("label", pa.int8()),
        ("split", pa.string()),  # train | val
        # the five landmarks in the crop's own pixels (x, y pairs; null where unknown)
        ("landmarks", pa.list_(pa.float32(), 10)),
        ("jpeg", pa.binary()),
    ]
)

VIDEO_PREDICTIONS_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("video_id", pa.string()),
        ("label", pa.int8()),
        ("tags", pa.list_(pa.string())),
        ("status", pa.string()),  # extraction status of the video
        ("n_faces", pa.int32()),
        ("score", pa.float64()),  # aggregated fake confidence; no_face_score (or null) without faces
        ("scored", pa.bool_()),  # False where the score is the no-face fallback
    ]
)

FACE_PREDICTIONS_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("video_id", pa.string()),
        ("face_id", pa.string()),
        ("frame", pa.int32()),
        ("track", pa.int32()),
        ("label", pa.int8()),
        ("score", pa.float32()),  # softmax probability of the fake class
    ]
)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary file keeps the target's suffix (writers such as OpenCV's pick the format by
    it) and gets the permissions of a newly created file (``0o666`` less the umask). When the
    block raises, the temporary file is removed and an existing ``path`` is left untouched.
    The parent folder is created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        # mkstemp creates 0600; results are shared files, so give them the usual permissions
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(df: pd.DataFrame | pa.Table, path: str | os.PathLike, schema: pa.Schema | None = None) -> Path:
    """Write ``df`` to ``path`` atomically, cast to ``schema`` (columns in schema order)."""
    if isinstance(df, pd.DataFrame):
        if schema is not None:
            missing = [name for name in schema.names if name not in df.columns]
            if missing:
                raise ValueError(f"cannot write {path}: columns missing for its schema: {missing}")
            df = df[schema.names]
        table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    else:
        table = df.select(schema.names).cast(schema) if schema is not None else df
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=2048)
    return Path(path)


def empty_table(schema: pa.Schema) -> pd.DataFrame:
    """An empty DataFrame with the columns of ``schema`` (for chunks with nothing to write)."""
    return schema.empty_table().to_pandas()


def read_parquets(paths: Iterable[str | os.PathLike], columns: list[str] | None = None) -> pd.DataFrame:
    """Concatenate Parquet files (all of one schema) into one DataFrame."""
    frames = [pq.read_table(p, columns=columns).to_pandas() for p in paths]
    if not frames:
        raise ValueError("no Parquet files to read")
    return pd.concat(frames, ignore_index=True)


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(obj: Any, path: str | os.PathLike, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON (ending in a newline) to ``path`` atomically."""
    return write_text_atomic(json.dumps(obj, indent=indent) + "\n", path)


def write_csv(df: pd.DataFrame, path: str | os.PathLike, na_rep: str = "") -> Path:
    """Write ``df`` as CSV without its index to ``path`` atomically (missing values as ``na_rep``)."""
    return write_text_atomic(df.to_csv(index=False, na_rep=na_rep), path)
