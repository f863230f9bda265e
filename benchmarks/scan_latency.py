"""Wall seconds to scan one 10-second 1080p video end to end with an EfficientNet-B0 run, torch against ONNX Runtime and OpenVINO.

    python benchmarks/scan_latency.py                           # 10 and 32 frames, 1 and 2 threads, both backends and policies
    python benchmarks/scan_latency.py --frames 32 --threads 1 --warm 5 --json out.json
    python benchmarks/scan_latency.py --backends torch          # torch only, as before --backend existed
    python benchmarks/scan_latency.py --backends torch onnx openvino --frames 32 --threads 1 --rounds 2

End to end = what ``facesleuth scan VIDEO --model RUN`` does for one video: sequential decoding
of the video, MTCNN on the sampled frames (downscaled to detect_max_side), IoU tracking and
proportional sampling, crops, EfficientNet-B0 on the sampled faces at 224 px, aggregation.

The run folder is made here: ``efb0_ns`` (tf_efficientnet_b0.ns_jft_in1k) with its head, from
random initialisation, so no weights need to be downloaded; speed does not depend on the
weights' values. It has no threshold.json, so verdicts use 0.5 (irrelevant here).

Each configuration (frames x threads x classifier backend x frame policy) runs in a fresh Python process,
once per round (``--rounds``: every configuration in turn, so none always runs first; ratios take
the best round's cold start and the best warm scan of all rounds), so
**cold** is a genuine first call: from the process's start (as the parent launched it: the
interpreter's own start-up counts) to the first result, through importing facesleuth.scan,
loading the run and MTCNN, and the first scan; ``imports`` and ``first scan`` split it. The ONNX
model is exported once before the onnx and openvino configurations (its time is printed; a deployment does
it once per checkpoint), so their cold start loads it from the run folder's cache, as every
later start of a scanner or worker does; so are MTCNN's networks for openvino (once per
installation, into the user cache). With openvino, MTCNN runs on OpenVINO too, as the scanner
runs it there. The backend's threads are the torch threads of the
configuration (``--threads``, as ``facesleuth scan --threads`` sets both), and so are the video decoder's.
**warm** repeats the scan in the same process (median and best of ``--warm``). Stage times come
from the same scans: ``detect`` is MTCNN alone (a timing subclass of the pipeline's detector),
``decode+crop`` the rest of the extraction (decoding every frame up to the last sampled one,
resizing for detection, crops, JPEG), ``classify`` the model. Load average is printed before and
after: the machine is shared, so compare only figures taken in one run. The CPU seconds of
detection and of the classifier (preparing the faces and the network), in the thread that ran
them, are recorded too (JSON ``detect_cpu``, ``classify_network_cpu``; printed for the
classifier): with one thread they change less with the load than wall times. Where the scanner
classifies ahead (``ScanOptions.classify_ahead``), ``classify`` is what is left to classify once
detection ends, and the classifier's CPU seconds are those of both threads. The CPU seconds of the
best warm scan (all threads of the process, decoder threads included) are printed beside its wall
time: with one torch thread they are about what the scan takes on an otherwise idle core, whatever
the load was.

Targets: 32 frames warm in at most 8 s (the DFDC competition's per-video budget on a P100);
the goals: with one thread, the scanner's defaults (what ``--backend auto`` takes, nearest-reference
frames) at 32 frames warm in at most 0.5x the time of today's scanner and a cold start in at most
0.6x, in the same run. Two baselines are printed: the current code with torch and exact frames
(every configuration's ratios to it), which shares this code's faster MTCNN cascade and its
classifying ahead, and the scanner's code as it was when the goals were set (``--baseline-rev``,
checked out with ``git archive``; torch and exact frames were all it had), run in the same rounds
on the same threads: its torch threads as its own ``--threads`` set them, and its video decoder,
which it left at a thread per core, held to the same count (:func:`hold_baseline_threads`). The
goals are judged against the second, or against the first where the second cannot run (no git).
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
# The scanner's code when the latency goals were set (torch, exact frames, facenet-pytorch's NMS and
# crops): "today's time" of the goals, run in the same rounds as the current code.
BASELINE_REV = "835be9c"


def make_random_run(folder: Path, model: str = "efb0_ns", input_size: int = 224) -> Path:
    """A run folder (best.pt + run.yaml) of ``model`` at ``input_size``, randomly initialised."""
    sys.path.insert(0, str(REPO / "src"))
    from facesleuth.train.models import build_model
    from facesleuth.train.loop import run_info, save_checkpoint, write_run_yaml

    settings = {
        "model": model,
        "setup": "none",
        "training": {"input_size": input_size, "epochs": 1, "batch_size": 64, "precision": "fp32", "lr": 1e-4,
                     "dropout": 0.2, "pretrained": False, "seed": 0},
    }
    info = run_info(settings, ["none: random initialisation (benchmark)"], "cpu", 1)
    network = build_model(model, pretrained=False, dropout=0.2)
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint({"model_state": network.state_dict(), "epoch": 0, "val_loss": float("nan"), "run": info},
                    folder / "best.pt")
    write_run_yaml(info, folder / "run.yaml")
    return folder


def worker(args: argparse.Namespace) -> None:
    """One configuration in this (fresh) process; prints one JSON line."""
    started = time.perf_counter()

    sys.path.insert(0, str(args.source or REPO / "src"))
    try:
        from facesleuth.extract.detect import FaceDetector, set_cpu_threads
    except ImportError:  # the baseline's code: its own layout and thread setting
        from facesleuth.detect import FaceDetector

        set_cpu_threads = hold_baseline_threads
    set_cpu_threads(args.threads)  # as facesleuth scan --threads does
    from facesleuth.scan import Scanner, ScanOptions

    import facesleuth.scan.scanner as scanner_module

    class TimedDetector(FaceDetector):
        seconds: float = 0.0
        cpu: float = 0.0

        def detect(self, frames, full_size=None):
            clock, cpu = time.perf_counter(), time.thread_time()
            try:
                return super().detect(frames, full_size)
            finally:
                self.seconds += time.perf_counter() - clock
                self.cpu += time.thread_time() - cpu

    classifier_cpu = [0.0]  # CPU seconds of the classifier (prepare + network), the scans' sum
    predict_crops = scanner_module.predict_crops

    def timed_predict_crops(*args, **kwargs):
        cpu = time.thread_time()
        try:
            return predict_crops(*args, **kwargs)
        finally:
            classifier_cpu[0] += time.thread_time() - cpu

    scanner_module.predict_crops = timed_predict_crops

    def scan_once(scanner):
        scanner.detector.seconds = scanner.detector.cpu = classifier_cpu[0] = 0.0
        clock, cpu = time.perf_counter(), time.process_time()
        result = scanner.scan_file(args.video)
        wall, cpu = time.perf_counter() - clock, time.process_time() - cpu
        if result.status != "ok":
            raise SystemExit(f"scan failed: {result.status}: {result.message}")
        detect = scanner.detector.seconds
        return {
            "wall": wall, "cpu": cpu, "detect": detect, "decode_crop": result.timings["extract"] - detect,
            "classify": result.timings["classify"], "faces": len(result.faces), "frames_read": result.frames_read,
            "detect_cpu": scanner.detector.cpu, "classify_network_cpu": classifier_cpu[0],
        }

    imported = time.perf_counter()
    settings = {"frames": args.frames, "device": args.device, "backend": args.backend, "frame_policy": args.frame_policy}
    known = {f.name for f in dataclasses.fields(ScanOptions)}  # the baseline has neither backend nor frame_policy
    options = ScanOptions(**{name: value for name, value in settings.items() if name in known})
    scanner = Scanner(args.run, options)
    loaded = scanner.detector
    timed = TimedDetector(**{f.name: getattr(loaded, f.name) for f in dataclasses.fields(loaded) if f.init})
    timed._mtcnn = loaded.mtcnn  # the network loaded above (cold includes its loading once)
    scanner.detector = timed
    first = scan_once(scanner)
    first_result_at = time.time()
    cold = time.perf_counter() - started
    warm = [scan_once(scanner) for _ in range(args.warm)]
    print(json.dumps({
        "frames": args.frames, "threads": args.threads, "backend": getattr(scanner.run, "backend", "torch"),
        "frame_policy": args.frame_policy, "code": args.code, "cold_in_process": cold,
        "import": imported - started, "first_scan": first, "first_result_at": first_result_at, "warm": warm,
    }))


def hold_baseline_threads(threads: int) -> None:
    """What the current scanner's ``--threads`` holds, applied to the baseline's code: torch's
    threads (as its own ``--threads`` set them) and its video decoder's (which it left at FFmpeg's
    default, a thread per core), so both run on the same threads."""
    import torch

    import facesleuth.video as video

    torch.set_num_threads(threads)
    opened = video._open_container

    def open_held(path):
        container = opened(path)
        container.streams.video[0].thread_count = threads
        return container

    video._open_container = open_held


def check_out_source(rev: str, folder: Path) -> Path | None:
    """The package's source at ``rev`` (``git archive``) under ``folder``; None, with the reason
    printed, where this checkout cannot give it (no git, a shallow clone). The worker puts it first
    on ``sys.path``, ahead of the installed package."""
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", b"") or b""
        print(f"code at {rev}: not available here ({detail.decode(errors='replace').strip() or err}); "
              "left out of this run", flush=True)
        return None
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="a 10 s 1080p video (default: DFDC sample)")
    parser.add_argument("--frames", type=int, nargs="+", default=[10, 32])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads per configuration")
    parser.add_argument("--backends", nargs="+", choices=["torch", "onnx", "openvino"],
                        help="classifier backends to compare (default torch and onnx on the CPU, torch on a GPU; "
                             "onnx needs onnxruntime, openvino OpenVINO, both run on the CPU only)")
    parser.add_argument("--frame-policies", nargs="+", choices=["exact", "nearest_reference"],
                        default=["exact", "nearest_reference"],
                        help="the scanner's frame policies to compare (default both)")
    parser.add_argument("--backend", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--frame-policy", default="exact", help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=int, default=3, help="warm repeats per configuration")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds over all configurations, each a fresh process per configuration; cold is the "
                             "best round's, warm the best of all (no configuration always runs first)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N: where the scanner runs")
    parser.add_argument("--json", type=Path, help="also write all figures here (rewritten after every row)")
    parser.add_argument("--baseline-rev", default=BASELINE_REV,
                        help=f"the scanner's code to run as the goals' baseline, torch + exact frames, in the same "
                             f"rounds (default {BASELINE_REV}: as it was when the goals were set); none: skip")
    parser.add_argument("--before-rev",
                        help="also run every configuration on the code at this revision (e.g. HEAD for a change not "
                             "yet committed), in the same rounds: each configuration's ratio now / before")
    parser.add_argument("--code", default="now", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.frames, args.threads = args.frames[0], args.threads[0]
        worker(args)
        return 0
    if not args.video.is_file():
        parser.error(f"--video {args.video} does not exist; pass a 10 s 1080p video")
    sys.path.insert(0, str(REPO / "src"))
    from facesleuth.runtime import resolve_device

    try:
        on_cpu = resolve_device(args.device) == "cpu"
    except RuntimeError as err:  # cuda asked for, none visible
        parser.error(str(err))
    if args.backends is None:
        args.backends = ["torch", "onnx"] if on_cpu else ["torch"]
    elif not on_cpu and set(args.backends) - {"torch"}:
        parser.error(f"--backends {' '.join(sorted(set(args.backends) - {'torch'}))} run on the CPU only; "
                     f"with --device {args.device} compare torch alone")

    from facesleuth.runtime import machine_info

    info = machine_info()
    load_before = os.getloadavg()
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, python {info['python']}")
    print(f"video: {args.video}")
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="scan_latency.") as tmp:
        run = make_random_run(Path(tmp) / "efb0_ns" / "none")
        if {"onnx", "openvino"} & set(args.backends):
            print(f"onnx export (once per checkpoint, kept in the run folder): {export_once(run):.2f} s", flush=True)
        if "openvino" in args.backends:
            print(f"MTCNN's export for openvino (once per installation, kept in the user cache): "
                  f"{export_mtcnn_once():.2f} s", flush=True)
        configurations = [(frames, threads, backend, policy, "now", None) for frames in args.frames
                          for threads in args.threads for backend in args.backends for policy in args.frame_policies]
        if args.before_rev:
            before = check_out_source(args.before_rev, Path(tmp) / "before")
            if before is None:
                return 1
            configurations += [(*c[:4], "before", before) for c in list(configurations)]
        baseline = None if args.baseline_rev == "none" else check_out_source(args.baseline_rev, Path(tmp) / "baseline")
        if baseline is not None:
            configurations += [(frames, threads, "torch", "exact", "baseline", baseline) for frames in args.frames
                               for threads in args.threads]
        for number in range(args.rounds):
            for frames, threads, backend, policy, code, source in configurations:
                command = [sys.executable, __file__, "--worker", "--run", str(run), "--video", str(args.video),
                           "--frames", str(frames), "--threads", str(threads), "--warm", str(args.warm),
                           "--device", args.device, "--backend", backend, "--frame-policy", policy, "--code", code]
                if source is not None:
                    command += ["--source", str(source)]
                launched = time.time()
                done = subprocess.run(command, capture_output=True, text=True, check=False,
                                      env={**os.environ, "OPENCV_LOG_LEVEL": "ERROR"})
                if done.returncode != 0:
                    print(done.stderr[-3000:], file=sys.stderr)
                    return 1
                row = json.loads(done.stdout.strip().splitlines()[-1])
                row["cold"] = row["first_result_at"] - launched
                row["round"] = number
                rows.append(row)
                print(format_row(rows[-1]), flush=True)
                if args.json:
                    args.json.write_text(json.dumps({"machine": info, "device": args.device,
                                                     "video": str(args.video), "rows": rows}, indent=1))
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    best32 = [min(w["wall"] for w in r["warm"]) for r in rows if r["frames"] == 32 and r["warm"]]
    if best32:
        verdict = "met" if min(best32) <= TARGET_SECONDS else "MISSED"
        print(f"target: 32 frames warm <= {TARGET_SECONDS:.0f} s: {verdict} (best {min(best32):.2f} s)")
    baselined = any(r.get("code") == "baseline" for r in rows)
    for line in backend_ratios(rows, default_backend(args.device), goals=not baselined):
        print(line)
    for line in baseline_ratios(rows, default_backend(args.device), args.baseline_rev):
        print(line)
    for line in before_ratios(rows, args.before_rev):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "device": args.device, "load_before": load_before,
                                         "load_after": load_after, "video": str(args.video), "rows": rows}, indent=1))
    return 0


def export_once(run: Path) -> float:
    """Seconds to export the run's classifier to ONNX into the run folder's cache (what the first
    onnx scanner of a checkpoint does; the configurations then load it)."""
    sys.path.insert(0, str(REPO / "src"))
    from facesleuth.scan import load_scan_run

    clock = time.perf_counter()
    load_scan_run(run, "cpu", backend="onnx")
    return time.perf_counter() - clock


def default_backend(device: str) -> str:
    """What ``--backend auto``, the scanner's default, takes on ``device`` here."""
    sys.path.insert(0, str(REPO / "src"))
    from facesleuth.evaluate.inference import resolve_backend
    from facesleuth.runtime import resolve_device

    return resolve_backend("auto", resolve_device(device))


def export_mtcnn_once() -> float:
    """Seconds to export MTCNN's networks for OpenVINO into the user cache, or to find them there
    (what the first openvino scanner of an installation does; the configurations then load them)."""
    sys.path.insert(0, str(REPO / "src"))
    from facesleuth.extract.detect import FaceDetector

    clock = time.perf_counter()
    FaceDetector(device="cpu", backend="openvino").load()
    return time.perf_counter() - clock


def backend_ratios(rows: list[dict], defaults: str, goals: bool = True) -> list[str]:
    """Each configuration against the current code with torch and exact frames at the same
    frames x threads: warm (best) and cold, whole scan and classifier. ``goals``: judge the
    issue's goals (one thread, 32 frames, the scanner's defaults: ``defaults``, what auto takes,
    with nearest_reference) here, where the baseline's code did not run."""
    lines = []
    by_key = _by_configuration(rows, "now")
    for (frames, threads, backend, policy), runs in by_key.items():
        before = by_key.get((frames, threads, "torch", "exact"))
        if before is None or runs is before:
            continue
        lines.append(_ratio_line(f"{backend} + {policy} / torch + exact", frames, threads, runs, before,
                                 goals and (backend, policy) == (defaults, "nearest_reference")))
    return lines


def baseline_ratios(rows: list[dict], defaults: str, rev: str) -> list[str]:
    """The scanner's defaults against the baseline's code (torch, exact frames) at each frames x
    threads: "today's time" of the goals, judged here."""
    now, baseline = _by_configuration(rows, "now"), _by_configuration(rows, "baseline")
    lines = []
    for (frames, threads, _, _), before in baseline.items():
        runs = now.get((frames, threads, defaults, "nearest_reference"))
        if runs is not None:
            lines.append(_ratio_line(f"{defaults} + nearest_reference / the code at {rev}", frames, threads, runs,
                                     before, True))
    return lines


def before_ratios(rows: list[dict], rev: str | None) -> list[str]:
    """Each configuration now against the same configuration on the code at ``--before-rev``."""
    now, before = _by_configuration(rows, "now"), _by_configuration(rows, "before")
    return [_ratio_line(f"{key[2]} + {key[3]} now / at {rev}", key[0], key[1], runs, before[key], False)
            for key, runs in now.items() if key in before]


def _by_configuration(rows: list[dict], code: str) -> dict[tuple, list[dict]]:
    by_key: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("code", "now") == code:
            by_key.setdefault((r["frames"], r["threads"], r["backend"], r["frame_policy"]), []).append(r)
    return by_key


def _ratio_line(name: str, frames: int, threads: int, runs: list[dict], before: list[dict], defaults: bool) -> str:
    """Warm (best of all rounds) and cold (best round) of ``runs`` over ``before``, whole scan and stages."""
    best = {label: min((w for r in group for w in (r["warm"] or [r["first_scan"]])), key=lambda w: w["wall"])
            for label, group in (("before", before), ("now", runs))}
    warm = best["now"]["wall"] / best["before"]["wall"]
    cold = min(r["cold"] for r in runs) / min(r["cold"] for r in before)
    classify = best["now"]["classify"] / max(best["before"]["classify"], 1e-9)
    decode = best["now"]["decode_crop"] / max(best["before"]["decode_crop"], 1e-9)
    line = (f"{name}, frames {frames:>3} threads {threads}: warm {warm:.2f}x, cold {cold:.2f}x, "
            f"classifier {classify:.2f}x, decode+crop {decode:.2f}x")
    if frames == 32 and threads == 1 and defaults:
        line += (f"  [the defaults; goals: warm <= 0.5x {'met' if warm <= 0.5 else 'MISSED'}, "
                 f"cold <= 0.6x {'met' if cold <= 0.6 else 'MISSED'}]")
    return line


def format_row(row: dict) -> str:
    warm = row["warm"] or [row["first_scan"]]
    walls = [w["wall"] for w in warm]
    median = statistics.median(walls)
    stage = min(warm, key=lambda w: w["wall"])
    code = "" if row.get("code", "now") == "now" else f"{row['code']} "
    return (f"round {row.get('round', 0)}  {code}{row['backend']:>8} {row['frame_policy']:>17}  frames {row['frames']:>3}  threads {row['threads']}  cold {row['cold']:6.2f} s "
            f"(imports {row['import']:.2f} s, first scan {row['first_scan']['wall']:.2f} s)  "
            f"warm median {median:6.2f} s, best {min(walls):6.2f} s (CPU {stage['cpu']:.2f} s)  "
            f"[best: decode+crop {stage['decode_crop']:.2f}, detect {stage['detect']:.2f}, "
            f"classify {stage['classify']:.2f} s (network CPU {stage['classify_network_cpu']:.2f} s); "
            f"{stage['faces']} faces, {stage['frames_read']} frames]")


if __name__ == "__main__":
    sys.exit(main())
