"""Face datasets straight from Parquet: JPEG bytes -> letterbox -> augmentation -> uint8 tensor.

Faces live as JPEG bytes inside Parquet files (never one file per face). A dataset keeps the
``jpeg`` column as Arrow buffers, about 1.0x the JPEG bytes in memory (the buffers are shared
copy-on-write with forked DataLoader workers, unlike millions of Python ``bytes`` objects whose
reference counts would touch every page) and decodes each face once, from a zero-copy view.

Items are ``(uint8 (S, S, 3) tensor, label)``; normalisation happens per batch on the
training device (:func:`facesleuth.train.preprocess.normalize_batch`).

Randomness is reproducible: :class:`EpochBatchSampler` shuffles with ``(seed, epoch)`` and each
face's augmentation draws from generators seeded with ``(seed, epoch, index)`` (about 15 us,
against 0.5 ms for the augmentation itself), so the images do not depend on the number of
DataLoader workers, and a run resumed at epoch k sees exactly the batches an uninterrupted run
would.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader

from facesleuth.train.preprocess import decode_jpeg, letterbox
from facesleuth.train.sbi import SelfBlender, landmarks_array

if TYPE_CHECKING:  # pragma: no cover
    import albumentations as A

log = logging.getLogger(__name__)


class JpegColumn:
    """Random access to an Arrow binary column as zero-copy numpy views (no per-item bytes copy)."""

    def __init__(self, column: pa.ChunkedArray | pa.Array):
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        self._data: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        starts = [0]
        for chunk in chunks:
            if chunk.null_count:
                raise ValueError("the jpeg column holds nulls: every face row needs its JPEG bytes")
            if pa.types.is_binary(chunk.type) or pa.types.is_string(chunk.type):
                offset_type = np.int32
            elif pa.types.is_large_binary(chunk.type):
                offset_type = np.int64
            else:
                raise TypeError(f"the jpeg column must be binary, got {chunk.type}")
            _, offsets_buf, data_buf = chunk.buffers()
            offsets = np.frombuffer(offsets_buf, dtype=offset_type)[chunk.offset : chunk.offset + len(chunk) + 1]
            data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
            self._offsets.append(offsets)
            self._data.append(data)
            starts.append(starts[-1] + len(chunk))
        self._starts = np.asarray(starts, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        chunk = int(np.searchsorted(self._starts, index, side="right")) - 1
        local = index - int(self._starts[chunk])
        offsets = self._offsets[chunk]
        return self._data[chunk][offsets[local] : offsets[local + 1]]


class FaceDataset:
    """JPEG faces with labels -> ``(uint8 (S, S, 3) tensor, label)``, letterboxed and augmented.

    Build with :meth:`from_split` (training) or :meth:`from_faces` (prediction), or directly
    from an Arrow binary column and labels.
    """

    def __init__(
        self,
        jpegs: pa.ChunkedArray | pa.Array,
        labels: Sequence[int] | np.ndarray,
        input_size: int,
        augmentation: "A.Compose | None" = None,
        seed: int = 0,
        names: "Sequence[str] | pa.ChunkedArray | None" = None,
    ):
        self.jpegs = JpegColumn(jpegs)
        self.labels = np.asarray(labels, dtype=np.int64)
        if len(self.labels) != len(self.jpegs):
            raise ValueError(f"{len(self.jpegs)} JPEGs but {len(self.labels)} labels")
        self.input_size = int(input_size)
        self.augmentation = augmentation
        self.seed = int(seed)
        self.names = names  # face ids, for error messages
        self.epoch = 0
        self.set_epoch(0)

    # -------------------------------------------------------------- constructors

    @classmethod
    def from_split(
        cls,
        path: str | os.PathLike,
        split: str,
        input_size: int,
        augmentation: "A.Compose | None" = None,
        seed: int = 0,
    ) -> "FaceDataset":
        """The ``split`` (train | val) rows of a splits Parquet (:data:`facesleuth.io.SPLITS_SCHEMA`)."""
        table = read_split(path, split)
        # face ids stay an Arrow column: 415,000 Python strings would cost every process tens of MB
        return cls(table.column("jpeg"), table.column("label").to_numpy(), input_size, augmentation, seed,
                   names=table.column("face_id"))

    @classmethod
    def from_validation_faces(cls, paths: "Iterable[str | os.PathLike]", input_size: int) -> "FaceDataset":
        """The labelled faces of a validation dataset's faces files (:func:`read_validation_faces`)."""
        table = read_validation_faces(paths)
        return cls(table.column("jpeg"), table.column("label").to_numpy().astype(np.int64), input_size,
                   names=table.column("face_id").to_pylist())

    @classmethod
    def from_faces(cls, faces: "pa.Table | Any", input_size: int) -> "FaceDataset":
        """Faces to score (a faces table or DataFrame with a ``jpeg`` column); no augmentation."""
        if isinstance(faces, pa.Table):
            jpegs = faces.column("jpeg")
            labels = faces.column("label").to_numpy() if "label" in faces.column_names else np.full(len(faces), -1)
        else:
            jpegs = pa.array(faces["jpeg"].tolist(), type=pa.binary())
            labels = faces["label"].to_numpy() if "label" in faces else np.full(len(faces), -1)
        return cls(jpegs, np.asarray(labels, dtype=np.int64), input_size)

    # -------------------------------------------------------------- sampling

    def set_epoch(self, epoch: int) -> None:
        """The augmentation of each face follows from (seed, epoch, index): epochs replay exactly."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def decode(self, row: int) -> np.ndarray:
        """The face crop of ``row``, as stored (RGB uint8)."""
        try:
            return decode_jpeg(self.jpegs[row])
        except ValueError as err:
            name = self.names[row] if self.names is not None else f"row {row}"
            name = name.as_py() if isinstance(name, pa.Scalar) else name
            raise ValueError(f"face {name}: {err}") from None

    def load(self, index: int) -> np.ndarray:
        """The letterboxed (and augmented) uint8 (S, S, 3) image of face ``index``."""
        return self.prepare(self.decode(index), index)

    def prepare(self, image: np.ndarray, index: int) -> np.ndarray:
        """Letterbox ``image`` and augment it as item ``index`` of the current epoch."""
        image = letterbox(image, self.input_size)
        if self.augmentation is not None:
            # albumentations 2.x draws from its own generators, not numpy's global state.
            rng = np.random.default_rng([self.seed % 2**32, self.epoch, index])
            self.augmentation.set_random_state(rng, random.Random(int(rng.integers(2**63))))
            image = self.augmentation(image=image)["image"]
        return image

    def __getitem__(self, index: int) -> tuple["torch.Tensor", int]:
        return torch.from_numpy(np.ascontiguousarray(self.load(index))), int(self.labels[index])


class SelfBlendedFaceDataset(FaceDataset):
    """A training split plus a self-blended pseudo-fake of each real face (the ``sbi`` setup).

    Items are the split's faces (its reals only, with ``real_only``) followed by one
    self-blended copy of every real face that has landmarks, labelled fake: with ``real_only``
    half the items are reals and half their blends. A blend is made when its item is loaded,
    from generators seeded with (seed, epoch, index), so each epoch sees new blends and a
    resumed run the same ones; the setup's augmentation chain then runs on it as on any face.
    """

    def __init__(
        self,
        jpegs: pa.ChunkedArray | pa.Array,
        labels: Sequence[int] | np.ndarray,
        landmarks: Sequence[Any],
        input_size: int,
        augmentation: "A.Compose | None" = None,
        seed: int = 0,
        names: Sequence[str] | None = None,
        real_only: bool = True,
        blender: SelfBlender | None = None,
    ):
        super().__init__(jpegs, labels, input_size, augmentation, seed, names)
        self.face_labels = self.labels
        self.landmarks = [landmarks_array(points) for points in landmarks]
        if len(self.landmarks) != len(self.face_labels):
            raise ValueError(f"{len(self.face_labels)} faces but {len(self.landmarks)} landmark rows")
        reals = np.flatnonzero(self.face_labels == 0)
        blendable = np.array([i for i in reals if self.landmarks[i] is not None], dtype=np.int64)
        if len(blendable) == 0:
            raise ValueError(
                "no real face of the split has landmarks to self-blend; faces extracted before the "
                "landmarks were kept must be extracted again (rerun the extract_faces rule)"
            )
        if len(blendable) < len(reals):
            log.warning("%d of %d real faces have no landmarks and are not self-blended", len(reals) - len(blendable), len(reals))
        kept = reals if real_only else np.arange(len(self.face_labels))
        self.sources = np.concatenate([kept, blendable])
        self.blended = np.concatenate([np.zeros(len(kept), bool), np.ones(len(blendable), bool)])
        self.labels = np.where(self.blended, 1, self.face_labels[self.sources]).astype(np.int64)
        self.real_only = bool(real_only)
        self.blender = blender or SelfBlender()

    def load(self, index: int) -> np.ndarray:
        row = int(self.sources[index])
        image = self.decode(row)
        if self.blended[index]:
            rng = np.random.default_rng([self.seed % 2**32, self.epoch, index, 1])
            image = self.blender(image, self.landmarks[row], rng).image
        return self.prepare(image, index)

    @classmethod
    def from_split(
        cls,
        path: str | os.PathLike,
        split: str,
        input_size: int,
        augmentation: "A.Compose | None" = None,
        seed: int = 0,
        real_only: bool = True,
    ) -> "SelfBlendedFaceDataset":
        table = read_split(path, split)
        if "landmarks" not in table.column_names:
            raise ValueError(f"{path} has no landmarks column; rebuild the split from faces extracted with landmarks")
        return cls(
            table.column("jpeg"), table.column("label").to_numpy(), table.column("landmarks").to_pylist(), input_size,
            augmentation, seed, names=table.column("face_id").to_pylist(), real_only=real_only,
        )


def self_blended_train_set(
    split_path: str | os.PathLike, input_size: int, augmentation: "A.Compose | None", seed: int, training: dict[str, Any]
) -> SelfBlendedFaceDataset:
    """Training set of the ``sbi`` setup (its registry entry names this builder); ``training``
    is the run's training section, whose ``sbi.real_only`` (default true) leaves the split's
    fakes out."""
    real_only = bool((training.get("sbi") or {}).get("real_only", True))
    dataset = SelfBlendedFaceDataset.from_split(split_path, "train", input_size, augmentation, seed, real_only=real_only)
    log.info(
        "self-blended training set: %d faces (%s) + %d self-blended fakes",
        int((~dataset.blended).sum()), "reals only" if real_only else "reals and fakes", int(dataset.blended.sum()),
    )
    return dataset


def read_split(path: str | os.PathLike, split: str) -> pa.Table:
    """Rows of ``split`` from a splits Parquet; clear errors for a wrong file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"split file {path} does not exist (run the splits rule first)")
    needed = ["face_id", "video_id", "label", "split", "jpeg"]
    schema = pq.read_schema(path)
    missing = [name for name in needed if name not in schema.names]
    if missing:
        raise ValueError(f"{path} is not a splits file: columns {missing} are missing")
    wanted = needed + [name for name in ("dataset", "landmarks") if name in schema.names]
    # Row group by row group, keeping the rows of ``split``: reading the whole file at once peaks
    # at twice its JPEG bytes (compressed pages beside decoded columns), and the allocator keeps
    # the freed half unless told to return it, so a training process held 2x the JPEG bytes for
    # its whole life (benchmarks/README.md, scale rehearsal).
    parquet = pq.ParquetFile(path, pre_buffer=False)
    kept = []
    for group in range(parquet.num_row_groups):
        batch = parquet.read_row_group(group, columns=wanted)
        rows = pc.equal(batch.column("split"), split)
        if pc.any(rows).as_py():
            kept.append(batch.filter(rows))
    parquet.close()
    table = pa.concat_tables(kept) if kept else parquet.schema_arrow.empty_table().select(wanted)
    pa.default_memory_pool().release_unused()
    labels = table.column("label").to_numpy()
    bad = sorted(set(labels.tolist()) - {0, 1})
    if bad:
        raise ValueError(f"{path}: split {split!r} has labels {bad}; training needs 0 (real) and 1 (fake)")
    return table


def read_validation_faces(paths: "Iterable[str | os.PathLike]") -> pa.Table:
    """The labelled faces of a validation dataset's faces files (test flow), in file order.

    Faces of videos without a label (-1) are dropped with a warning; the rest must be 0 (real)
    or 1 (fake), as a split's are.
    """
    wanted = ["face_id", "video_id", "label", "jpeg"]
    tables = []
    for path in paths:
        names = pq.read_schema(path).names
        missing = [name for name in wanted if name not in names]
        if missing:
            raise ValueError(f"{path} is not a faces file: columns {missing} are missing")
        tables.append(pq.read_table(path, columns=wanted, memory_map=True))
    if not tables:
        raise ValueError("no validation faces files given")
    table = pa.concat_tables(tables)
    labels = table.column("label").to_numpy()
    unlabelled = int((labels == -1).sum())
    if unlabelled:
        log.warning("%d validation faces belong to videos without a label; left out", unlabelled)
        table = table.filter(pc.not_equal(table.column("label"), -1))
    bad = sorted(set(table.column("label").to_numpy().tolist()) - {0, 1})
    if bad:
        raise ValueError(f"validation faces have labels {bad}; validation needs 0 (real) and 1 (fake)")
    return table


class EpochBatchSampler:
    """Global batches of ``batch_size`` shuffled with ``seed + epoch``; each process takes its slice.

    Used alone (``world_size`` 1) and under DistributedDataParallel alike, so a multi-process
    run sees the same global batches, steps and samples per epoch as a single process: each
    global batch is cut into ``world_size`` equal slices (hence ``batch_size`` must divide by
    it). In training the last incomplete batch is dropped (it is a different one every epoch,
    and a tiny batch upsets BatchNorm); when the data is smaller than one batch, one batch of
    all of it (rounded down to the world size) is kept.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"training.batch_size {batch_size} must be divisible by the {world_size} processes")
        if size < world_size:
            raise ValueError(f"{size} samples cannot be shared by {world_size} processes")
        self.size, self.batch_size, self.shuffle, self.drop_last = size, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_batches(self) -> list[np.ndarray]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        else:
            order = np.arange(self.size)
        full = self.size // self.batch_size
        batches = [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(full)]
        rest = order[full * self.batch_size :]
        if len(rest) and (not self.drop_last or full == 0):
            keep = len(rest) - len(rest) % self.world_size
            if keep:
                batches.append(rest[:keep])
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches():
            share = len(batch) // self.world_size
            yield batch[self.rank * share : (self.rank + 1) * share].tolist()

    def __len__(self) -> int:
        return len(self.global_batches())


class ShardSampler:
    """Every ``world_size``-th index from ``rank``, in order, without padding (evaluation: each sample once)."""

    def __init__(self, size: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, size, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _seed_worker(worker_id: int) -> None:
    """Seed numpy and random in each worker from torch's per-worker seed (for any other randomness).

    (OpenCV's thread count is left alone: ``cv2.setNumThreads`` in a forked worker deadlocked
    here, its thread pool having been started in the parent.)
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: FaceDataset,
    batch_size: int | None = None,
    *,
    batch_sampler: EpochBatchSampler | None = None,
    sampler: Sequence[int] | None = None,
    num_workers: int = 0,
    device: "str | torch.device" = "cpu",
    seed: int = 0,
) -> "torch.utils.data.DataLoader":
    """A DataLoader with pinned memory on GPU, seeded workers and prefetching.

    Workers are not persistent: they are forked afresh each epoch and so see the dataset's
    current epoch (which seeds the augmentation).
    """
    on_gpu = str(device).startswith("cuda")
    generator = torch.Generator()
    generator.manual_seed(seed)
    kwargs: dict[str, Any] = {
        "num_workers": num_workers,
        "pin_memory": on_gpu,
        "worker_init_fn": _seed_worker if num_workers > 0 else None,
        "generator": generator,
    }
    if num_workers > 0:
        kwargs["prefetch_factor"] = 4
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, **kwargs)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, drop_last=False, **kwargs)
