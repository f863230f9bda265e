"""Dataset-shaped folders and face files at the study's real size, for rehearsing the pipeline.

The thesis's study (section 2.4.1) reads 119,197 DFDC training videos in 50 parts, 4,000
validation and 5,000 test videos, 6,529 Celeb-DF-v2 videos, and trains on about 415,000 faces.
This module lays out folders with exactly those shapes, in each dataset's own format
(``metadata.json`` per DFDC part, ``labels.csv``, Celeb-DF's folders and testing list), whose
video files are symbolic links to a few real sample videos, so the manifests, the planning of the
workflow and every table-sized step can be timed at full size without the datasets. Faces are
real crops extracted from the sample videos with the thesis's detector settings (30 px margin,
faces of 70 px and more, JPEG quality 95), replicated under distinct ids.

:class:`StudySize` holds the sizes; ``StudySize.thesis().scaled(f)`` gives a fraction of them
(the tests use 1/200).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facesleuth.extract.detect import FaceDetector, crop_with_margin, encode_jpeg
from facesleuth.io import (
    FACES_SCHEMA,
    LABEL_FAKE,
    SPLITS_SCHEMA,
    STATUS_SCHEMA,
    atomic_path,
)
from facesleuth.runtime import chunk_of
from facesleuth.extract.video import evenly_spaced_indices, probe, read_frames

DFDC_SAMPLE_GLOB = "dfdc/dfdc_train_part_*/*.mp4"
#: Celeb-DF-v2's official testing list: 178 Celeb-real + 162 YouTube-real, 178 Celeb-synthesis.
CELEBDF_TEST_LIST = (178, 162, 178)
CELEBDF_IDENTITIES = 59
ROW_GROUP = 2048
#: Median face crop of DFDC's 1080p videos with the thesis's 30 px margin (width, height).
DFDC_MEDIAN_CROP = (358, 279)


@dataclasses.dataclass(frozen=True)
class StudySize:
    """Sizes of the thesis's datasets and training split (thesis 2.4.1; DFDC and Celeb-DF-v2)."""

    dfdc_train_reals: int = 19_197
    dfdc_train_fakes: int = 100_000
    dfdc_train_parts: int = 50
    dfdc_validation: int = 4_000
    dfdc_test: int = 5_000
    celebdf_real: int = 590
    celebdf_youtube: int = 300
    celebdf_fake: int = 5_639
    split_reals: int = 202_951
    split_fakes: int = 212_454
    faces_per_video: int = 10  # train flow: up to 10 frames per video (thesis 2.4.1)
    validation_fraction: float = 0.1

    @classmethod
    def thesis(cls) -> StudySize:
        return cls()

    def scaled(self, fraction: float) -> StudySize:
        """Every count times ``fraction`` (at least 1; at least 2 parts and 2 videos per set)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        counts = {
            f.name: max(2 if f.name == "dfdc_train_parts" else 1, round(getattr(self, f.name) * fraction))
            for f in dataclasses.fields(self)
            if f.name not in ("faces_per_video", "validation_fraction", "dfdc_train_parts")
        }
        parts = max(2, round(self.dfdc_train_parts * fraction)) if fraction < 1 else self.dfdc_train_parts
        return dataclasses.replace(self, dfdc_train_parts=min(parts, counts["dfdc_train_reals"]), **counts)

    @property
    def dfdc_train_videos(self) -> int:
        return self.dfdc_train_reals + self.dfdc_train_fakes

    @property
    def celebdf_videos(self) -> int:
        return self.celebdf_real + self.celebdf_youtube + self.celebdf_fake

    @property
    def split_faces(self) -> int:
        return self.split_reals + self.split_fakes


def sample_videos(samples: Path) -> list[Path]:
    """The DFDC sample videos (1080p and 720p, portrait and landscape) the layouts link to."""
    videos = sorted(Path(samples).glob(DFDC_SAMPLE_GLOB))
    if not videos:
        raise FileNotFoundError(f"no DFDC sample videos ({DFDC_SAMPLE_GLOB}) under {samples}")
    return videos


def video_names(count: int, rng: np.random.Generator, taken: set[str] | None = None) -> list[str]:
    """``count`` distinct DFDC-style names (ten lowercase letters), none of them in ``taken``."""
    taken = set() if taken is None else taken
    names: list[str] = []
    while len(names) < count:
        letters = rng.integers(0, 26, size=(2 * (count - len(names)) + 8, 10), dtype=np.uint8) + ord("a")
        for name in letters.view("S10").ravel():
            text = name.decode()
            if text not in taken:
                taken.add(text)
                names.append(text)
                if len(names) == count:
                    break
    return names


def _link(target: Path, link: Path) -> None:
    """A symbolic link (absolute target), replacing an old one: the layout never copies a video."""
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.abspath(target), link)


def _split_evenly(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def lay_out_dfdc_train(root: Path, videos: Sequence[Path], size: StudySize, rng: np.random.Generator,
                       taken: set[str]) -> int:
    """``dfdc_train_part_<N>/`` folders with DFDC's ``metadata.json`` and a link per video.

    Each fake names a real of its own part as ``original`` (as in DFDC); returns the videos laid out.
    """
    reals = _split_evenly(size.dfdc_train_reals, size.dfdc_train_parts)
    fakes = _split_evenly(size.dfdc_train_fakes, size.dfdc_train_parts)
    made = 0
    for part, (n_real, n_fake) in enumerate(zip(reals, fakes)):
        folder = root / f"dfdc_train_part_{part}"
        folder.mkdir(parents=True, exist_ok=True)
        names = video_names(n_real + n_fake, rng, taken)
        real_names, fake_names = names[:n_real], names[n_real:]
        originals = rng.integers(0, n_real, size=n_fake)
        metadata: dict[str, Any] = {}
        for name in real_names:
            metadata[f"{name}.mp4"] = {"label": "REAL", "split": "train", "original": None}
        for name, original in zip(fake_names, originals):
            metadata[f"{name}.mp4"] = {"label": "FAKE", "split": "train", "original": f"{real_names[original]}.mp4"}
        # DFDC lists its files in no particular order
        order = rng.permutation(len(metadata))
        items = list(metadata.items())
        with atomic_path(folder / "metadata.json") as tmp:
            tmp.write_text(json.dumps({items[i][0]: items[i][1] for i in order}))
        for i, filename in enumerate(metadata):
            _link(videos[i % len(videos)], folder / filename)
        made += len(metadata)
    return made


def lay_out_dfdc_test(root: Path, count: int, videos: Sequence[Path], rng: np.random.Generator,
                      taken: set[str], fake_share: float = 0.5) -> int:
    """DFDC test/validation layout: the videos in ``root`` and ``labels.csv`` (``filename,label``)."""
    root.mkdir(parents=True, exist_ok=True)
    names = video_names(count, rng, taken)
    labels = (rng.random(count) < fake_share).astype(int)
    lines = ["filename,label"] + [f"{name}.mp4,{label}" for name, label in zip(names, labels)]
    with atomic_path(root / "labels.csv") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    for i, name in enumerate(names):
        _link(videos[i % len(videos)], root / f"{name}.mp4")
    return count


def lay_out_celebdf(root: Path, size: StudySize, videos: Sequence[Path], rng: np.random.Generator) -> int:
    """Celeb-DF-v2: ``Celeb-real``, ``YouTube-real``, ``Celeb-synthesis`` and ``List_of_testing_videos.txt``.

    Real clips are ``id<N>_<NNNN>``; each fake ``id<T>_id<S>_<NNNN>`` swaps another identity onto
    a real clip, as in the dataset.
    """
    identities = min(CELEBDF_IDENTITIES, size.celebdf_real)
    clips = _split_evenly(size.celebdf_real, identities)
    real = [f"id{i}_{c:04d}" for i, n in enumerate(clips) for c in range(n)]
    youtube = [f"{i:05d}" for i in range(size.celebdf_youtube)]
    # Fake i swaps identity source onto real clip i mod len(real); the source runs through the
    # other identities, so every name is distinct (a pool larger than the identities when scaled down).
    pool = max(identities, size.celebdf_fake // len(real) + 2)
    fakes = []
    for i, clip_index in enumerate(np.resize(rng.permutation(len(real)), size.celebdf_fake)):
        target, clip = real[clip_index].split("_")
        number = int(target[2:])
        fakes.append(f"{target}_id{(number + 1 + i // len(real)) % pool}_{clip}")
    count = 0
    for folder, names in (("Celeb-real", real), ("YouTube-real", youtube), ("Celeb-synthesis", fakes)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            _link(videos[count % len(videos)], root / folder / f"{name}.mp4")
            count += 1
    share = size.celebdf_videos / StudySize.thesis().celebdf_videos
    n_real, n_youtube, n_fake = (max(1, round(n * share)) for n in CELEBDF_TEST_LIST)
    listed = (
        [f"1 Celeb-real/{n}.mp4" for n in real[:n_real]]
        + [f"1 YouTube-real/{n}.mp4" for n in youtube[:n_youtube]]
        + [f"0 Celeb-synthesis/{n}.mp4" for n in fakes[:n_fake]]
    )
    with atomic_path(root / "List_of_testing_videos.txt") as tmp:
        tmp.write_text("\n".join(listed) + "\n")
    return count


def lay_out_study(root: str | os.PathLike, samples: str | os.PathLike, size: StudySize | None = None,
                  seed: int = 0) -> dict[str, dict[str, Any]]:
    """The four datasets of the study under ``root``; returns config ``datasets`` entries for them
    (``dfdc_train``, ``dfdc_val``, ``dfdc_test``, ``celebdf``, named as in ``config/thesis.yaml``) with ``videos`` counts."""
    size = size or StudySize.thesis()
    root = Path(root)
    videos = sample_videos(Path(samples))
    rng = np.random.default_rng(seed)
    taken: set[str] = set()
    made = {
        "dfdc_train": lay_out_dfdc_train(root / "dfdc_train", videos, size, rng, taken),
        "dfdc_val": lay_out_dfdc_test(root / "dfdc_validation", size.dfdc_validation, videos, rng, taken),
        "dfdc_test": lay_out_dfdc_test(root / "dfdc_test", size.dfdc_test, videos, rng, taken),
        "celebdf": lay_out_celebdf(root / "Celeb-DF-v2", size, videos, rng),
    }
    folders = {"dfdc_train": "dfdc_train", "dfdc_val": "dfdc_validation", "dfdc_test": "dfdc_test",
               "celebdf": "Celeb-DF-v2"}
    formats = {"dfdc_train": "dfdc_train", "dfdc_val": "dfdc_test", "dfdc_test": "dfdc_test",
               "celebdf": "celebdf"}
    return {
        name: {"format": formats[name], "root": str(root / folders[name]),
               "flow": "train" if name == "dfdc_train" else "test", "videos": count}
        for name, count in made.items()
    }


# ---------------------------------------------------------------- faces


def sample_face_crops(samples: str | os.PathLike, count: int, frames_per_video: int = 10, seed: int = 0,
                      detection: dict[str, Any] | None = None,
                      median_crop: tuple[int, int] | None = DFDC_MEDIAN_CROP, device: str = "cpu") -> list[bytes]:
    """``count`` distinct JPEG face crops from the DFDC sample videos, made as extraction makes them.

    Faces are detected (thesis settings: faces of 70 px and more, 30 px margin, JPEG quality 95)
    on ``frames_per_video`` evenly spaced frames of each video; every crop is cut at full
    resolution from one of those frames with its box shifted and scaled by a few per cent, so
    the crops differ byte for byte (a dataset of identical bytes would compress unrealistically).
    With ``median_crop`` each crop is then resized, aspect kept, so that the crops' median area is
    that of DFDC's median 1080p crop (the samples' faces are smaller), spread log-normally (sigma 0.3).
    """
    import cv2  # imported on use, like the detector's own OpenCV calls

    detector = FaceDetector.from_config(detection or {}, device=device)
    rng = np.random.default_rng(seed)
    faces: list[tuple[np.ndarray, np.ndarray]] = []
    for video in sample_videos(Path(samples)):
        info = probe(video)
        frames = read_frames(video, evenly_spaced_indices(info.frames, frames_per_video))
        for frame, found in zip(frames, detector.detect(frames)):
            faces += [(frame, box) for box in found.boxes]
    if not faces:
        raise RuntimeError(f"no faces found in the DFDC sample videos under {samples}")
    crops = []
    for i in range(count):
        frame, box = faces[i % len(faces)]
        w, h = box[2] - box[0], box[3] - box[1]
        jitter = rng.uniform(-0.04, 0.04, size=4) * np.array([w, h, w, h])
        crop, _ = crop_with_margin(frame, box + jitter, detector.margin)
        if median_crop is not None:
            scale = math.sqrt(median_crop[0] * median_crop[1] / (crop.shape[0] * crop.shape[1])) * rng.lognormal(0, 0.3)
            crop = cv2.resize(crop, None, fx=scale, fy=scale,
                              interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        crops.append(encode_jpeg(crop, detector.jpeg_quality))
    return crops


def _pool_order(n: int, pool: int, rng: np.random.Generator) -> np.ndarray:
    """Which crop each of ``n`` faces gets: the pool cycled, shuffled within each cycle."""
    cycles = math.ceil(n / pool)
    return np.concatenate([rng.permutation(pool) for _ in range(cycles)])[:n]


def write_study_sized_split(path: str | os.PathLike, crops: Sequence[bytes], size: StudySize | None = None,
                seed: int = 0) -> dict[str, int]:
    """A splits Parquet (``SPLITS_SCHEMA``) of ``size.split_faces`` faces, ``validation_fraction``
    of them ``val``, each with a distinct id, its video's id and a crop of ``crops``.

    Written in row groups (the JPEG bytes are never all in memory); returns faces and JPEG bytes
    per split.
    """
    size = size or StudySize.thesis()
    rng = np.random.default_rng(seed)
    n = size.split_faces
    labels = np.zeros(n, dtype=np.int8)
    labels[rng.permutation(n)[: size.split_fakes]] = LABEL_FAKE
    n_val = round(n * size.validation_fraction)
    sides = np.array(["train"] * (n - n_val) + ["val"] * n_val)
    picks = _pool_order(n, len(crops), rng)
    crop_bytes = np.fromiter((len(c) for c in crops), dtype=np.int64, count=len(crops))
    totals = {"faces": n, "train_faces": n - n_val, "val_faces": n_val,
              "jpeg_bytes": int(crop_bytes[picks].sum()), "train_jpeg_bytes": int(crop_bytes[picks[: n - n_val]].sum())}
    per_video = size.faces_per_video
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, SPLITS_SCHEMA, compression="zstd") as writer:
        for start in range(0, n, ROW_GROUP * 8):
            idx = np.arange(start, min(n, start + ROW_GROUP * 8))
            video = np.char.add("dfdc_train_part_0/v", (idx // per_video).astype(str))
            face_id = np.char.add(np.char.add(video, "/"), (idx % per_video).astype(str))
            table = pa.table(
                {
                    "dataset": pa.array(np.full(len(idx), "dfdc_train")),
                    "video_id": pa.array(video),
                    "face_id": pa.array(np.char.add(face_id, "/0")),
                    "group": pa.array(np.full(len(idx), "dfdc_train_part_0")),
                    "original": pa.nulls(len(idx), pa.string()),
                    "label": pa.array(labels[idx]),
                    "split": pa.array(sides[idx]),
                    # replicated crops: their landmarks are not known (null, as the schema allows)
                    "landmarks": pa.nulls(len(idx), SPLITS_SCHEMA.field("landmarks").type),
                    "jpeg": pa.array([crops[i] for i in picks[idx]], type=pa.binary()),
                },
                schema=SPLITS_SCHEMA,
            )
            writer.write_table(table, row_group_size=ROW_GROUP)
    return totals


def train_flow_tables(manifest: Any, faces_per_video: int) -> tuple[pa.Table, pa.Table]:
    """Faces metadata (``FACES_SCHEMA`` without ``jpeg``) and status rows (``STATUS_SCHEMA``) that the
    train flow would write for every video of a manifest: ``faces_per_video`` faces each."""
    n_videos = len(manifest)
    video_ids = manifest["video_id"].to_numpy(dtype=str)
    labels = manifest["label"].to_numpy(dtype=np.int8)
    frames = np.tile(np.arange(faces_per_video, dtype=np.int32) * 30 + 15, n_videos)
    video_col = np.repeat(video_ids, faces_per_video)
    face_ids = np.char.add(np.char.add(np.char.add(video_col, "/"), frames.astype(str)), "/0")
    n = len(video_col)
    datasets = manifest["dataset"].to_numpy(dtype=str)
    faces = pa.table(
        {
            "dataset": pa.array(np.repeat(datasets, faces_per_video)),
            "video_id": pa.array(video_col),
            "face_id": pa.array(face_ids),
            "frame": pa.array(frames),
            "target_frame": pa.array(frames),
            "face": pa.array(np.zeros(n, np.int16)),
            "track": pa.array(np.full(n, -1, np.int32)),
            "x0": pa.array(np.full(n, 700, np.float32)), "y0": pa.array(np.full(n, 200, np.float32)),
            "x1": pa.array(np.full(n, 1050, np.float32)), "y1": pa.array(np.full(n, 480, np.float32)),
            "prob": pa.array(np.full(n, 0.999, np.float32)),
            "label": pa.array(np.repeat(labels, faces_per_video)),
            "box_source": pa.array(np.where(np.repeat(labels, faces_per_video) == LABEL_FAKE, "original", "self")),
            "landmarks": pa.nulls(n, FACES_SCHEMA.field("landmarks").type),
        }
    )
    status = pa.table(
        {
            "dataset": pa.array(datasets),
            "video_id": pa.array(video_ids),
            "path": pa.array(manifest["path"].to_numpy(dtype=str)),
            "label": pa.array(labels),
            "status": pa.array(np.full(n_videos, "ok")),
            "message": pa.array(np.full(n_videos, "")),
            "frames_total": pa.array(np.full(n_videos, 300, np.int32)),
            "frames_read": pa.array(np.full(n_videos, faces_per_video, np.int32)),
            "faces_detected": pa.array(np.full(n_videos, faces_per_video, np.int32)),
            "faces_kept": pa.array(np.full(n_videos, faces_per_video, np.int32)),
            "box_source": pa.array(np.where(labels == LABEL_FAKE, "original", "self")),
            "seconds": pa.array(np.full(n_videos, 1.0, np.float32)),
            "frames_failed": pa.array(np.zeros(n_videos, np.int32)),
            "frames_skipped": pa.array(np.zeros(n_videos, np.int32)),
        },
        schema=STATUS_SCHEMA,
    )
    return faces, status


def write_train_flow_chunks(folder: str | os.PathLike, manifest: Any, crops: Sequence[bytes], chunks: int,
                            faces_per_video: int = 10, seed: int = 0) -> dict[str, int]:
    """The extraction stage's output for ``manifest``'s videos: ``<chunk>.parquet`` (faces with JPEG
    bytes, ``FACES_SCHEMA``) and ``<chunk>.status.parquet`` per chunk, videos assigned to chunks as
    extraction assigns them. Returns faces and JPEG bytes written."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    faces, status = train_flow_tables(manifest, faces_per_video)
    video_chunk = np.array([chunk_of(v, chunks) for v in manifest["video_id"]])
    face_chunk = np.repeat(video_chunk, faces_per_video)
    picks = _pool_order(faces.num_rows, len(crops), rng)
    crop_bytes = np.fromiter((len(c) for c in crops), dtype=np.int64, count=len(crops))
    for chunk in range(chunks):
        rows = np.flatnonzero(face_chunk == chunk)
        part = faces.take(pa.array(rows))
        with atomic_path(folder / f"{chunk:03d}.parquet") as tmp, pq.ParquetWriter(tmp, FACES_SCHEMA, compression="zstd") as writer:
            for start in range(0, len(rows), ROW_GROUP):
                sl = slice(start, start + ROW_GROUP)
                jpeg = pa.array([crops[i] for i in picks[rows[sl]]], type=pa.binary())
                writer.write_table(part.slice(start, ROW_GROUP).append_column("jpeg", jpeg).cast(FACES_SCHEMA))
        with atomic_path(folder / f"{chunk:03d}.status.parquet") as tmp:
            pq.write_table(status.take(pa.array(np.flatnonzero(video_chunk == chunk))), tmp, compression="zstd")
    return {"faces": faces.num_rows, "videos": len(manifest), "jpeg_bytes": int(crop_bytes[picks].sum())}
