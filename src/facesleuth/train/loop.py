"""Training one run (thesis 2.5): cross-entropy, Adam at a fixed learning rate, at most N epochs.

A run folder (``results/models/{model}/{aug}/``, see docs/architecture.md "Run folder") gets:

- ``run.yaml``: the resolved settings (also embedded in every checkpoint, so ``best.pt`` alone
  is enough for the scanner);
- ``best.pt``: the weights of the epoch with the lowest validation loss. The validation faces
  are the split's ``val`` side (a hold-out of train-flow faces), or, with
  ``splits.validation_dataset``, that dataset's test-flow faces (``validation_faces``);
- ``last.pt``: everything needed to resume (model, optimizer, grad scaler, RNG states, history,
  the best weights so far and a fingerprint of the settings). Snakemake deletes the declared
  outputs before a job reruns but not ``last.pt``, so a killed run resumes from it, rewrites
  ``best.pt`` and ``history.csv`` and ends in the same state as an uninterrupted run. A
  ``last.pt`` written for other settings (or another split) is ignored, and the log says so;
- ``history.csv``: ``epoch, train_loss, val_loss, seconds, images_per_s``;
- ``tracking.json`` (with config ``tracking`` on): the experiment trackers' run ids and what they
  were sent, so a resumed run continues its tracked run (:mod:`facesleuth.train.experiments`).

Precision: ``fp16`` is autocast + GradScaler (the thesis), ``bf16`` autocast without a scaler,
``fp32`` none. A NaN or infinite *training* loss stops the run with an error naming the epoch
and step; the last good checkpoint stays. A NaN (or infinite) *validation* loss does not: the
thesis kept training EfficientNet-B4 after its validation loss became NaN and left those epochs
out of Fig. 2.14, so by default the epoch is recorded (``nan`` in ``history.csv``), never chosen
as best, and training goes on; ``training.stop_on_nan_validation: true`` stops there instead,
like a training NaN. If no epoch has a finite validation loss, ``best.pt`` holds the last
epoch's weights, with ``chosen_by: last_epoch_no_finite_val_loss`` (otherwise ``val_loss``)
in ``best.pt`` and in the summary, and a warning in the log: every Table 3.x needs a model per
run, and without a validation loss to choose by, the last epoch is the one trained longest.

Reproducibility: the model is initialised from ``seed``; every epoch reseeds the shuffle, the
augmentation and dropout from ``(seed, epoch)``, so the same seed gives the same history on
CPU and a resumed run replays exactly the epochs it missed.

Multi-GPU (DistributedDataParallel): with ``training.gpus`` > 1 :func:`train_or_launch` starts
``torchrun`` (one process per GPU; gloo processes on a CPU-only machine); under ``torchrun``
(``WORLD_SIZE`` > 1) :func:`train_run` joins the process group. ``batch_size`` stays the global
batch, cut into equal per-process slices, so the steps, samples per epoch and the averaged
gradient are those of a single-process run; losses are reduced across processes and only
rank 0 writes files. BatchNorm would still normalise each process's half batch by its own
statistics, so with ``training.sync_batchnorm`` (default true) BatchNorm layers become
SyncBatchNorm, which normalises by the statistics of the whole global batch, as one process does.
torch runs SyncBatchNorm on CUDA only (DDP refuses it for CPU modules), so gloo processes on a
CPU keep per-process BatchNorm, with a warning: there a BatchNorm model is not equivalent to
one process, a model without BatchNorm is (tests/test_distributed.py shows both).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from facesleuth import __version__, registry
from facesleuth.train import experiments
from facesleuth.train.augment import build_augmentation
from facesleuth.train.checkpoint import load_checkpoint, save_checkpoint
from facesleuth.train.data import EpochBatchSampler, FaceDataset, ShardSampler, make_loader
from facesleuth.io import write_csv, write_text_atomic
from facesleuth.train.backbones import resolve
from facesleuth.train.models import build_model
from facesleuth.train.preprocess import PREPROCESSING, normalize_batch
from facesleuth.registry import AUGMENTATION_SETUPS, PRECISIONS
from facesleuth.runtime import available_cpus, resolve_device

log = logging.getLogger("facesleuth.train.loop")  # also when run as __main__ under torchrun

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "seconds", "images_per_s"]
#: Settings that change how fast, where, how long or whether past a NaN validation a run goes, not
#: what a step learns: left out of the fingerprint, so a run may resume with more workers, on
#: another device or number of GPUs, with more epochs, or after a NaN stop with the stop turned off.
RUNTIME_KEYS = frozenset({"num_workers", "device", "epochs", "gpus", "stop_on_nan_validation", "sync_batchnorm"})
#: ``chosen_by`` of best.pt: the lowest finite validation loss, or the fallback when there is none.
CHOSEN_BY_VAL_LOSS = "val_loss"
CHOSEN_BY_LAST_EPOCH = "last_epoch_no_finite_val_loss"


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


# ---------------------------------------------------------------------------- settings


def _training(settings: dict[str, Any]) -> dict[str, Any]:
    training = dict(settings.get("training") or {})
    required = ["input_size", "epochs", "batch_size", "precision", "lr", "dropout", "pretrained", "seed"]
    missing = [key for key in required if key not in training]
    if missing:
        raise ValueError(f"training settings lack {missing}; pass the validated config's training section")
    if training["precision"] not in PRECISIONS:
        raise ValueError(f"training.precision must be one of {PRECISIONS}, got {training['precision']!r}")
    return training


def settings_fingerprint(settings: dict[str, Any], split_fingerprint: str) -> tuple[str, dict[str, Any]]:
    """Hash of everything that decides what a run learns (and the split it learns from)."""
    training = {k: v for k, v in _training(settings).items() if k not in RUNTIME_KEYS}
    described = {
        "model": settings["model"],
        "setup": settings["setup"],
        "training": training,
        "augmentations": settings.get("augmentations") or {},
        "split": split_fingerprint,
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16], json.loads(text)


def faces_fingerprint(paths: "list[str | os.PathLike]") -> str:
    """Hash of a validation dataset's face ids and labels, file by file (the JPEG bytes unread)."""
    digest = hashlib.sha256()
    for path in paths:
        table = pq.read_table(path, columns=["face_id", "label"], memory_map=True)
        digest.update("\0".join(table.column("face_id").to_pylist()).encode())
        digest.update(table.column("label").to_numpy().astype(np.int8).tobytes())
    return digest.hexdigest()[:16]


def split_fingerprint(path: str | os.PathLike) -> str:
    """Hash of the split's face ids, labels and sides (cheap: leaves the JPEG bytes unread)."""
    table = pq.read_table(path, columns=["face_id", "label", "split"], memory_map=True)
    digest = hashlib.sha256()
    # Values, not Arrow buffers: buffer padding and slicing must not change the hash.
    digest.update("\0".join(table.column("face_id").to_pylist()).encode())
    digest.update(table.column("label").to_numpy().astype(np.int8).tobytes())
    digest.update("\0".join(table.column("split").to_pylist()).encode())
    return digest.hexdigest()[:16]


def _seed_of(*parts: int) -> int:
    return int(np.random.SeedSequence([p % 2**32 for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------- devices


@dataclass
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Distributed":
        """torchrun's variables (absent: one process)."""
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
        )


def resolve_training_device(name: str, dist_ctx: Distributed) -> "torch.device":
    """The device this process trains on, with its index, made current.

    ``torch.cuda.set_device`` takes only an indexed device: a plain ``cuda`` (what ``auto`` and
    ``cuda`` resolve to) becomes the current device (index 0 of what ``CUDA_VISIBLE_DEVICES``,
    set by SLURM, shows), under torchrun the process's ``LOCAL_RANK``.
    """
    device = torch.device(resolve_device(name))
    if device.type != "cuda":
        return device
    visible = torch.cuda.device_count()
    if dist_ctx.enabled:
        if visible < dist_ctx.world_size:
            raise RuntimeError(
                f"{dist_ctx.world_size} training processes but only {visible} GPUs are visible; lower training.gpus"
            )
        if device.index is not None:
            log.warning("training.device %s names one GPU, but %d processes train: process %d takes GPU %d",
                        name, dist_ctx.world_size, dist_ctx.rank, dist_ctx.local_rank)
        index = dist_ctx.local_rank
    else:
        index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= visible:
        raise RuntimeError(f"training.device {name}: GPU {index} asked for, but only {visible} are visible")
    device = torch.device("cuda", index)
    torch.cuda.set_device(device)
    return device


#: How float32 matrix products and convolutions run on a GPU. torch's defaults let cuDNN use TF32
#: for convolutions on Ampere and newer, which is not the FP32 of the thesis's Titan V (Volta,
#: no TF32): every precision turns it off, so ops left in float32 (all of them in fp32, those
#: outside autocast in fp16/bf16) are true FP32. Recorded in run.yaml as ``float32_math``.
FLOAT32_MATH = {"cuda_matmul_tf32": False, "cudnn_tf32": False, "cudnn_benchmark": True}


def float32_math_of(device_type: str) -> dict[str, bool]:
    """:data:`FLOAT32_MATH` as it applies on ``device_type`` (cuDNN autotuning exists on CUDA only)."""
    return dict(FLOAT32_MATH, cudnn_benchmark=device_type == "cuda" and FLOAT32_MATH["cudnn_benchmark"])


def configure_float32_math(device: "torch.device") -> dict[str, bool]:
    """Set :data:`FLOAT32_MATH` explicitly (not left to torch's defaults); returns what applies."""
    torch.backends.cuda.matmul.allow_tf32 = FLOAT32_MATH["cuda_matmul_tf32"]
    torch.backends.cudnn.allow_tf32 = FLOAT32_MATH["cudnn_tf32"]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = FLOAT32_MATH["cudnn_benchmark"]
    return float32_math_of(device.type)


def dataloader_workers(requested: int, processes: int = 1) -> int:
    """DataLoader workers per training process: ``requested``, at most the job's CPUs per process less one.

    The job's CPUs are those this process may run on (SLURM's ``--cpus-per-task``, a taskset), not
    the node's: 8 workers on a job given 4 CPUs only contend with the training loop.
    """
    limit = max(0, available_cpus() // max(1, processes) - 1)
    if requested > limit:
        log.info("training.num_workers %d is more than the %d CPUs of this job allow per process; using %d",
                 requested, available_cpus(), limit)
        return limit
    return requested


@dataclass(frozen=True)
class Precision:
    name: str
    autocast_dtype: "torch.dtype | None"
    use_scaler: bool


def resolve_precision(name: str, device_type: str) -> Precision:
    """fp16 = autocast float16 + GradScaler; bf16 = autocast bfloat16; fp32 = full precision.

    fp16 autocast on CPU works in torch 2.14 but runs several times slower than fp32 (measured
    about 7x on mobilenetv3_small_050): allowed, with a warning to use bf16 or fp32 there.
    """
    if name == "fp32":
        return Precision(name, None, False)
    if name == "bf16":
        if device_type == "cuda" and not torch.cuda.is_bf16_supported():
            raise RuntimeError("training.precision bf16 needs a GPU with bfloat16 support (Ampere or newer); use fp16")
        return Precision(name, torch.bfloat16, False)
    if name == "fp16":
        if device_type == "cpu":
            log.warning("training.precision fp16 on CPU is slow (no fast float16 kernels); bf16 or fp32 train faster there")
        return Precision(name, torch.float16, True)
    raise ValueError(f"training.precision must be one of {PRECISIONS}, got {name!r}")


def has_batchnorm(model: "nn.Module") -> bool:
    from torch.nn.modules.batchnorm import _BatchNorm

    return any(isinstance(m, _BatchNorm) for m in model.modules())


def convert_batchnorm(model: "nn.Module", device: "torch.device", dist_ctx: Distributed, enabled: bool = True) -> "nn.Module":
    """BatchNorm -> SyncBatchNorm when training in several CUDA processes (``enabled``).

    One process or ``enabled`` false: the model unchanged. CPU (gloo) processes: unchanged with a
    warning, because torch's DDP refuses SyncBatchNorm on CPU modules. The state dict keeps its
    keys either way, so checkpoints load into the plain model.
    """
    if not (dist_ctx.enabled and enabled and has_batchnorm(model)):
        return model
    if device.type != "cuda":
        log.warning("training.sync_batchnorm: torch runs SyncBatchNorm on CUDA only; the %d CPU processes keep "
                    "per-process BatchNorm statistics, so this run is not equivalent to one process",
                    dist_ctx.world_size)
        return model
    # timm's converter, not torch's: torch's turns timm's BatchNormAct2d (batch norm with its
    # activation inside, in six of the eight thesis backbones) into a plain SyncBatchNorm and drops
    # the activation; timm's keeps it (SyncBatchNormAct), and the keys stay those of the plain model.
    from timm.layers import convert_sync_batchnorm

    return convert_sync_batchnorm(model)


# ---------------------------------------------------------------------------- the loop


class Trainer:
    """One model, its optimizer and precision: a training step, an epoch and an evaluation.

    The benchmark (benchmarks/train_throughput.py) drives the same object, so it measures the
    very loop that training runs.
    """

    def __init__(
        self,
        model: "nn.Module",
        device: "torch.device",
        precision: str = "fp32",
        lr: float = 1e-4,
        channels_last: bool = False,
        compile_model: bool = False,
        dist_ctx: Distributed | None = None,
        check_every: int | None = None,
        sync_batchnorm: bool = True,
    ):
        self.device = device
        self.dist = dist_ctx or Distributed()
        self.precision = resolve_precision(precision, device.type)
        self.channels_last = channels_last
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = convert_batchnorm(model, device, self.dist, sync_batchnorm)
        self.module = model.to(device=device, memory_format=memory_format)
        self.model: nn.Module = self.module
        if self.dist.enabled:
            self.model = DistributedDataParallel(
                self.module, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.forward_model = torch.compile(self.model) if compile_model else self.model
        fused = device.type == "cuda"
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=lr, fused=fused)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision.use_scaler)
        # Reading a loss back forces a device sync; on GPU do it every few steps only.
        self.check_every = check_every or (1 if device.type == "cpu" else 16)

    def autocast(self):
        if self.precision.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.precision.autocast_dtype)

    def to_device(self, images: "torch.Tensor", labels: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        return normalize_batch(images, channels_last=self.channels_last), labels

    def train_step(self, images: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        """One optimiser step on a uint8 (N, H, W, 3) batch; returns the detached mean loss."""
        inputs, targets = self.to_device(images, labels)
        with self.autocast():
            logits = self.forward_model(inputs)
        loss = F.cross_entropy(logits.float(), targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    def _all_reduce(self, tensor: "torch.Tensor") -> "torch.Tensor":
        if self.dist.enabled:
            dist.all_reduce(tensor)
        return tensor

    def _check(self, pending: list[tuple[int, "torch.Tensor"]], epoch: int, steps: int, what: str, checkpoint_note: str) -> None:
        losses = torch.stack([loss for _, loss in pending])
        bad = self._all_reduce((~torch.isfinite(losses)).any().to(torch.float32))
        if bad.item() == 0:
            return
        finite = torch.isfinite(losses).tolist()
        if False in finite:
            step = pending[finite.index(False)][0]
            value = float(losses[finite.index(False)])
            where = f"{'step' if what == 'training' else 'batch'} {step} of {steps}"
        else:  # another process saw it first
            where = f"a step between {pending[0][0]} and {pending[-1][0]} of {steps} (on another process)"
            value = float("nan")
        if self.precision.name == "fp16":
            hint = " (fp16 overflow is the usual cause: try training.precision bf16 or fp32, or a lower lr)"
        else:
            hint = " (try a lower training.lr)"
        raise NonFiniteLossError(f"{what} loss became {value} at epoch {epoch}, {where}: stopping{hint}. {checkpoint_note}")

    def train_epoch(
        self, loader, epoch: int, max_steps: int | None = None, checkpoint_note: str = "", desc: str = ""
    ) -> dict[str, float]:
        """Train on ``loader`` (at most ``max_steps``); mean loss and images/s over all processes."""
        self.model.train()
        steps = len(loader) if max_steps is None else min(len(loader), max_steps)
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        samples = 0
        pending: list[tuple[int, torch.Tensor]] = []
        bar = tqdm(total=steps, desc=desc or f"epoch {epoch}", unit="batch", file=sys.stderr,
                   disable=None if self.dist.is_main else True, leave=False, dynamic_ncols=True)
        started = time.perf_counter()
        with bar:
            for step, (images, labels) in enumerate(loader, start=1):
                loss = self.train_step(images, labels)
                total += loss * labels.shape[0]
                samples += int(labels.shape[0])
                pending.append((step, loss))
                last = step == steps
                if len(pending) >= self.check_every or last:
                    self._check(pending, epoch, steps, "training", checkpoint_note)
                    bar.set_postfix(loss=f"{float(pending[-1][1]):.4f}", refresh=False)
                    pending.clear()
                bar.update(1)
                if last:
                    break
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - started
        reduced = self._all_reduce(torch.tensor([float(total), float(samples)], device=self.device, dtype=torch.float64))
        total_loss, total_samples = reduced.tolist()
        if total_samples == 0:
            raise RuntimeError("the training loader yielded no batch: the training split is empty")
        return {
            "train_loss": total_loss / total_samples,
            "train_images": int(total_samples),
            "train_seconds": seconds,
            "images_per_s": total_samples / seconds if seconds > 0 else float("nan"),
        }

    def _sync_buffers(self) -> None:
        """BatchNorm statistics drift apart across processes; evaluate (and save) rank 0's."""
        if self.dist.enabled:
            for buffer in self.module.buffers():
                dist.broadcast(buffer, src=0)

    def evaluate(self, loader, epoch: int, checkpoint_note: str = "", stop_on_nonfinite: bool = False) -> dict[str, float]:
        """Mean validation loss over every sample (each process its shard, then summed).

        A NaN or infinite loss is returned as such (the caller records it), or, with
        ``stop_on_nonfinite``, raises :class:`NonFiniteLossError` naming the batch.
        """
        self._sync_buffers()
        self.module.eval()
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        samples = 0
        pending: list[tuple[int, torch.Tensor]] = []
        with torch.inference_mode():
            for step, (images, labels) in enumerate(loader, start=1):
                inputs, targets = self.to_device(images, labels)
                with self.autocast():
                    logits = self.module(inputs)
                loss = F.cross_entropy(logits.float(), targets, reduction="sum")
                total += loss
                samples += int(labels.shape[0])
                pending.append((step, loss))
        if stop_on_nonfinite:
            # Collective: every process checks, even one whose shard was empty.
            self._check(pending or [(0, torch.zeros((), device=self.device))], epoch, len(loader), "validation",
                        checkpoint_note)
        reduced = self._all_reduce(torch.tensor([float(total), float(samples)], device=self.device, dtype=torch.float64))
        total_loss, total_samples = reduced.tolist()
        if total_samples == 0:
            raise RuntimeError("the validation split is empty: the splits stage must hold out some faces")
        return {"val_loss": total_loss / total_samples, "val_images": int(total_samples)}

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        return {
            "model_state": self.module.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "scaler_state": self.scaler.state_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        if state.get("scaler_state"):
            self.scaler.load_state_dict(state["scaler_state"])


# ---------------------------------------------------------------------------- files


def _rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": numpy_state,
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {**numpy_state["state"], "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32)}
    np.random.set_state(numpy_state)
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))


def write_history(history: list[dict[str, Any]], path: Path) -> None:
    frame = pd.DataFrame(history, columns=HISTORY_COLUMNS) if history else pd.DataFrame(columns=HISTORY_COLUMNS)
    write_csv(frame, path, na_rep="nan")  # a NaN epoch reads as nan, not blank


def run_info(settings: dict[str, Any], trained_on: list[str], device: str, world_size: int,
             float32_math: dict[str, bool] | None = None) -> dict[str, Any]:
    """The resolved settings written to run.yaml and embedded in every checkpoint."""
    training = _training(settings)
    spec = resolve(settings["model"])
    return {
        "model": settings["model"],
        "timm_name": spec.timm_name,
        "display_name": spec.display_name,
        "setup": settings["setup"],
        "input_size": int(training["input_size"]),
        "preprocessing": PREPROCESSING,
        "precision": training["precision"],
        # TF32 and cuDNN autotuning as set for this run (FLOAT32_MATH): what "fp32" meant on its GPU
        "float32_math": float32_math if float32_math is not None else float32_math_of(device),
        "batch_size": int(training["batch_size"]),
        "epochs": int(training["epochs"]),
        "lr": float(training["lr"]),
        "dropout": float(training["dropout"]),
        "seed": int(training["seed"]),
        "pretrained": bool(training["pretrained"]),
        "weights": training.get("weights"),
        "max_steps_per_epoch": training.get("max_steps_per_epoch"),
        "augmentations": settings.get("augmentations") or {},
        "trained_on": trained_on,
        # which data chose the best epoch (config.validation_source; absent outside the workflow)
        "validation": settings.get("validation"),
        # the frame policy its training faces were extracted with (extraction.train_flow; absent outside the workflow)
        "frames": settings.get("frames"),
        # the detection and crop settings its training faces were cut with (facesleuth.config.CROP_KEYS;
        # absent outside the workflow): the scanner cuts its inputs alike
        "face_crops": settings.get("face_crops"),
        "device": device,
        "processes": world_size,
        "facesleuth_version": __version__,
        **demo_marks(bool(settings.get("trained_on_demo"))),
    }


#: what every scan of a run trained on the embedded demo says (run.yaml ``limits``)
DEMO_LIMITS = (
    "trained on the embedded demo's synthetic faces: its verdicts and its threshold (chosen on synthetic "
    "validation faces) are not validated on real media; train on a real dataset (config/thesis.yaml) or "
    "scan without --model for a published detector",
)


def demo_marks(trained_on_demo: bool) -> dict[str, Any]:
    """run.yaml's ``trained_on_demo`` and, for a demo run, its ``limits``."""
    return {"trained_on_demo": True, "limits": list(DEMO_LIMITS)} if trained_on_demo else {"trained_on_demo": False}


def write_run_yaml(info: dict[str, Any], path: Path) -> None:
    write_text_atomic(yaml.safe_dump(info, sort_keys=False), path)


def _trained_on(split_path: Path) -> list[str]:
    if "dataset" in pq.read_schema(split_path).names:
        values = pq.read_table(split_path, columns=["dataset"], memory_map=True).column("dataset").unique().to_pylist()
        names = sorted(v for v in values if v)
        if names:
            return names
    return [split_path.stem]


# ---------------------------------------------------------------------------- one run


def train_run(split_path: str | os.PathLike, run_dir: str | os.PathLike, settings: dict[str, Any],
              validation_faces: "list[str | os.PathLike] | None" = None) -> dict[str, Any]:
    """Train (or resume) the run ``settings`` (``params.run`` of rule ``train``) into ``run_dir``.

    ``validation_faces``: the faces files of a validation dataset (``splits.validation_dataset``,
    test flow), whose faces give the per-epoch validation loss and so the best epoch; None: the
    split's ``val`` side.

    Returns a summary: ``epochs`` trained in total, ``best_epoch``, ``best_val_loss``,
    ``resumed_from`` (epoch or None), ``history`` (rows with sample counts), ``run`` (run.yaml).
    """
    split_path, run_dir = Path(split_path), Path(run_dir)
    training = _training(settings)
    dist_ctx = Distributed.from_env()
    device = resolve_training_device(training.get("device", "auto"), dist_ctx)
    process_group = False
    if dist_ctx.enabled:
        if not dist.is_initialized():
            if device.type == "cuda":  # bound to this process's GPU, so collectives never guess one
                dist.init_process_group(backend="nccl", device_id=device)
            else:
                dist.init_process_group(backend="gloo")
            process_group = True
    try:
        float32_math = configure_float32_math(device)
        seed = int(training["seed"])
        epochs = int(training["epochs"])
        input_size = int(training["input_size"])
        batch_size = int(training["batch_size"])
        num_workers = dataloader_workers(int(training.get("num_workers", 0)), dist_ctx.world_size)
        max_steps = training.get("max_steps_per_epoch")
        stop_on_nan_validation = bool(training.get("stop_on_nan_validation", False))
        paths = {name: run_dir / name for name in ("best.pt", "last.pt", "history.csv", "run.yaml")}

        validation_faces = [str(path) for path in validation_faces or []]
        data_fingerprint = split_fingerprint(split_path)
        if validation_faces:  # another validation set makes another run: no resuming across them
            data_fingerprint += "+" + faces_fingerprint(validation_faces)
        fingerprint, described = settings_fingerprint(settings, data_fingerprint)
        info = run_info(settings, _trained_on(split_path), device.type, dist_ctx.world_size, float32_math)
        name = f"{settings['model']}/{settings['setup']}"

        augmentation = build_augmentation(settings["setup"], input_size, settings.get("augmentations") or {})
        make_train_set = AUGMENTATION_SETUPS[settings["setup"]].train_set
        if make_train_set is None:
            train_set = FaceDataset.from_split(split_path, "train", input_size, augmentation, seed=seed)
        else:
            train_set = registry.resolve(make_train_set)(split_path, input_size, augmentation, seed, training)
        if validation_faces:
            val_set = FaceDataset.from_validation_faces(validation_faces, input_size)
        else:
            val_set = FaceDataset.from_split(split_path, "val", input_size)
        if len(train_set) == 0 or len(val_set) == 0:
            where = "the validation dataset" if validation_faces else split_path
            raise ValueError(f"{split_path}: {len(train_set)} train faces, {len(val_set)} validation faces in {where}; "
                             "both need faces")
        train_sampler = EpochBatchSampler(len(train_set), batch_size, shuffle=True, drop_last=True, seed=seed,
                                          rank=dist_ctx.rank, world_size=dist_ctx.world_size)
        train_loader = make_loader(train_set, batch_sampler=train_sampler, num_workers=num_workers, device=device, seed=seed)
        val_loader = make_loader(val_set, batch_size // dist_ctx.world_size,
                                 sampler=ShardSampler(len(val_set), dist_ctx.rank, dist_ctx.world_size),
                                 num_workers=num_workers, device=device, seed=seed)

        seed_everything(seed)
        model = build_model(settings["model"], pretrained=bool(training["pretrained"]),
                            weights=training.get("weights"), dropout=float(training["dropout"]))
        trainer = Trainer(model, device, training["precision"], float(training["lr"]),
                          channels_last=bool(training.get("channels_last", True)),
                          dist_ctx=dist_ctx, sync_batchnorm=bool(training.get("sync_batchnorm", True)))

        history: list[dict[str, Any]] = []
        # The best weights so far stay in memory (on CPU) and travel inside last.pt, because
        # Snakemake deletes best.pt before it reruns a job.
        best: dict[str, Any] = {"epoch": None, "val_loss": math.inf, "model_state": None, "chosen_by": CHOSEN_BY_VAL_LOSS}
        start_epoch, resumed_from = 0, None
        if paths["last.pt"].exists():
            state = load_checkpoint(paths["last.pt"])
            if state.get("fingerprint") == fingerprint:
                trainer.load_state(state)
                _set_rng_state(state["rng"])
                history = list(state["history"])
                start_epoch = resumed_from = int(state["epoch"])
                best = dict(state["best"])
                if best["model_state"] is None:  # the best epoch was the last one
                    best["model_state"] = state["model_state"]
                log.info("%s: resuming from %s after epoch %d", name, paths["last.pt"], start_epoch)
                if start_epoch > epochs:
                    log.warning("%s: last.pt holds %d epochs, more than training.epochs %d; keeping them",
                                name, start_epoch, epochs)
            else:
                old = state.get("settings") or {}
                changed = sorted(k for k in set(old) | set(described) if old.get(k) != described.get(k))
                log.warning("%s: %s was written for other settings (differs in %s): starting fresh",
                            name, paths["last.pt"], ", ".join(changed) or "an unknown way")
            del state

        if dist_ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_run_yaml(info, paths["run.yaml"])
            if resumed_from is not None:
                write_history(history, paths["history.csv"])
                save_checkpoint(_best_payload(best, info), paths["best.pt"])
        log.info("%s: %d train / %d val faces, %d steps per epoch of %d, %s on %s x%d, epochs %d..%d",
                 name, len(train_set), len(val_set), len(train_sampler), batch_size, training["precision"],
                 device, dist_ctx.world_size, start_epoch + 1, epochs)
        # the experiment tracker (config tracking; None when off) continues its run when this one resumes
        tracked = experiments.training_run(run_dir, info, history) if dist_ctx.is_main else None
        try:
            for epoch in range(start_epoch + 1, epochs + 1):
                # Everything random in this epoch follows from (seed, epoch): resumable and reproducible.
                torch.manual_seed(_seed_of(seed, epoch))
                train_loader.generator.manual_seed(_seed_of(seed, epoch, 1))
                train_sampler.set_epoch(epoch)
                train_set.set_epoch(epoch)
                note = (f"The last good checkpoint {paths['last.pt']} (epoch {epoch - 1}) is kept."
                        if epoch > 1 else "No epoch had finished, so no checkpoint was written.")
                started = time.perf_counter()
                row: dict[str, Any] = {"epoch": epoch}
                row.update(trainer.train_epoch(train_loader, epoch, max_steps, note, desc=f"{name} epoch {epoch}/{epochs}"))
                row.update(trainer.evaluate(val_loader, epoch, note, stop_on_nonfinite=stop_on_nan_validation))
                row["seconds"] = time.perf_counter() - started
                history.append(row)
                improved, fallback = _best_update(best, row["val_loss"])
                if not math.isfinite(row["val_loss"]):
                    log.warning("%s epoch %d: validation loss is %s; recorded, never chosen as best, training goes on "
                                "(training.stop_on_nan_validation: true stops instead)", name, epoch, row["val_loss"])
                if fallback:
                    log.warning("%s: no epoch so far has a finite validation loss; best.pt holds epoch %d, the last one "
                                "(chosen_by: %s)", name, epoch, CHOSEN_BY_LAST_EPOCH)
                state = trainer.state()
                if improved or fallback:
                    best = {"epoch": epoch, "val_loss": row["val_loss"],
                            "model_state": {k: v.detach().to("cpu", copy=True) for k, v in state["model_state"].items()},
                            "chosen_by": CHOSEN_BY_LAST_EPOCH if fallback else CHOSEN_BY_VAL_LOSS}
                log.info("%s epoch %d/%d: train loss %.4f, val loss %.4f, %.1f s, %.1f images/s%s", name, epoch, epochs,
                         row["train_loss"], row["val_loss"], row["seconds"], row["images_per_s"], " (best)" if improved else "")
                if dist_ctx.is_main:
                    if improved or fallback:
                        save_checkpoint(_best_payload(best, info), paths["best.pt"])
                    save_checkpoint({
                        **state,
                        "epoch": epoch,
                        "val_loss": row["val_loss"],
                        "history": history,
                        "best": {**best, "model_state": None if best["epoch"] == epoch else best["model_state"]},
                        "rng": _rng_state(),
                        "fingerprint": fingerprint,
                        "settings": described,
                        "run": info,
                    }, paths["last.pt"])
                    write_history(history, paths["history.csv"])
                    if tracked is not None:  # after the checkpoint: a killed run logs this epoch on resuming
                        tracked.log_epochs(history, trainer.optimizer.param_groups[0]["lr"])
                if dist_ctx.enabled:
                    dist.barrier()
        except BaseException as err:
            if tracked is not None:
                tracked.close("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
            raise
        if tracked is not None:
            tracked.log_best(paths["best.pt"], best["epoch"], best["val_loss"])
            tracked.log_artefacts([paths["run.yaml"], paths["history.csv"]])
            tracked.close("FINISHED")
        return {
            "run_dir": str(run_dir),
            "epochs": len(history),
            "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"],
            "best_chosen_by": best.get("chosen_by", CHOSEN_BY_VAL_LOSS),
            "resumed_from": resumed_from,
            "history": [{k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()} for row in history],
            "run": info,
        }
    finally:
        if process_group:
            dist.destroy_process_group()


def _best_update(best: dict[str, Any], val_loss: float) -> tuple[bool, bool]:
    """(improved, fallback) for an epoch's validation loss against the best so far.

    improved: finite and lower than the best finite loss (a NaN epoch never is). fallback: not
    finite while no epoch has had a finite loss yet, so best.pt follows the last epoch.
    """
    no_finite_yet = best["epoch"] is None or best.get("chosen_by") == CHOSEN_BY_LAST_EPOCH
    if math.isfinite(val_loss):
        return no_finite_yet or val_loss < best["val_loss"], False
    return False, no_finite_yet


def _best_payload(best: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    return {"model_state": best["model_state"], "epoch": best["epoch"], "val_loss": best["val_loss"],
            "chosen_by": best.get("chosen_by", CHOSEN_BY_VAL_LOSS), "run": info}


# ---------------------------------------------------------------------------- torchrun


def train_or_launch(split_path: str | os.PathLike, run_dir: str | os.PathLike, settings: dict[str, Any],
                    log_path: str | os.PathLike | None = None, threads: int | None = None,
                    validation_faces: "list[str | os.PathLike] | None" = None) -> dict[str, Any]:
    """Train in this process, or, when ``training.gpus`` > 1 and not already under torchrun, through torchrun.

    ``threads``: CPU threads for torch in this process (the rule's threads); torchrun gives each
    of its processes one.
    """
    processes = int((settings.get("training") or {}).get("gpus", 1) or 1)
    if processes > 1 and int(os.environ.get("WORLD_SIZE", 1)) == 1:
        batch_size = int(_training(settings)["batch_size"])
        if batch_size % processes:
            raise ValueError(f"training.batch_size {batch_size} must be divisible by training.gpus {processes} "
                             "(it is the global batch, shared equally by the processes)")
        return launch_distributed(split_path, run_dir, settings, processes, log_path, validation_faces)
    if threads:
        torch.set_num_threads(int(threads))
    return train_run(split_path, run_dir, settings, validation_faces)


def launch_distributed(split_path: str | os.PathLike, run_dir: str | os.PathLike, settings: dict[str, Any],
                       processes: int, log_path: str | os.PathLike | None = None,
                       validation_faces: "list[str | os.PathLike] | None" = None) -> dict[str, Any]:
    """Run :func:`train_run` in ``processes`` processes with ``torchrun --standalone`` and return rank 0's summary."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".launch.", dir=run_dir) as tmp:
        settings_file = Path(tmp) / "settings.json"
        summary_file = Path(tmp) / "summary.json"
        settings_file.write_text(json.dumps(settings))
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
            f"--nproc_per_node={processes}", "-m", "facesleuth.train.loop",
            "--split", str(split_path), "--run-dir", str(run_dir),
            "--settings", str(settings_file), "--summary", str(summary_file),
        ]
        if log_path:
            command += ["--log", str(log_path)]
        if validation_faces:
            command += ["--validation-faces", *map(str, validation_faces)]
        log.info("launching %d training processes: %s", processes, " ".join(command))
        result = subprocess.run(command, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"distributed training of {run_dir} failed (torchrun exit code {result.returncode}); "
                               "the processes' errors are above in the log")
        return json.loads(summary_file.read_text())


def main(argv: list[str] | None = None) -> int:
    """Entry point of each torchrun process: ``python -m facesleuth.train.loop --split ... --run-dir ... --settings file.json``."""
    parser = argparse.ArgumentParser(description="Train one facesleuth run (one process of a torchrun launch).")
    parser.add_argument("--split", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--settings", required=True, help="JSON file of the run's settings (params.run of rule train)")
    parser.add_argument("--summary", help="rank 0 writes the run's summary JSON here")
    parser.add_argument("--log", help="rank 0 appends its log here")
    parser.add_argument("--validation-faces", nargs="*", default=None,
                        help="faces files of the validation dataset (default: the split's val side)")
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", 0))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log and rank == 0:
        handlers.append(logging.FileHandler(args.log, mode="a"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s %(levelname)s rank{rank} %(name)s: %(message)s", handlers=handlers, force=True)
    settings = json.loads(Path(args.settings).read_text())
    summary = train_run(args.split, args.run_dir, settings, args.validation_faces)
    if args.summary and rank == 0:
        write_text_atomic(json.dumps(summary, default=str), args.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
