"""Wall seconds to scan one 10-second 1080p video end to end with an EfficientNet-B0 run.

    python benchmarks/scan_latency.py                           # 10 and 32 frames, 1 and 2 threads
    python benchmarks/scan_latency.py --frames 32 --threads 1 --warm 5 --json out.json

End to end = what ``facesleuth scan VIDEO --model RUN`` does for one video: sequential decoding
of the video, MTCNN on the sampled frames (downscaled to detect_max_side), IoU tracking and
proportional sampling, crops, EfficientNet-B0 on the sampled faces at 224 px, aggregation.

The run folder is made here: ``efb0_ns`` (tf_efficientnet_b0.ns_jft_in1k) with its head, from
random initialisation, so no weights need to be downloaded; speed does not depend on the
weights' values. It has no threshold.json, so verdicts use 0.5 (irrelevant here).

Each configuration (frames x torch threads) runs in a fresh Python process, so **cold** is a
genuine first call: importing facesleuth.scan, loading the run and MTCNN, and the first scan.
**warm** repeats the scan in the same process (median and best of ``--warm``). Stage times come
from the same scans: ``detect`` is MTCNN alone (a timing subclass of the pipeline's detector),
``decode+crop`` the rest of the extraction (decoding every frame up to the last sampled one,
resizing for detection, crops, JPEG), ``classify`` the model. Load average is printed before and
after: the machine is shared, so compare only figures taken in one run. The CPU seconds of the
best warm scan (all threads of the process, decoder threads included) are printed beside its wall
time: with one torch thread they are about what the scan takes on an otherwise idle core, whatever
the load was.

Target (the DFDC competition's per-video budget on a P100): 32 frames warm in at most 8 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("FACESLEUTH_SAMPLES") or REPO.parent / "shared/data/samples")
DEFAULT_VIDEO = SAMPLES / "dfdc/dfdc_train_part_10/widuwuoiur.mp4"
TARGET_SECONDS = 8.0


def make_random_efb0_run(folder: Path) -> Path:
    """A run folder (best.pt + run.yaml) for efb0_ns at 224 px, randomly initialised."""
    sys.path.insert(0, str(REPO / "src"))
    from facesleuth.models import build_model
    from facesleuth.train import run_info, save_checkpoint, write_run_yaml

    settings = {
        "model": "efb0_ns",
        "setup": "none",
        "training": {"input_size": 224, "epochs": 1, "batch_size": 64, "precision": "fp32", "lr": 1e-4,
                     "dropout": 0.2, "pretrained": False, "seed": 0},
    }
    info = run_info(settings, ["none: random initialisation (benchmark)"], "cpu", 1)
    model = build_model("efb0_ns", pretrained=False, dropout=0.2)
    save_checkpoint({"model_state": model.state_dict(), "epoch": 0, "val_loss": float("nan"), "run": info},
                    folder / "best.pt")
    write_run_yaml(info, folder / "run.yaml")
    return folder


def worker(args: argparse.Namespace) -> None:
    """One configuration in this (fresh) process; prints one JSON line."""
    started = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(REPO / "src"))
    from facesleuth.detect import FaceDetector
    from facesleuth.scan import Scanner, ScanOptions

    class TimedDetector(FaceDetector):
        seconds: float = 0.0

        def detect(self, frames, full_size=None):
            clock = time.perf_counter()
            try:
                return super().detect(frames, full_size)
            finally:
                self.seconds += time.perf_counter() - clock

    def scan_once(scanner):
        scanner.detector.seconds = 0.0
        clock, cpu = time.perf_counter(), time.process_time()
        result = scanner.scan_file(args.video)
        wall, cpu = time.perf_counter() - clock, time.process_time() - cpu
        if result.status != "ok":
            raise SystemExit(f"scan failed: {result.status}: {result.message}")
        detect = scanner.detector.seconds
        return {
            "wall": wall, "cpu": cpu, "detect": detect, "decode_crop": result.timings["extract"] - detect,
            "classify": result.timings["classify"], "faces": len(result.faces), "frames_read": result.frames_read,
        }

    imported = time.perf_counter()
    options = ScanOptions(frames=args.frames, device=args.device)
    scanner = Scanner(args.run, options)
    loaded = scanner.detector
    timed = TimedDetector(**{f.name: getattr(loaded, f.name) for f in dataclasses.fields(loaded) if f.init})
    timed._mtcnn = loaded.mtcnn  # the network loaded above (cold includes its loading once)
    scanner.detector = timed
    first = scan_once(scanner)
    cold = time.perf_counter() - started
    warm = [scan_once(scanner) for _ in range(args.warm)]
    print(json.dumps({
        "frames": args.frames, "threads": args.threads, "cold": cold, "import": imported - started,
        "first_scan": first, "warm": warm,
    }))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="a 10 s 1080p video (default: DFDC sample)")
    parser.add_argument("--frames", type=int, nargs="+", default=[10, 32])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads per configuration")
    parser.add_argument("--warm", type=int, default=3, help="warm repeats per configuration")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N: where the scanner runs")
    parser.add_argument("--json", type=Path, help="also write all figures here (rewritten after every row)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.frames, args.threads = args.frames[0], args.threads[0]
        worker(args)
        return 0
    if not args.video.is_file():
        parser.error(f"--video {args.video} does not exist; pass a 10 s 1080p video")

    from facesleuth.runtime import machine_info

    info = machine_info()
    load_before = os.getloadavg()
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, python {info['python']}")
    print(f"video: {args.video}")
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="scan_latency.") as tmp:
        run = make_random_efb0_run(Path(tmp) / "efb0_ns" / "none")
        for frames in args.frames:
            for threads in args.threads:
                command = [sys.executable, __file__, "--worker", "--run", str(run), "--video", str(args.video),
                           "--frames", str(frames), "--threads", str(threads), "--warm", str(args.warm),
                           "--device", args.device]
                done = subprocess.run(command, capture_output=True, text=True, check=False,
                                      env={**os.environ, "OPENCV_LOG_LEVEL": "ERROR"})
                if done.returncode != 0:
                    print(done.stderr[-3000:], file=sys.stderr)
                    return 1
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(format_row(rows[-1]), flush=True)
                if args.json:
                    args.json.write_text(json.dumps({"machine": info, "device": args.device, "video": str(args.video),
                                                     "rows": rows}, indent=1))
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    best32 = [min(w["wall"] for w in r["warm"]) for r in rows if r["frames"] == 32 and r["warm"]]
    if best32:
        verdict = "met" if min(best32) <= TARGET_SECONDS else "MISSED"
        print(f"target: 32 frames warm <= {TARGET_SECONDS:.0f} s: {verdict} (best {min(best32):.2f} s)")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "device": args.device, "load_before": load_before,
                                         "load_after": load_after, "video": str(args.video), "rows": rows}, indent=1))
    return 0


def format_row(row: dict) -> str:
    warm = row["warm"] or [row["first_scan"]]
    walls = [w["wall"] for w in warm]
    median = statistics.median(walls)
    stage = min(warm, key=lambda w: w["wall"])
    return (f"frames {row['frames']:>3}  threads {row['threads']}  cold {row['cold']:6.2f} s "
            f"(imports {row['import']:.2f} s, first scan {row['first_scan']['wall']:.2f} s)  "
            f"warm median {median:6.2f} s, best {min(walls):6.2f} s (CPU {stage['cpu']:.2f} s)  "
            f"[best: decode+crop {stage['decode_crop']:.2f}, detect {stage['detect']:.2f}, "
            f"classify {stage['classify']:.2f} s; {stage['faces']} faces, {stage['frames_read']} frames]")


if __name__ == "__main__":
    sys.exit(main())
