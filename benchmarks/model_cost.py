#!/usr/bin/env python
"""Relative cost of the thesis's eight backbones: training and prediction images/s, one process.

Every model runs the same synthetic training step (``facesleuth.train.loop.Trainer.train_step`` on a
random uint8 batch already on the device) and the same no-grad forward pass, at the thesis's
input size, rounds alternating between models so that load from other work falls on all of
them. The figures are reported with their ratio to ResNet-50 measured in the same run: the
ratios are what ``docs/scaling.md`` uses to carry the two GPU throughputs known for this study
(ResNet-50 and EfficientNet-B4 on an H200) over to the other six models.

Also printed: forward GFLOPs per image (``torch.utils.flop_counter``) and parameters, so the
measured cost can be read against the arithmetic.

Examples::

    python benchmarks/model_cost.py                              # CPU, 224 px, batch 8, fp32, one thread
    python benchmarks/model_cost.py --device cuda --batch 64 --precision fp16 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from facesleuth.train.backbones import THESIS_MODELS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(THESIS_MODELS), help="config or timm names (default: the eight thesis models)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precision", default="fp32", choices=["fp16", "bf16", "fp32"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU (default 1)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    return parser.parse_args(argv)


def forward_gflops(model, size: int) -> float:
    """Forward FLOPs of one image (multiply-adds count as two)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 1e9


def timed(step, steps: int, warmup: int, device) -> float:
    """Seconds per call of ``step`` after ``warmup`` calls, the device synchronised."""
    import torch

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / steps


def main(argv: list[str] | None = None) -> int:
    import torch

    from facesleuth.train.backbones import resolve
    from facesleuth.train.models import build_model, count_parameters
    from facesleuth.runtime import machine_info, resolve_device
    from facesleuth.train.loop import Trainer

    args = parse_args(argv)
    device = torch.device(resolve_device(args.device))
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cudnn.benchmark = True
    info = machine_info()
    described = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{info['cpu']}, {info['torch_threads']} torch threads"
    print(f"# {args.size} px | batch {args.batch} | {args.precision} | channels_last | {described} | torch {torch.__version__}", flush=True)

    images = torch.randint(0, 256, (args.batch, args.size, args.size, 3), dtype=torch.uint8)
    labels = torch.randint(0, 2, (args.batch,))
    rows = {}
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name, pretrained=False)
        gflops = forward_gflops(model, args.size)
        trainer = Trainer(model, device, args.precision, channels_last=True)
        rows[name] = {"model": name, "timm": resolve(name).timm_name, "params_m": round(count_parameters(model) / 1e6, 1),
                      "gflops": round(gflops, 2), "trainer": trainer, "train": [], "predict": []}
    for round_ in range(args.rounds):
        for name, row in rows.items():
            trainer = row["trainer"]
            trainer.module.train()
            seconds = timed(lambda trainer=trainer: trainer.train_step(images, labels), args.steps, args.warmup, device)
            row["train"].append(args.batch / seconds)
            trainer.module.eval()

            def forward(trainer=trainer) -> None:
                with torch.no_grad(), trainer.autocast():
                    trainer.forward_model(trainer.to_device(images, labels)[0])

            row["predict"].append(args.batch / timed(forward, args.steps, args.warmup, device))
            print(f"  round {round_ + 1}: {name:<20} train {row['train'][-1]:8.1f} img/s  predict {row['predict'][-1]:8.1f} img/s", flush=True)

    reference = rows.get("resnet50")
    print()
    print("| model | timm | params (M) | forward GFLOPs | train img/s | predict img/s | train cost / ResNet-50 | predict cost / ResNet-50 |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for name, row in rows.items():
        train, predict = max(row["train"]), max(row["predict"])
        result = {k: row[k] for k in ("model", "timm", "params_m", "gflops")}
        result.update(train_images_per_s=round(train, 2), predict_images_per_s=round(predict, 2),
                      device=described, size=args.size, batch=args.batch, precision=args.precision)
        if reference:
            result["train_cost_vs_resnet50"] = round(max(reference["train"]) / train, 2)
            result["predict_cost_vs_resnet50"] = round(max(reference["predict"]) / predict, 2)
        results.append(result)
        print(f"| {name} | {row['timm']} | {row['params_m']} | {row['gflops']:.2f} | {train:.1f} | {predict:.1f} | "
              f"{result.get('train_cost_vs_resnet50', '-')} | {result.get('predict_cost_vs_resnet50', '-')} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
