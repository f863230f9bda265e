#!/usr/bin/env python
"""Every GPU code path of the project, end to end, each checked against the CPU where it can be.

Steps, in order (``--steps`` picks some; each writes its figures to the JSON as it finishes):

1. ``mtcnn``: face detection on the DFDC sample videos' frames on the device, boxes against the CPU's;
2. ``train_fp16``, ``train_bf16``: ``train_run`` (the workflow's training) of EfficientNet-B0
   (timm BatchNormAct layers) for two short epochs on a split of those faces: device index,
   autocast, GradScaler, checkpoints, the float32 math recorded in run.yaml;
3. ``resume``: the fp16 run again in a child process, SIGKILLed after its first epoch, then resumed;
   its second epoch against the uninterrupted run's;
4. ``validate``: the validation faces scored on the device and on the CPU (prediction's code);
5. ``scan``: ``facesleuth scan``'s Scanner on the device on a DFDC sample video, scores against the CPU's;
6. ``ddp``: with two or more GPUs, torchrun training in two processes with SyncBatchNorm against
   one process (same global batch): losses and weights.

``--device cpu`` rehearses every step on the CPU (``--quick`` makes them small), so the script is
tested where there is no GPU. Exit code 0 when every step passed its check (or was skipped), 1
otherwise, 2 when ``--device cuda`` finds no GPU.

    python benchmarks/gpu_paths.py --json gpu_paths.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

STEPS = ("mtcnn", "train_fp16", "train_bf16", "resume", "validate", "scan", "ddp")
DFDC_VIDEO = "dfdc/dfdc_train_part_10/widuwuoiur.mp4"


def samples_folder() -> Path:
    return Path(os.environ.get("FACESLEUTH_SAMPLES") or REPO.parent / "shared" / "data" / "samples")


def training_settings(args: argparse.Namespace, precision: str, epochs: int = 2, **extra) -> dict:
    return {
        "model": args.model,
        "setup": "default",
        "training": {
            "input_size": args.size, "epochs": epochs, "batch_size": args.batch, "precision": precision,
            "lr": 1e-4, "dropout": 0.2, "pretrained": False, "weights": None, "num_workers": args.workers,
            "seed": 1, "device": args.device, "channels_last": True, "max_steps_per_epoch": args.steps_per_epoch, "gpus": 1,
            **extra,
        },
        "augmentations": {},
    }


class Check:
    """The JSON report, rewritten (atomically) after every step so that a run cut short keeps its figures."""

    def __init__(self, path: Path, device: str):
        self.path = path
        self.report: dict = {"device": device, "steps": {}}
        self.failed = False

    def write(self) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.report, indent=1, default=float) + "\n")
        os.replace(tmp, self.path)

    def run(self, name: str, step, *args) -> None:
        started = time.perf_counter()
        print(f"{name} ...", flush=True)
        try:
            figures = step(*args) or {}
            ok = figures.pop("ok", True)
            status = "skipped" if "skipped" in figures else "ok" if ok else "failed"
            result = {"status": status, **figures}
        except Exception as err:  # noqa: BLE001 - one step's failure must not hide the others' figures
            result = {"status": "failed", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
        result["seconds"] = round(time.perf_counter() - started, 2)
        self.failed |= result["status"] == "failed"
        self.report["steps"][name] = result
        self.write()
        print(f"{name}: {result['status']} in {result['seconds']} s", flush=True)


# ---------------------------------------------------------------------------- steps


def step_mtcnn(args, work: Path) -> dict:
    from facesleuth.extract.detect import FaceDetector
    from facesleuth.demo.rehearsal import StudySize, sample_face_crops, write_study_sized_split
    from facesleuth.extract.video import evenly_spaced_indices, probe, read_frames

    video = samples_folder() / DFDC_VIDEO
    frames = read_frames(video, evenly_spaced_indices(probe(video).frames, args.frames))
    on_device = FaceDetector.from_config({}, device=args.device).load()
    clock = time.perf_counter()
    found = on_device.detect(frames)
    seconds = time.perf_counter() - clock
    reference = FaceDetector.from_config({}, device="cpu").load().detect(frames)
    counts = [len(f.boxes) for f in found], [len(f.boxes) for f in reference]
    box_error = max((float(np.abs(a.boxes - b.boxes).max()) for a, b in zip(found, reference) if len(a.boxes)
                     and len(a.boxes) == len(b.boxes)), default=0.0)
    crops = sample_face_crops(samples_folder(), args.faces, frames_per_video=4, device=args.device)
    size = StudySize(split_reals=args.faces // 2, split_fakes=args.faces - args.faces // 2, faces_per_video=4,
                     validation_fraction=0.25)
    write_study_sized_split(work / "split.parquet", crops, size)
    return {"ok": counts[0] == counts[1] and box_error < 1.0, "frames": len(frames),
            "frames_per_s": len(frames) / seconds, "faces_per_frame": counts[0], "cpu_faces_per_frame": counts[1],
            "max_box_difference_px": box_error, "split_faces": args.faces}


def step_train(args, work: Path, precision: str) -> dict:
    import yaml

    from facesleuth.train.loop import train_run

    summary = train_run(work / "split.parquet", work / f"run_{precision}", training_settings(args, precision))
    run = yaml.safe_load((work / f"run_{precision}" / "run.yaml").read_text())
    losses = [(row["train_loss"], row["val_loss"]) for row in summary["history"]]
    return {"ok": bool(np.isfinite(losses).all()), "losses": losses,
            "images_per_s": [row["images_per_s"] for row in summary["history"]],
            "epoch_seconds": [row["seconds"] for row in summary["history"]],
            "run_device": run["device"], "float32_math": run["float32_math"]}


def step_resume(args, work: Path) -> dict:
    import pandas as pd

    from facesleuth.train.loop import load_checkpoint, train_run

    run_dir = work / "run_resumed"
    settings = training_settings(args, "fp16")
    (work / "resume_settings.json").write_text(json.dumps(settings))
    child = subprocess.Popen([sys.executable, __file__, "--train-child", str(work / "split.parquet"), str(run_dir),
                              str(work / "resume_settings.json")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    history = run_dir / "history.csv"
    deadline = time.monotonic() + args.child_timeout
    while time.monotonic() < deadline and child.poll() is None:
        if history.exists() and len(pd.read_csv(history)) >= 1:
            child.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    child.wait()
    killed_after = load_checkpoint(run_dir / "last.pt")["epoch"]
    for name in ("best.pt", "history.csv", "run.yaml"):  # as Snakemake deletes a job's outputs before a rerun
        (run_dir / name).unlink(missing_ok=True)
    resumed = train_run(work / "split.parquet", run_dir, settings)
    reference = pd.read_csv(work / "run_fp16" / "history.csv")
    again = pd.DataFrame(resumed["history"])
    difference = float((again["train_loss"] - reference["train_loss"]).abs().max() / reference["train_loss"].abs().max())
    scaler = load_checkpoint(run_dir / "last.pt")["scaler_state"]
    return {"ok": killed_after == 1 and resumed["resumed_from"] == 1 and difference < 1e-2,
            "killed_after_epoch": killed_after, "resumed_from": resumed["resumed_from"],
            "max_relative_loss_difference": difference, "scaler_scale": scaler.get("scale")}


def step_validate(args, work: Path) -> dict:
    from facesleuth.evaluate.predict import score_validation_faces

    evaluation = {"aggregation": "mean", "no_face_score": 0.5, "batch_size": args.batch}
    clock = time.perf_counter()
    on_device = score_validation_faces(work / "run_fp16", work / "split.parquet", evaluation, args.device)
    seconds = time.perf_counter() - clock
    on_cpu = score_validation_faces(work / "run_fp16", work / "split.parquet", evaluation, "cpu")
    difference = float(np.abs(on_device["score"].to_numpy() - on_cpu["score"].to_numpy()).max())
    return {"ok": difference < 1e-3, "faces": len(on_device), "faces_per_s": len(on_device) / seconds,
            "max_score_difference": difference}


def step_scan(args, work: Path) -> dict:
    from facesleuth.scan import Scanner, ScanOptions

    video = samples_folder() / DFDC_VIDEO
    on_device = Scanner(work / "run_fp16", ScanOptions(frames=args.frames, device=args.device))
    on_device.scan_file(video)  # warm-up: cuDNN autotuning, lazy CUDA modules
    clock = time.perf_counter()
    result = on_device.scan_file(video)
    seconds = time.perf_counter() - clock
    reference = Scanner(work / "run_fp16", ScanOptions(frames=args.frames, device="cpu")).scan_file(video)
    scores = [f.score for f in result.faces], [f.score for f in reference.faces]
    difference = float(np.abs(np.subtract(*scores)).max()) if len(scores[0]) == len(scores[1]) and scores[0] else None
    return {"ok": result.status == "ok" and difference is not None and difference < 1e-3, "status": result.status,
            "warm_seconds": seconds, "timings": result.timings, "faces": len(result.faces),
            "cpu_faces": len(reference.faces), "max_face_score_difference": difference, "score": result.score,
            "cpu_score": reference.score}


def step_ddp(args, work: Path) -> dict:
    import torch

    from facesleuth.train.loop import load_checkpoint, train_or_launch

    if args.device.startswith("cuda") and torch.cuda.device_count() < 2:
        return {"skipped": f"{torch.cuda.device_count()} GPU visible, DDP needs two"}
    if not args.device.startswith("cuda"):
        return {"skipped": "SyncBatchNorm runs on CUDA only"}
    one = train_or_launch(work / "split.parquet", work / "ddp_one", training_settings(args, "fp32", epochs=1))
    two = train_or_launch(work / "split.parquet", work / "ddp_two",
                          training_settings(args, "fp32", epochs=1, gpus=2, sync_batchnorm=True))
    a, b = (load_checkpoint(work / name / "last.pt")["model_state"] for name in ("ddp_one", "ddp_two"))
    weights = max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())
    loss = abs(one["history"][0]["train_loss"] - two["history"][0]["train_loss"]) / one["history"][0]["train_loss"]
    return {"ok": loss < 1e-3 and weights < 1e-2, "relative_loss_difference": loss, "max_weight_difference": weights,
            "one_process_images_per_s": one["history"][0]["images_per_s"],
            "two_processes_images_per_s": two["history"][0]["images_per_s"]}


# ---------------------------------------------------------------------------- entry points


def train_child(split: str, run_dir: str, settings_file: str) -> int:
    from facesleuth.train.loop import train_run

    train_run(split, run_dir, json.loads(Path(settings_file).read_text()))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu for a rehearsal (default cuda)")
    parser.add_argument("--json", type=Path, default=Path("gpu_paths.json"))
    parser.add_argument("--steps", dest="only", nargs="+", choices=STEPS, default=list(STEPS),
                        help="run only these steps (and those they need)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a rehearsal in a minute on a CPU")
    parser.add_argument("--train-child", nargs=3, metavar=("SPLIT", "RUN_DIR", "SETTINGS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.model = "mobilenetv3_small_050" if quick else "efb0_ns"
    args.size, args.batch, args.steps_per_epoch = (64, 8, 3) if quick else (224, 64, 20)
    args.faces = 48 if quick else 512
    args.frames = 4 if quick else 32
    args.workers = 0 if quick else 4
    args.child_timeout = 120 if quick else 300
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.train_child:
        return train_child(*args.train_child)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("gpu_paths: no CUDA GPU visible; --device cpu rehearses the steps on the CPU", file=sys.stderr)
            return 2
    check = Check(args.json, args.device)
    with tempfile.TemporaryDirectory(prefix="facesleuth-gpu-paths-") as tmp:
        work = Path(tmp)
        table = {"mtcnn": (step_mtcnn,), "train_fp16": (step_train, "fp16"), "train_bf16": (step_train, "bf16"),
                 "resume": (step_resume,), "validate": (step_validate,), "scan": (step_scan,), "ddp": (step_ddp,)}
        needed = set(args.only)
        if needed - {"mtcnn"}:
            needed.add("mtcnn")  # the split every later step trains on
        if needed & {"resume", "validate", "scan"}:
            needed.add("train_fp16")
        for name in STEPS:
            if name in needed:
                step, *extra = table[name]
                check.run(name, step, args, work, *extra)
    check.write()
    print(f"wrote {args.json}")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
