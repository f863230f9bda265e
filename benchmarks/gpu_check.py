#!/usr/bin/env python
"""Every GPU measurement of the project in one run of at most 8 minutes, written to one JSON file.

Runs the benchmark scripts beside this one with ``--device cuda``, each under its own time limit
inside one overall budget (``--budget``, default 480 s), and merges their JSON output:

1. ``train_throughput.py``: the real training loop against the synthetic ceiling in the same
   process, EfficientNet-B4 (``efb4_ns`` = ``tf_efficientnet_b4.ns_jft_in1k``, random weights)
   and ResNet-50, batch 64 and 256, fp16 / bf16 / fp32, channels_last, eager; then
   ``torch.compile`` at batch 64 in fp16 (the eager loop is launch-bound there: the goal for B4 at
   batch 64 is 1,500 images/s against an eager ceiling of 862);
2. ``extract.py``: train-flow extraction videos/min (and detection frames/s inside it);
3. ``detect.py``: detection frames/s, batched, at 960x540 and from 1920x1080;
4. ``scan_latency.py``: ``facesleuth scan`` latency of a 10 s 1080p video (the scanner takes the
   GPU when there is one).

Steps run in that order of importance; one that would not fit in the budget left is recorded as
``skipped`` and the run goes on. Without a CUDA GPU nothing is measured: the JSON says
``{"skipped": true, "reason": ...}`` and the exit code is 0.

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
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (name, script, arguments, seconds allowed), in order of importance; the limits add up to the
#: 480 s budget. Few steps per round: at these speeds 20 timed steps are already 1-5 s.
TRAIN_ARGS = ["--size", "224", "--channels-last", "--rounds", "2", "--warmup", "5"]
STEPS = [
    *(
        (f"train_{model}_b{batch}", "train_throughput.py",
         ["--model", model, "--batch", str(batch), "--precision", "fp16", "bf16", "fp32", *TRAIN_ARGS,
          "--steps", "20" if batch == 64 else "10"], 60)
        for model in ("efb4_ns", "resnet50")
        for batch in (64, 256)
    ),
    ("train_efb4_ns_b64_compile", "train_throughput.py",
     ["--model", "efb4_ns", "--batch", "64", "--precision", "fp16", "--compile", *TRAIN_ARGS, "--steps", "30"], 100),
    ("train_resnet50_b64_compile", "train_throughput.py",
     ["--model", "resnet50", "--batch", "64", "--precision", "fp16", "--compile", *TRAIN_ARGS, "--steps", "30"], 60),
    ("extract", "extract.py", ["--rounds", "1"], 35),
    ("detect", "detect.py", ["--skip-equivalence", "--rounds", "2"], 20),
    ("scan_latency", "scan_latency.py", ["--frames", "32", "--threads", "1", "--warm", "2"], 25),
]


def gpu_present() -> tuple[bool, str]:
    """Whether torch sees a CUDA GPU, and its name or why not."""
    try:
        import torch
    except ImportError as err:  # the project depends on torch; say so rather than crash
        return False, f"torch cannot be imported: {err}"
    if not torch.cuda.is_available():
        return False, f"no CUDA GPU visible to torch {torch.__version__} (no device, or a CPU-only build)"
    return True, torch.cuda.get_device_name(0)


def run_step(name: str, script: str, args: list[str], limit: float, tmp: Path) -> dict:
    out = tmp / f"{name}.json"
    device = [] if script == "scan_latency.py" else ["--device", "cuda"]
    argv = [sys.executable, str(HERE / script), *args, *device, "--json", str(out)]
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as err:
        tail = (err.stdout or b"")[-2000:]
        return {"status": "timeout", "limit_s": limit, "command": argv[1:],
                "output_tail": tail.decode(errors="replace") if isinstance(tail, bytes) else tail}
    result = {"status": "ok" if done.returncode == 0 else "failed", "seconds": round(time.perf_counter() - started, 1),
              "command": argv[1:], "output_tail": (done.stdout + done.stderr)[-2000:]}
    if out.is_file():
        result["figures"] = json.loads(out.read_text())
    elif done.returncode == 0:
        result["status"] = "failed"
        result["error"] = "the script wrote no JSON"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path("gpu_check.json"), help="where to write the figures")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all steps together")
    parser.add_argument("--only", nargs="+", help="run only these steps (names as in the JSON)")
    args = parser.parse_args(argv)

    report: dict = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "host": platform.node(), "budget_s": args.budget}
    present, what = gpu_present()
    if not present:
        report.update(skipped=True, reason=what)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"gpu_check: skipped, {what}; wrote {args.json}")
        return 0
    report.update(skipped=False, gpu=what, steps={})
    print(f"gpu_check on {what}, budget {args.budget:.0f} s", flush=True)
    deadline = time.perf_counter() + args.budget
    failed = False
    steps = [s for s in STEPS if not args.only or s[0] in args.only]
    with tempfile.TemporaryDirectory(prefix="facesleuth-gpu-check-") as tmp:
        for name, script, step_args, limit in steps:
            left = deadline - time.perf_counter()
            if left < min(limit, 20):
                report["steps"][name] = {"status": "skipped", "reason": f"{left:.0f} s of the budget left"}
                print(f"{name}: skipped ({left:.0f} s left)", flush=True)
                continue
            result = run_step(name, script, step_args, min(limit, left), Path(tmp))
            report["steps"][name] = result
            failed |= result["status"] != "ok"
            print(f"{name}: {result['status']} in {result.get('seconds', result.get('limit_s'))} s", flush=True)
            # the JSON is rewritten after every step, so a run cut short keeps what it measured
            args.json.write_text(json.dumps(report, indent=1) + "\n")
    report["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
