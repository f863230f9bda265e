"""DistributedDataParallel on CPU: two gloo processes (through torchrun, as the train rule does,
and spawned directly to read every step's loss) against one process on the same global batches.

Equivalence is checked on a model without BatchNorm (timm's ``test_efficientnet_gn``, GroupNorm):
torch runs SyncBatchNorm on CUDA only, so on CPU a BatchNorm model normalises each half batch by
its own statistics and is not equivalent to one process; that its BatchNorm layers become
SyncBatchNorm on GPUs is checked on the conversion itself. Tolerance: float32 sums in another
order (two half-batch gradients all-reduced instead of one batch): about 2e-7 relative on the
losses, so the tests allow 1e-5; for the weights see WEIGHT_ATOL below.
"""

from __future__ import annotations

import copy
import logging
import os
import socket

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from face_crops import write_split
from train_settings import TINY_RUN as SETTINGS

from facesleuth.train.data import EpochBatchSampler, FaceDataset, make_loader
from facesleuth.train.models import build_model
from facesleuth.train.loop import (
    Distributed,
    Trainer,
    convert_batchnorm,
    has_batchnorm,
    load_checkpoint,
    seed_everything,
    train_or_launch,
    train_run,
)

#: A small convolutional timm model normalised by GroupNorm: no BatchNorm, no per-process statistics.
NO_BATCHNORM_MODEL = "test_efficientnet_gn"
LOSS_RTOL = 1e-5
# Adam (the Trainer's, in the torchrun test) normalises each parameter's step, so a roundoff-level
# difference in a near-zero gradient can become a visible step difference (up to 5e-6 seen over 6
# steps, once over 1e-4), while the weights move about 6e-3. The per-step test swaps in SGD, whose
# step is linear in the gradient: there the weights differ by 1.2e-7 to 2.4e-7 and move 1.5e-2.
WEIGHT_ATOL, SGD_WEIGHT_ATOL = 1e-4, 1e-6
SGD_LR = 0.05


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
    from facesleuth.train.data import EpochBatchSampler

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


# ---------------------------------------------------------------- equivalence with one process


def equivalent_settings(**training):
    """No randomness that differs between one and two processes: no augmentation, no dropout."""
    out = settings(dropout=0.0, **training)
    out["model"], out["setup"] = NO_BATCHNORM_MODEL, "none"
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train_steps(rank: int, world_size: int, split: str, port: int, out: str, epochs: int = 2) -> None:
    """Train with the real Trainer, sampler and dataset; rank 0 saves each global step's loss and the weights."""
    torch.set_num_threads(1)
    training = equivalent_settings()["training"]
    dist_ctx = Distributed(rank=rank, local_rank=rank, world_size=world_size)
    if dist_ctx.enabled:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        seed, device = training["seed"], torch.device("cpu")
        train_set = FaceDataset.from_split(split, "train", training["input_size"], None, seed=seed)
        sampler = EpochBatchSampler(len(train_set), training["batch_size"], shuffle=True, drop_last=True, seed=seed,
                                    rank=rank, world_size=world_size)
        loader = make_loader(train_set, batch_sampler=sampler, num_workers=0, device=device, seed=seed)
        seed_everything(seed)
        model = build_model(NO_BATCHNORM_MODEL, pretrained=False, weights=None, dropout=0.0)
        trainer = Trainer(model, device, "fp32", training["lr"], dist_ctx=dist_ctx)
        # SGD in place of the Trainer's Adam, so that roundoff stays roundoff (see WEIGHT_ATOL)
        trainer.optimizer = torch.optim.SGD(trainer.module.parameters(), lr=SGD_LR)
        losses = []
        for epoch in range(1, epochs + 1):
            sampler.set_epoch(epoch)
            train_set.set_epoch(epoch)
            trainer.model.train()
            for images, labels in loader:
                loss = trainer.train_step(images, labels)
                # Each process holds the mean over its equal share: their mean is the global batch's.
                losses.append(float(trainer._all_reduce(loss.clone())) / world_size)
        if rank == 0:
            torch.save({"losses": losses, "state": trainer.module.state_dict()}, out)
    finally:
        if dist_ctx.enabled:
            torch.distributed.destroy_process_group()


def test_two_processes_give_one_process_per_step_losses_and_weights(split, tmp_path):
    # Both sides in fresh processes: state left in this one by earlier tests (threads, oneDNN caches)
    # must not enter the comparison.
    mp.spawn(_train_steps, args=(1, str(split), 0, str(tmp_path / "one.pt")), nprocs=1, join=True)
    mp.spawn(_train_steps, args=(2, str(split), _free_port(), str(tmp_path / "two.pt")), nprocs=2, join=True)
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert len(one["losses"]) == len(two["losses"]) == 6  # 3 global batches of 8 per epoch, 2 epochs
    assert two["losses"] == pytest.approx(one["losses"], rel=LOSS_RTOL)
    assert len(set(one["losses"])) == 6  # the model learns: the steps' losses differ
    assert one["state"].keys() == two["state"].keys()
    for key, value in one["state"].items():
        torch.testing.assert_close(two["state"][key], value, rtol=0, atol=SGD_WEIGHT_ATOL, msg=key)
    # and the weights moved much further than the tolerance: the comparison can fail
    seed_everything(equivalent_settings()["training"]["seed"])  # the initial weights both sides trained from
    initial = build_model(NO_BATCHNORM_MODEL, pretrained=False, weights=None, dropout=0.0).state_dict()
    moved = max(float((one["state"][k] - initial[k]).abs().max()) for k in initial if initial[k].is_floating_point())
    assert moved > 1000 * SGD_WEIGHT_ATOL


def test_torchrun_training_matches_one_process_without_batchnorm(split, tmp_path):
    torch.set_num_threads(1)
    single = train_run(split, tmp_path / "single", equivalent_settings(epochs=2))
    ddp = train_or_launch(split, tmp_path / "ddp", equivalent_settings(epochs=2, gpus=2))
    for key in ("train_loss", "val_loss"):
        assert [r[key] for r in ddp["history"]] == pytest.approx([r[key] for r in single["history"]], rel=LOSS_RTOL)
    assert ddp["best_epoch"] == single["best_epoch"]
    one, two = load_checkpoint(tmp_path / "single" / "last.pt"), load_checkpoint(tmp_path / "ddp" / "last.pt")
    for key, value in one["model_state"].items():
        torch.testing.assert_close(two["model_state"][key], value, rtol=0, atol=WEIGHT_ATOL, msg=key)


def test_batchnorm_becomes_syncbatchnorm_for_several_cuda_processes(caplog):
    model = build_model("test_efficientnet", pretrained=False, weights=None, dropout=0.0)
    assert has_batchnorm(model) and not has_batchnorm(build_model(NO_BATCHNORM_MODEL, pretrained=False, weights=None))
    keys = list(model.state_dict())
    two = Distributed(rank=0, local_rank=0, world_size=2)

    converted = convert_batchnorm(copy.deepcopy(model), torch.device("cuda", 0), two)
    sync = [m for m in converted.modules() if isinstance(m, torch.nn.SyncBatchNorm)]
    plain = [m for m in converted.modules() if type(m) in (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)]
    assert len(sync) == sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()) > 0
    assert not plain
    assert list(converted.state_dict()) == keys  # checkpoints still load into the plain model

    # One process, the setting off, or CPU processes (torch refuses SyncBatchNorm there): unchanged.
    assert convert_batchnorm(model, torch.device("cuda", 0), Distributed()) is model
    assert convert_batchnorm(model, torch.device("cuda", 0), two, enabled=False) is model
    with caplog.at_level(logging.WARNING, logger="facesleuth.train.loop"):
        assert convert_batchnorm(model, torch.device("cpu"), two) is model
    assert "SyncBatchNorm on CUDA only" in caplog.text
