"""MTCNN detection speed and equivalence: facenet-pytorch's detect_face against facesleuth.extract.mtcnn_fast.

    python benchmarks/detect.py                      # speed (CPU, 1 thread) and equivalence
    python benchmarks/detect.py --skip-equivalence --rounds 5 --json detect.json

Speed: ``FaceDetector.detect`` with ``implementation="facenet"`` and ``"fast"`` on the same
frames in one process, rounds alternating so that load from other jobs falls on both; frames
per second of each round, the best and median ratio. Two workloads, with the settings of
``config/thesis.yaml``: frames that are 960x540 already (MTCNN's smallest face 56 px: the
70 px filter with slack), and 1920x1080 frames that the detector downscales to 960x540 (the
DFDC case: smallest face 28 px, so a deeper pyramid). The frames are evenly spaced frames of
the two 1080p samples (the DFDC landscape fake, one face, and the street clip, 1 to 4 faces),
decoded once before timing.

Equivalence: the raw detections (before the size and probability filters) of both
implementations on evenly spaced frames of every sample video and on the sample images, at
the detection size FaceDetector uses: frames whose face counts differ, the largest IoU
deviation and probability difference between matched faces, and the faces kept by the
filters (>= 70 px, >= 0.9) that only one side keeps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from facesleuth.config import load_config
from facesleuth.extract.detect import FaceDetector, FrameFaces, no_landmarks
from facesleuth.extract.tracking import iou
from facesleuth.extract.video import evenly_spaced_indices, probe, read_frames, read_image

SPEED_VIDEOS = ["dfdc/dfdc_train_part_10/widuwuoiur.mp4", "multiface/street.mp4"]
IMAGES = ["images/multiface.jpg", "images/ex_original.png", "images/ex_deepfakes.png"]
VIDEO_SUFFIXES = {".mp4", ".avi"}


def speed_frames(samples: Path, per_video: int) -> tuple[np.ndarray, np.ndarray]:
    """(1080p frames, the same frames at 960x540)."""
    import cv2

    full = np.concatenate([
        read_frames(samples / video, evenly_spaced_indices(probe(samples / video).frames, per_video))
        for video in SPEED_VIDEOS
    ])
    if full.shape[1:3] != (1080, 1920):
        raise SystemExit(f"expected 1920x1080 speed samples, got {full.shape[1:3]}")
    half = np.stack([cv2.resize(f, (960, 540), interpolation=cv2.INTER_AREA) for f in full])
    return full, half


def timed_detect(detector: FaceDetector, frames: np.ndarray) -> tuple[float, list]:
    started = time.perf_counter()
    found = detector.detect(frames)
    return time.perf_counter() - started, found


def measure_speed(settings: dict, workloads: dict[str, np.ndarray], rounds: int) -> dict:
    detectors = {name: FaceDetector.from_config({**settings, "implementation": name}).load()
                 for name in ("facenet", "fast")}
    results = {}
    for workload, frames in workloads.items():
        for detector in detectors.values():  # warm-up: first calls allocate and pick kernels
            detector.detect(frames[:2])
        per_round = []
        for number in range(rounds):
            seconds = {}
            for name, detector in detectors.items():
                seconds[name], _ = timed_detect(detector, frames)
            row = {
                "round": number,
                **{f"{name}_fps": round(len(frames) / s, 2) for name, s in seconds.items()},
                "ratio": round(seconds["facenet"] / seconds["fast"], 2),
                "load": round(os.getloadavg()[0], 2),
            }
            per_round.append(row)
            print(f"  {workload}: {json.dumps(row)}", flush=True)
        best = {name: max(r[f"{name}_fps"] for r in per_round) for name in detectors}
        results[workload] = {
            "frames": len(frames), "rounds": per_round, "best_fps": best,
            "ratio_best": round(best["fast"] / best["facenet"], 2),
            "ratio_median": round(statistics.median(r["ratio"] for r in per_round), 2),
        }
        print(f"{workload}: facenet {best['facenet']} frames/s, fast {best['fast']} frames/s (best rounds): "
              f"{results[workload]['ratio_best']}x; median round {results[workload]['ratio_median']}x", flush=True)
    return results


def match(reference: np.ndarray, boxes: np.ndarray) -> list[tuple[int, int, float]]:
    """Greedy best-IoU pairs (i, j, iou) between two sets of boxes of one frame."""
    pairs, used = [], set()
    for i, box in enumerate(reference):
        overlaps = [(iou(box, other), j) for j, other in enumerate(boxes) if j not in used]
        if overlaps:
            best, j = max(overlaps)
            if best > 0.5:
                pairs.append((i, j, best))
                used.add(j)
    return pairs


def sample_inputs(samples: Path, per_video: int):
    """(name, frames) of every sample video (evenly spaced frames) and image."""
    for path in sorted(p for p in samples.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES):
        indices = evenly_spaced_indices(probe(path).frames, per_video)
        yield str(path.relative_to(samples)), read_frames(path, indices)
    for image in IMAGES:
        yield image, read_image(samples / image)[None]


class RawDetector(FaceDetector):
    """The pipeline's detector (same downscaling and MTCNN smallest face) without its filters."""

    def _filter(self, boxes: np.ndarray, probs: np.ndarray, landmarks: np.ndarray | None = None) -> FrameFaces:
        return FrameFaces(boxes, probs, len(boxes), landmarks if landmarks is not None else no_landmarks(len(boxes)))


def measure_equivalence(settings: dict, samples: Path, per_video: int) -> dict:
    detectors = {name: RawDetector.from_config({**settings, "implementation": name}) for name in ("facenet", "fast")}
    totals = {"inputs": 0, "frames": 0, "faces_facenet": 0, "faces_fast": 0, "frames_with_other_counts": 0,
              "unmatched_faces": 0, "max_iou_deviation": 0.0, "max_box_shift_px": 0.0, "max_prob_difference": 0.0,
              "kept_facenet": 0, "kept_fast": 0, "kept_by_one_side": 0, "differences": []}
    for name, frames in sample_inputs(samples, per_video):
        found = {impl: detector.detect(frames) for impl, detector in detectors.items()}
        totals["inputs"] += 1
        for index, (ref, fast) in enumerate(zip(found["facenet"], found["fast"])):
            totals["frames"] += 1
            totals["faces_facenet"] += len(ref.boxes)
            totals["faces_fast"] += len(fast.boxes)
            pairs = match(ref.boxes, fast.boxes)
            unmatched = len(ref.boxes) + len(fast.boxes) - 2 * len(pairs)
            totals["unmatched_faces"] += unmatched
            if len(ref.boxes) != len(fast.boxes) or unmatched:
                totals["frames_with_other_counts"] += 1
                totals["differences"].append({"input": name, "frame": index, "facenet": ref.probs.tolist(),
                                              "fast": fast.probs.tolist()})
            for i, j, overlap in pairs:
                totals["max_iou_deviation"] = max(totals["max_iou_deviation"], 1.0 - overlap)
                shift = float(np.abs(ref.boxes[i] - fast.boxes[j]).max())
                totals["max_box_shift_px"] = max(totals["max_box_shift_px"], shift)
                prob = abs(float(ref.probs[i]) - float(fast.probs[j]))
                totals["max_prob_difference"] = max(totals["max_prob_difference"], prob)

            def kept(faces):
                sides = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
                return faces.boxes[(faces.probs >= settings["min_probability"]) & (sides >= settings["min_face_size"])]

            kept_ref, kept_fast = kept(ref), kept(fast)
            totals["kept_facenet"] += len(kept_ref)
            totals["kept_fast"] += len(kept_fast)
            totals["kept_by_one_side"] += len(kept_ref) + len(kept_fast) - 2 * len(match(kept_ref, kept_fast))
        print(f"  {name}: {len(frames)} frames, {totals['faces_fast']} faces so far", flush=True)
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_samples = os.environ.get("FACESLEUTH_SAMPLES", REPO.parent / "shared/data/samples")
    parser.add_argument("--samples", type=Path, default=Path(default_samples))
    parser.add_argument("--config", type=Path, default=REPO / "config/thesis.yaml",
                        help="its extraction.detection section is used")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the cores are shared)")
    parser.add_argument("--frames", type=int, default=16, help="frames per speed video (two videos)")
    parser.add_argument("--batch", type=int, default=None, help="detection batch (default: the config's)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--equivalence-frames", type=int, default=10, help="frames per sample video")
    parser.add_argument("--skip-equivalence", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if not args.samples.is_dir():
        parser.error(f"samples not found at {args.samples}; pass --samples or set FACESLEUTH_SAMPLES")
    settings = {**load_config(args.config)["extraction"]["detection"], "device": args.device}
    if args.batch:
        settings["batch_size"] = args.batch
    from facesleuth.runtime import machine_info

    info = machine_info()
    load_before = os.getloadavg()
    print(f"{info['cpu']} x{info['cores']}, torch {info['torch']} ({info['torch_threads']} threads), device {args.device}, "
          f"batch {settings['batch_size']}; load average {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}", flush=True)
    full, half = speed_frames(args.samples, args.frames)
    speed = measure_speed(settings, {"960x540": half, "1920x1080->960": full}, args.rounds)
    equivalence = None
    if not args.skip_equivalence:
        print("equivalence on every sample (raw detections, before the filters):", flush=True)
        equivalence = measure_equivalence(settings, args.samples, args.equivalence_frames)
        shown = {k: v for k, v in equivalence.items() if k != "differences"}
        print(json.dumps(shown, indent=1))
        for difference in equivalence["differences"]:
            print(f"  differs: {difference}")
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "settings": settings, "load_before": load_before,
                                         "load_after": load_after, "speed": speed, "equivalence": equivalence},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
