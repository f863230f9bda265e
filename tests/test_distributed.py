"""DistributedDataParallel on CPU: two gloo processes started through torchrun, as the train rule does."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from face_crops import write_split
from test_train import SETTINGS

from facesleuth.train import load_checkpoint, train_or_launch, train_run


@pytest.fixture(scope="module")
def split(samples, tmp_path_factory):
    # 7 train videos x 4 faces = 28 faces: 3 full batches of 8 and a remainder of 4 (dropped)
    return write_split(tmp_path_factory.mktemp("ddp") / "split.parquet", samples, train_videos=7, val_videos=3)


def settings(**training):
    out = copy.deepcopy(SETTINGS)
    out["training"].update(training)
    return out


def test_two_processes_train_like_one(split, tmp_path):
    torch.set_num_threads(1)
    single = train_run(split, tmp_path / "single", settings(epochs=2))
    run_dir = tmp_path / "ddp"
    summary = train_or_launch(split, run_dir, settings(epochs=2, gpus=2))

    assert summary["run"]["processes"] == 2
    # Same global batches: the same number of training and validation samples per epoch.
    assert [r["train_images"] for r in summary["history"]] == [r["train_images"] for r in single["history"]] == [24, 24]
    assert [r["val_images"] for r in summary["history"]] == [r["val_images"] for r in single["history"]] == [12, 12]
    # Rank 0 alone wrote the run folder: one history, one best and one last checkpoint, no leftovers.
    assert sorted(p.name for p in run_dir.iterdir()) == ["best.pt", "history.csv", "last.pt", "run.yaml"]
    assert pd.read_csv(run_dir / "history.csv")["epoch"].tolist() == [1, 2]
    last = load_checkpoint(run_dir / "last.pt")
    assert last["epoch"] == 2 and not any(k.startswith("module.") for k in last["model_state"])

    # A rerun with more epochs resumes from last.pt in both processes.
    resumed = train_or_launch(split, run_dir, settings(epochs=3, gpus=2))
    assert resumed["resumed_from"] == 2
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    assert [r["train_loss"] for r in resumed["history"][:2]] == [r["train_loss"] for r in summary["history"]]


def test_batch_must_divide_among_processes(split, tmp_path):
    with pytest.raises(ValueError, match="batch_size 8 must be divisible by training.gpus 3"):
        train_or_launch(split, tmp_path, settings(epochs=1, gpus=3))


@pytest.mark.parametrize("size,batch,world", [(28, 8, 2), (30, 8, 4), (5, 8, 2), (64, 16, 1)])
def test_processes_share_each_global_batch_without_overlap(size, batch, world):
    from facesleuth.data import EpochBatchSampler

    single = EpochBatchSampler(size, batch, shuffle=True, drop_last=True, seed=3)
    single.set_epoch(2)
    shards = []
    for rank in range(world):
        sampler = EpochBatchSampler(size, batch, shuffle=True, drop_last=True, seed=3, rank=rank, world_size=world)
        sampler.set_epoch(2)
        shards.append(list(sampler))
        assert len(sampler) == len(single)  # every process takes the same number of steps
    for step, global_batch in enumerate(single):
        parts = [shard[step] for shard in shards]
        assert len({len(p) for p in parts}) == 1
        assert sorted(i for p in parts for i in p) == sorted(global_batch[: len(parts[0]) * world])
    other_epoch = EpochBatchSampler(size, batch, shuffle=True, drop_last=True, seed=3)
    other_epoch.set_epoch(3)
    if size > batch:
        assert list(other_epoch) != list(single)  # reshuffled each epoch
