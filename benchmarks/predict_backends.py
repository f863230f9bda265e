"""The workflow's predictions on CPU, torch against ONNX Runtime and OpenVINO (``evaluation.backend``), in one run.

    python benchmarks/predict_backends.py                       # efb0_ns, 1 thread, 3 rounds
    python benchmarks/predict_backends.py --models efb0_ns resnet50 --threads 2 --json out.json

Faces: the train-flow faces of the FF++ sample videos, extracted with ``config/thesis.yaml``'s
settings as rule extract_faces does, repeated to ``--faces`` rows (JPEG decoding and letterbox
are part of what a predict job does, so the repeats cost what new faces would). Each model is
a run folder made here from random initialisation (speed does not depend on the weights). The
backends (``--backends``; OpenVINO where installed) score the same faces with ``facesleuth.evaluate.predict.predict_faces``, the function
rules predict and validate use, with the same torch / ONNX Runtime / OpenVINO threads (``--threads``);
the ONNX export (which both runtimes read) happens once before the rounds (printed; the workflow does it once per checkpoint).
Rounds alternate the backends; the best round of each is compared. Also the largest difference
between each backend's fake probabilities and torch's, beside the spread of the scores (random weights
may score all faces nearly alike; tests/test_onnx.py checks agreement on networks that tell faces apart).
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
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from extract import sample_manifest  # noqa: E402 (the benchmarks' sample manifest)
from scan_latency import make_random_run  # noqa: E402

from facesleuth.config import load_config  # noqa: E402
from facesleuth.extract.detect import set_cpu_threads  # noqa: E402
from facesleuth.extract.flows import extract_chunk  # noqa: E402


def sample_faces(samples: Path, count: int) -> pd.DataFrame:
    """The FF++ samples' train-flow faces, repeated to ``count`` rows."""
    manifest = sample_manifest(samples)
    manifest = manifest[manifest["video_id"].str.startswith("ffpp/")]
    extraction = load_config(REPO / "config/thesis.yaml")["extraction"]
    faces, _ = extract_chunk(manifest, 0, 1, "train", {**extraction["detection"], "device": "cpu"},
                             extraction["train_flow"])
    if faces.empty:
        raise SystemExit("no faces extracted from the samples")
    repeats = -(-count // len(faces))
    return pd.concat([faces] * repeats, ignore_index=True).iloc[:count]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_samples = os.environ.get("FACESLEUTH_SAMPLES", REPO.parent / "shared/data/samples")
    parser.add_argument("--samples", type=Path, default=Path(default_samples))
    parser.add_argument("--models", nargs="+", default=["efb0_ns"], help="registry model names")
    parser.add_argument("--size", type=int, default=224, help="input size of every model")
    parser.add_argument("--faces", type=int, default=512, help="faces scored per round")
    parser.add_argument("--batch-size", type=int, default=128, help="evaluation.batch_size")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (rule predict's 1)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", nargs="+", choices=["onnx", "openvino"], default=None,
                        help="compared with torch (default: onnx, and openvino where installed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if not args.samples.is_dir():
        parser.error(f"samples not found at {args.samples}; pass --samples or set FACESLEUTH_SAMPLES")

    from facesleuth.evaluate.inference import load_predictor, runtime_available
    from facesleuth.evaluate.predict import predict_faces
    from facesleuth.runtime import machine_info

    exported = args.backends or ["onnx"] + (["openvino"] if runtime_available("openvino") else [])
    set_cpu_threads(args.threads)
    info = machine_info()
    print(f"{info['cpu']} x{info['cores']}, torch {info['torch']}, {args.threads} thread(s); extracting the "
          f"FF++ samples' faces...", flush=True)
    faces = sample_faces(args.samples, args.faces)
    load_before = os.getloadavg()
    print(f"{len(faces)} faces, batch {args.batch_size}; load average {load_before[0]:.2f}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="predict_backends.") as tmp:
        for model in args.models:
            run = make_random_run(Path(tmp) / model / "none", model, args.size)
            clock = time.perf_counter()
            predictors = {"torch": load_predictor(run, "cpu", "torch")}
            predictors.update({name: load_predictor(run, "cpu", name) for name in exported})
            export_seconds = time.perf_counter() - clock
            seconds = {name: [] for name in predictors}
            scores = {}
            for name, (network, run_settings) in predictors.items():  # warm-up: first calls pick kernels
                predict_faces(network, run_settings, faces.iloc[: args.batch_size], "cpu", args.batch_size)
            for _ in range(args.rounds):
                for name, (network, run_settings) in predictors.items():
                    started = time.perf_counter()
                    scores[name] = predict_faces(network, run_settings, faces, "cpu", args.batch_size)
                    seconds[name].append(time.perf_counter() - started)
            best = {name: min(values) for name, values in seconds.items()}
            row = {
                "model": model, "input_size": args.size, "faces": len(faces), "threads": args.threads,
                "export_and_load_s": round(export_seconds, 2),
                **{f"{name}_faces_per_s": round(len(faces) / best[name], 1) for name in best},
                **{f"{name}_rounds_s": [round(v, 2) for v in seconds[name]] for name in seconds},
                **{f"{name}_over_torch": round(best["torch"] / best[name], 2) for name in exported},
                **{f"{name}_max_score_difference": float(np.max(np.abs(scores["torch"] - scores[name])))
                   for name in exported},
                # random weights may score every face alike: then a zero difference says little
                "score_spread": float(np.ptp(scores["torch"])),
                "load_average": round(os.getloadavg()[0], 2),
            }
            results.append(row)
            versus = "; ".join(f"{name} {row[f'{name}_faces_per_s']:.1f} faces/s: {row[f'{name}_over_torch']:.2f}x, "
                               f"largest score difference {row[f'{name}_max_score_difference']:.1e}" for name in exported)
            print(f"  {model:<20} torch {row['torch_faces_per_s']:>7.1f} faces/s; {versus} (scores spread over "
                  f"{row['score_spread']:.1e}); export and load {row['export_and_load_s']} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "load_before": load_before, "rows": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
