#!/usr/bin/env python
"""Every GPU code path and GPU measurement of the project in one run of at most 9 minutes, in one JSON file.

Runs the scripts beside this one on the GPU, each under its own time limit inside one overall
budget (``--budget``, default 540 s), in order of importance:

1. ``gpu_paths.py``: correctness first. MTCNN on the GPU against the CPU; ``train_run`` for two
   short epochs in fp16 and in bf16; a SIGKILLed run resumed; validation and prediction scores,
   and the scanner, against the CPU's; with two or more GPUs, DDP with SyncBatchNorm against one
   process;
2. ``train_throughput.py``: the real training loop against the synthetic ceiling in the same
   process, EfficientNet-B4 (``efb4_ns``, random weights) at batch 64 and 256 and ResNet-50 at
   batch 64, fp16 / bf16 / fp32, channels_last, eager; then ``torch.compile`` of B4 at batch 64
   in fp16 (the goal for B4 at batch 64 is 1,500 images/s against an eager ceiling of 862);
3. ``extract.py``: train-flow extraction videos/min (and detection frames/s inside it);
4. ``detect.py``: detection frames/s, batched, at 960x540 and from 1920x1080;
5. ``scan_latency.py --device cuda``: ``facesleuth scan`` latency of a 10 s 1080p video on the GPU.

A step that would not fit in the budget left is recorded as ``skipped`` and the run goes on.
``gpu_paths.py``, ``train_throughput.py``, ``extract.py`` and ``scan_latency.py`` rewrite their JSON
after each of their steps or rounds, so one that runs out of time keeps what it measured; every step's whole output
(the other scripts print their rows as they go) is kept in ``<json stem>.logs/<step>.log``
beside the JSON, which is itself rewritten after every step. Without a CUDA GPU nothing is measured: the JSON says
``{"skipped": true, "reason": ...}`` and the exit code is 0.

``--quick`` runs every step at toy sizes, a rehearsal that all of them run; the tests run it
under a fake CUDA runtime (tests/fake_cuda.py), so a step that breaks shows up before GPU time
is spent on it.

Exit codes: 0 every step ran (or no GPU: skipped); 1 a step failed or ran out of time (its error
is in the JSON, the other steps' figures too); 2 bad arguments.

    python benchmarks/gpu_check.py --json gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (name, script, arguments, seconds allowed), in order of importance; the limits add up to the
#: 540 s budget. Few steps per round: at these speeds 20 timed steps are already 1-5 s. B4 at
#: batch 256 computes about 48 s in its three precisions, besides start-up and cuDNN autotuning.
DEFAULT_BUDGET_S = 540.0
TRAIN_ARGS = ["--size", "224", "--channels-last", "--rounds", "2", "--warmup", "5"]
STEPS = [
    ("gpu_paths", "gpu_paths.py", [], 170),
    ("train_efb4_ns_b64", "train_throughput.py",
     ["--model", "efb4_ns", "--batch", "64", "--precision", "fp16", "bf16", "fp32", *TRAIN_ARGS, "--steps", "20"], 60),
    ("train_efb4_ns_b256", "train_throughput.py",
     ["--model", "efb4_ns", "--batch", "256", "--precision", "fp16", "bf16", "fp32", *TRAIN_ARGS, "--steps", "10"],
     95),
    ("train_resnet50_b64", "train_throughput.py",
     ["--model", "resnet50", "--batch", "64", "--precision", "fp16", "bf16", "fp32", *TRAIN_ARGS, "--steps", "20"], 40),
    ("train_efb4_ns_b64_compile", "train_throughput.py",
     ["--model", "efb4_ns", "--batch", "64", "--precision", "fp16", "--compile", *TRAIN_ARGS, "--steps", "30"], 75),
    # one round decodes the samples four times (both baselines, both pipelines); on a GPU the
    # script leaves out its CPU decoding floor and writes its JSON after the round
    ("extract", "extract.py", ["--rounds", "1"], 50),
    ("detect", "detect.py", ["--skip-equivalence", "--rounds", "2"], 20),
    # torch alone (ONNX Runtime and OpenVINO run on the CPU), both frame policies, one fresh
    # process each; the CPU goals' baseline revision is left to the CPU runs
    ("scan_latency", "scan_latency.py", ["--frames", "32", "--threads", "1", "--warm", "2", "--rounds", "1",
                                         "--baseline-rev", "none"], 30),
]

#: ``--quick``: arguments appended to each script's own (argparse keeps the last of an option)
#: that shrink it to toy sizes, so every step runs in seconds and its figures mean nothing.
QUICK_ARGS = {
    "gpu_paths.py": ["--quick"],
    "train_throughput.py": ["--model", "mobilenetv3_small_050", "--batch", "4", "--size", "64", "--warmup", "1",
                            "--steps", "2", "--rounds", "1"],
    "extract.py": ["--quick"],
    "detect.py": ["--frames", "2", "--rounds", "1"],
    "scan_latency.py": ["--frames", "4", "--warm", "1"],
}


def gpu_present() -> tuple[bool, str]:
    """Whether torch sees a CUDA GPU, and its name or why not."""
    try:
        import torch
    except ImportError as err:  # the project depends on torch; say so rather than crash
        return False, f"torch cannot be imported: {err}"
    if not torch.cuda.is_available():
        return False, f"no CUDA GPU visible to torch {torch.__version__} (no device, or a CPU-only build)"
    return True, torch.cuda.get_device_name(0)


def run_step(name: str, script: str, args: list[str], limit: float, out_dir: Path) -> dict:
    """Run one script on the GPU; its figures (also those written before a time-out) and its log's tail."""
    out = out_dir / f"{name}.json"
    log_path = out_dir / f"{name}.log"
    argv = [sys.executable, str(HERE / script), *args, "--device", "cuda", "--json", str(out)]
    started = time.perf_counter()
    with log_path.open("w") as log:
        try:
            done = subprocess.run(argv, check=False, stdout=log, stderr=subprocess.STDOUT, timeout=limit)
            status = "ok" if done.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            status = "timeout"
    result = {"status": status, "seconds": round(time.perf_counter() - started, 1), "limit_s": limit,
              "command": argv[1:], "log": str(log_path)}
    if out.is_file():
        result["figures"] = json.loads(out.read_text())
    elif status == "ok":
        result["status"] = "failed"
        result["error"] = "the script wrote no JSON"
    if result["status"] != "ok":
        result["output_tail"] = log_path.read_text(errors="replace")[-6000:]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path("gpu_check.json"), help="where to write the figures")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds for all steps together")
    parser.add_argument("--only", nargs="+", choices=[name for name, *_ in STEPS],
                        help="run only these steps (names as in the JSON)")
    parser.add_argument("--quick", action="store_true",
                        help="every step at toy sizes, each allowed what is left of the budget: a rehearsal that "
                             "all steps run (the tests run it under a fake CUDA runtime); its figures mean nothing")
    args = parser.parse_args(argv)

    report: dict = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "host": platform.node(), "budget_s": args.budget}
    present, what = gpu_present()
    if not present:
        report.update(skipped=True, reason=what)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"gpu_check: skipped, {what}; wrote {args.json}")
        return 0
    report.update(skipped=False, gpu=what, quick=args.quick, steps={})
    print(f"gpu_check on {what}, budget {args.budget:.0f} s{', quick' if args.quick else ''}", flush=True)
    deadline = time.perf_counter() + args.budget
    failed = False
    steps = [s for s in STEPS if not args.only or s[0] in args.only]
    out_dir = args.json.parent / f"{args.json.stem}.logs"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, script, step_args, limit in steps:
        left = deadline - time.perf_counter()
        if args.quick:
            step_args, limit = [*step_args, *QUICK_ARGS[script]], left
        if left < min(limit, 20):
            report["steps"][name] = {"status": "skipped", "reason": f"{left:.0f} s of the budget left"}
            print(f"{name}: skipped ({left:.0f} s left)", flush=True)
            continue
        result = run_step(name, script, step_args, min(limit, left), out_dir)
        report["steps"][name] = result
        failed |= result["status"] != "ok"
        print(f"{name}: {result['status']} in {result['seconds']} s", flush=True)
        # rewritten after every step, so a run cut short keeps what it measured
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    report["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
