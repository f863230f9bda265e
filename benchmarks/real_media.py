"""How well published detectors (and any run) tell real from fake on the real sample media.

    python benchmarks/real_media.py                              # the four built-in MesoNet models
    python benchmarks/real_media.py --model results/models/efb0_ns/default --frames 32 --json out.json

Each sample video and image is scanned as ``facesleuth scan`` would (the same Scanner, its
frames, tracks and mean aggregation) with each built-in MesoNet model, then with every ``--model``
given. The ensembles' scores are joined from their members' video scores exactly as the scanner
joins them (mean probability): Meso-4 DF + F2F (the scanner's default), MesoInception-4 DF + F2F,
and all four.

Per manipulation type (Deepfakes, FaceSwap, NeuralTextures, Face2Face where present, DFDC), the
type's fake videos against every real video (the FF++ originals and the street video): video
ROC-AUC and log loss of P(fake); then all fakes against all reals. With one to three fakes per
type these are coarse (AUC in steps of 1/4 or 1/12) but real; images are listed one by one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("FACESLEUTH_SAMPLES") or REPO.parent / "shared/data/samples")

# (path below the samples folder, label 1 fake / 0 real, manipulation type)
VIDEOS = [
    ("ffpp/original_sequences/youtube/c23/videos/004.mp4", 0, "real"),
    ("ffpp/original_sequences/youtube/c23/videos/519.mp4", 0, "real"),
    ("ffpp/original_sequences/youtube/c23/videos/634.mp4", 0, "real"),
    ("multiface/street.mp4", 0, "real"),
    ("ffpp/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4", 1, "Deepfakes"),
    ("ffpp/manipulated_sequences/FaceSwap/c23/videos/634_660.mp4", 1, "FaceSwap"),
    ("ffpp/manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4", 1, "NeuralTextures"),
    ("ffpp/manipulated_sequences/Face2Face/c23/videos", 1, "Face2Face"),  # a folder: any videos there
    ("dfdc/dfdc_train_part_0/brtujopkby.mp4", 1, "DFDC"),
    ("dfdc/dfdc_train_part_10/widuwuoiur.mp4", 1, "DFDC"),
    ("dfdc/dfdc_train_part_10/yhffcuhhjy.mp4", 1, "DFDC"),
]
IMAGES = [("images/ex_original.png", 0), ("images/ex_deepfakes.png", 1), ("images/multiface.jpg", 0)]
TYPES = ["Deepfakes", "FaceSwap", "NeuralTextures", "Face2Face", "DFDC"]


def media(samples: Path) -> list[tuple[Path, int, str]]:
    found = []
    for relative, label, kind in VIDEOS:
        path = samples / relative
        if path.is_dir():
            found += [(p, label, kind) for p in sorted(path.glob("*.mp4"))]
        elif path.is_file():
            found.append((path, label, kind))
    return found


def scan_all(run, inputs: list[Path], options) -> dict[str, float]:
    """{path: P(fake) of the input} (NaN when no face), scanned by one Scanner."""
    from facesleuth.scan import Scanner

    scanner = Scanner(run, options)
    scores = {}
    for path in inputs:
        result = scanner.scan_file(path)
        scores[str(path)] = float("nan") if result.score is None else float(result.raw_score)
        print(f"  {result.status:8s} {scores[str(path)]:.3f}  {path.name}", file=sys.stderr, flush=True)
    return scores


def metrics(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    from facesleuth.evaluate.metrics import roc_auc, video_log_loss

    keep = np.isfinite(scores)
    labels, scores = labels[keep], scores[keep]
    if len(set(labels.tolist())) < 2:
        return float("nan"), float("nan")
    return roc_auc(labels, scores), video_log_loss(labels, scores)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], metavar="RUN", help="also score this run (repeatable)")
    parser.add_argument("--frames", type=int, default=32, help="frames per video, as facesleuth scan (default 32)")
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write every score and figure here")
    args = parser.parse_args()
    if not args.samples.is_dir():
        parser.error(f"samples not found at {args.samples}; pass --samples or set FACESLEUTH_SAMPLES")

    import torch

    from facesleuth.evaluate.ensembles import combine_scores
    from facesleuth.published.builtin import BUILTIN_RUNS
    from facesleuth.runtime import machine_info
    from facesleuth.scan import ScanOptions

    torch.set_num_threads(args.threads)
    print(json.dumps(machine_info()), f"load average {os.getloadavg()}", file=sys.stderr)
    videos = media(args.samples)
    images = [(args.samples / p, label) for p, label in IMAGES if (args.samples / p).is_file()]
    inputs = [p for p, _, _ in videos] + [p for p, _ in images]
    options = ScanOptions(frames=args.frames, device="cpu")
    runs = {name: str(folder) for name, folder in BUILTIN_RUNS.items()}
    runs.update({Path(model).name if Path(model).name not in runs else model: model for model in args.model})
    started = time.perf_counter()
    scores = {}
    for name, run in runs.items():
        print(f"{name}:", file=sys.stderr)
        scores[name] = scan_all(run, inputs, options)
    ensembles = {"Meso4 DF+F2F (default)": ["Meso4_DF", "Meso4_F2F"],
                 "MesoInception DF+F2F": ["MesoInception_DF", "MesoInception_F2F"],
                 "all four MesoNet": list(BUILTIN_RUNS)}
    for name, members in ensembles.items():
        scores[name] = {path: float(combine_scores([[scores[m][str(path)]] for m in members], "mean_probability")[0])
                        for path in map(str, inputs)}

    labels = {str(p): label for p, label, _ in videos}
    kinds = {str(p): kind for p, _, kind in videos}
    reals = [p for p in labels if labels[p] == 0]
    present = [t for t in TYPES if t in kinds.values()]
    table = {}
    header = f"{'model':26s}" + "".join(f"{t:>18s}" for t in present + ["all"]) + "   images (P fake)"
    print(f"video AUC / log loss per manipulation type, {args.frames} frames, fakes of the type vs {len(reals)} reals")
    print(header)
    for name, by_path in scores.items():
        row, cells = {}, []
        for kind in present + ["all"]:
            chosen = reals + [p for p in labels if labels[p] == 1 and (kind == "all" or kinds[p] == kind)]
            auc, loss = metrics(np.array([labels[p] for p in chosen]), np.array([by_path[p] for p in chosen]))
            row[kind] = {"auc": auc, "log_loss": loss, "videos": len(chosen)}
            cells.append(f"{auc:8.2f} / {loss:6.2f}")
        shown = " ".join(f"{Path(p).stem}={by_path[str(p)]:.2f}" for p, _ in images)
        table[name] = row
        print(f"{name:26s}" + "".join(f"{c:>18s}" for c in cells) + f"   {shown}")
    print(f"{time.perf_counter() - started:.0f} s; load average {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_info(), "frames": args.frames, "scores": scores,
                                         "metrics": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
