#!/usr/bin/env python
"""Training throughput: the real loop against the same model's synthetic ceiling (thesis Table 2.3).

For each precision, in one run and on one model instance:

- **ceiling**: ``Trainer.train_step`` on a random uint8 batch already on the device (the same
  normalisation, forward, backward and optimiser step as training, no data loading);
- **real**: the training loop proper: a splits Parquet read through ``FaceDataset`` (JPEG
  decode, letterbox, the augmentation setup), ``EpochBatchSampler``, the DataLoader with its
  workers and pinned memory, then ``Trainer.train_step``.

Both warm up first, synchronise the device before reading the clock, and report images/s with
batch, size, precision and device; ``real / ceiling`` says how well the input pipeline keeps
the device fed (target on a GPU: at least 90 %). The two alternate for ``--rounds`` rounds and
the best round of each is reported (the median too): on a shared machine the best round is the
one least disturbed by other work.

Without ``--split`` a split is synthesised in a temporary folder from the real face of the
shared samples (``FACESLEUTH_SAMPLES`` or ``../shared/data/samples``), jittered and scaled to
``--crop`` pixels and JPEG-encoded like the extraction stage does.

Examples::

    python benchmarks/train_throughput.py --model efb4_ns --batch 64 --size 224      # GPU: fp16 and fp32
    python benchmarks/train_throughput.py --model mobilenetv3_small_050 --batch 32 --size 96 --workers 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def find_samples() -> Path | None:
    """FACESLEUTH_SAMPLES, else ../shared/data/samples beside the checkout; None if neither has the image."""
    folder = Path(os.environ.get("FACESLEUTH_SAMPLES") or REPO.parent / "shared" / "data" / "samples")
    return folder if (folder / "images" / "ex_original.png").exists() else None


def synthesise_split(path: Path, faces: int, crop: int, seed: int = 0) -> Path:
    """A splits Parquet of ``faces`` train faces (and a few val ones) of about ``crop`` px."""
    import cv2
    import pandas as pd

    from facesleuth.io import SPLITS_SCHEMA, write_parquet

    rng = np.random.default_rng(seed)
    samples = find_samples()
    if samples is not None:
        frames = [cv2.imread(str(samples / "images" / name)) for name in ("ex_original.png", "ex_deepfakes.png")]
        box = (265, 35, 415, 205)  # the presenter's face with margin
    else:
        print("sample media not found (`facesleuth samples fetch DIR`, then FACESLEUTH_SAMPLES=DIR): using smooth random images (JPEG decode costs differ)", file=sys.stderr)
        frames = [cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 4) for _ in range(2)]
        box = (200, 100, 440, 380)
    rows = []
    for i in range(faces + 64):
        label = i % 2
        x0, y0, x1, y1 = (np.array(box) + rng.integers(-15, 16, 4)).tolist()
        face = frames[label][y0:y1, x0:x1]
        scale = crop / max(face.shape[:2]) * rng.uniform(0.8, 1.2)
        face = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        ok, jpeg = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 95])
        split = "train" if i < faces else "val"
        rows.append({"dataset": "bench", "video_id": f"v{i // 8}", "face_id": f"v{i // 8}/{i}/0", "group": "g",
                     "original": None, "label": label, "split": split, "landmarks": None,
                     "jpeg": jpeg.tobytes()})
    write_parquet(pd.DataFrame(rows), path, SPLITS_SCHEMA)
    return path


def device_description(device) -> str:
    import torch

    from facesleuth.runtime import machine_info

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    info = machine_info()
    return f"CPU {info['cpu']}, {info['torch_threads']} threads, {info['cores']} cores (torch {info['torch']})"


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_ceiling(trainer, batch: int, size: int, warmup: int, steps: int) -> float:
    import torch

    device = trainer.device
    images = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 2, (batch,), device=device)
    for _ in range(warmup):
        trainer.train_step(images, labels)
    sync(device)
    started = time.perf_counter()
    for step in range(1, steps + 1):
        loss = trainer.train_step(images, labels)
        if step % trainer.check_every == 0:
            loss.item()  # the training loop reads the loss back this often
    sync(device)
    return batch * steps / (time.perf_counter() - started)


def real_loader(split: Path, setup: str, batch: int, size: int, workers: int, device, batches: int):
    """The training input pipeline exactly as :func:`facesleuth.train.loop.train_run` builds it."""
    from facesleuth.train.augment import build_augmentation
    from facesleuth.train.data import EpochBatchSampler, FaceDataset, make_loader

    dataset = FaceDataset.from_split(split, "train", size, build_augmentation(setup, size, {}), seed=0)
    sampler = EpochBatchSampler(len(dataset), batch, shuffle=True, drop_last=True, seed=0)
    if len(sampler) < batches:
        raise SystemExit(f"the split holds {len(sampler)} batches of {batch}; need {batches}")
    loader = make_loader(dataset, batch_sampler=sampler, num_workers=workers, device=device, seed=0)
    return loader, sampler, dataset


def measure_real(trainer, pipeline, epoch: int, warmup: int, steps: int) -> float:
    loader, sampler, dataset = pipeline
    sampler.set_epoch(epoch)
    dataset.set_epoch(epoch)
    started = None
    timed = 0
    for step, (images, labels) in enumerate(loader, start=1):
        loss = trainer.train_step(images, labels)
        if step % trainer.check_every == 0:
            loss.item()
        if step == warmup:
            sync(trainer.device)
            started = time.perf_counter()
        elif step > warmup:
            timed += int(labels.shape[0])
        if step == warmup + steps:
            break
    sync(trainer.device)
    return timed / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50", help="config name (efb4_ns, resnet50...) or timm name")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224, help="input size (letterbox side)")
    parser.add_argument("--precision", nargs="+", default=None,
                        help="precisions to measure (default: fp16 fp32 on GPU, bf16 fp32 on CPU)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="channels_last memory format (default: on, as training.channels_last)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--setup", default="default", help="augmentation setup of the real loop")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: cores - 1 on GPU, 0 on CPU)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="alternating ceiling/real rounds; the best is reported")
    parser.add_argument("--split", type=Path, help="a splits Parquet to read (default: synthesised)")
    parser.add_argument("--crop", type=int, default=None, help="side of synthesised face crops (default: 1.3 x size)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    from facesleuth.train.backbones import resolve
    from facesleuth.train.models import build_model
    from facesleuth.runtime import available_cpus, resolve_device
    from facesleuth.train.loop import Trainer, configure_float32_math

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(resolve_device(args.device))
    on_gpu = device.type == "cuda"
    float32_math = configure_float32_math(device)  # as train_run sets it: "fp32" is true FP32, not TF32
    precisions = args.precision or (["fp16", "fp32"] if on_gpu else ["bf16", "fp32"])
    channels_last = True if args.channels_last is None else args.channels_last
    # as many workers as the job's CPUs allow (not the node's), at most 8
    workers = args.workers if args.workers is not None else (min(8, max(1, available_cpus() - 1)) if on_gpu else 0)
    described = device_description(device)
    print(f"# {resolve(args.model).timm_name} | batch {args.batch} | {args.size} px | channels_last {channels_last} | "
          f"compile {args.compile} | {workers} workers | setup {args.setup} | {described}", flush=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="facesleuth-bench-") as tmp:
        split = args.split
        if split is None:
            split = synthesise_split(Path(tmp) / "split.parquet", args.batch * (args.warmup + args.steps + 1),
                                     args.crop or round(args.size * 1.3))
        for precision in precisions:
            torch.manual_seed(0)
            model = build_model(args.model, pretrained=False, dropout=0.2)
            trainer = Trainer(model, device, precision, channels_last=channels_last, compile_model=args.compile)
            pipeline = real_loader(split, args.setup, args.batch, args.size, workers, device, args.warmup + args.steps)
            ceilings, reals = [], []
            for round_ in range(1, args.rounds + 1):
                ceilings.append(measure_ceiling(trainer, args.batch, args.size, args.warmup, args.steps))
                reals.append(measure_real(trainer, pipeline, round_, args.warmup, args.steps))
            ceiling, real = max(ceilings), max(reals)
            row = {"model": args.model, "precision": precision, "batch": args.batch, "size": args.size,
                   "channels_last": channels_last, "compile": args.compile, "workers": workers, "setup": args.setup,
                   "device": described, "float32_math": float32_math, "rounds": args.rounds, "steps": args.steps,
                   "ceiling_images_per_s": round(ceiling, 1), "real_images_per_s": round(real, 1),
                   "real_over_ceiling": round(real / ceiling, 3),
                   "ceiling_median": round(float(np.median(ceilings)), 1), "real_median": round(float(np.median(reals)), 1)}
            results.append(row)
            print(f"{precision:>5}: ceiling {ceiling:8.1f} img/s | real loop {real:8.1f} img/s | "
                  f"real/ceiling {real / ceiling:6.1%}   (medians {row['ceiling_median']:.1f} / {row['real_median']:.1f})",
                  flush=True)
            if args.json:  # after every precision: a run cut short keeps what it measured
                args.json.write_text(json.dumps(results, indent=1) + "\n")
            del trainer, model
            if on_gpu:
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
