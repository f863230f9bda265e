"""Seconds to decode a video's sampled frames in a background thread, alone and beside a thread
running Python code, at the interpreter's default GIL switch interval and at the one
``facesleuth.extract.video.prefetch`` sets (DECODE_SWITCH_INTERVAL).

    python benchmarks/decode_contention.py                      # the DFDC sample, 32 frames, 3 rounds
    python benchmarks/decode_contention.py --video V --frames 32 --policy exact

The decoding is the scanner's own (``iter_sampled_batches``, frames resized to detection size,
one decoder thread as ``--threads 1`` holds it), run in a thread as ``prefetch`` runs it while
the main thread detects. The busy thread stands for the Python parts of detection (the glue
between network calls): it only counts. The decoder gives up the GIL inside FFmpeg and takes it
back between packets; how long that takes depends on the switch interval whenever another
thread holds the GIL. Conditions run in turn each round; the best of the rounds is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("FACESLEUTH_SAMPLES") or REPO.parent / "shared/data/samples")
DEFAULT_VIDEO = SAMPLES / "dfdc/dfdc_train_part_10/widuwuoiur.mp4"


def decode_seconds(video: Path, frames: int, policy: str, busy: bool) -> float:
    """Wall seconds to decode ``frames`` evenly spaced frames in a thread, beside a busy Python thread or not."""
    from facesleuth.extract.detect import detection_size
    from facesleuth.extract.video import FramePolicy, evenly_spaced_indices, iter_sampled_batches, probe

    info = probe(video)
    targets = evenly_spaced_indices(info.frames, frames)
    size = detection_size(info.width, info.height, 960)
    stop = threading.Event()

    def spin() -> None:
        count = 0
        while not stop.is_set():
            for i in range(1000):
                count += i

    spinner = threading.Thread(target=spin, daemon=True)
    if busy:
        spinner.start()
        time.sleep(0.05)
    seconds = [0.0]

    def decode() -> None:
        clock = time.perf_counter()
        for _ in iter_sampled_batches(video, targets, FramePolicy(policy, 2), 4, size):
            pass
        seconds[0] = time.perf_counter() - clock

    decoder = threading.Thread(target=decode)
    decoder.start()
    decoder.join()
    stop.set()
    if busy:
        spinner.join()
    return seconds[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--policy", choices=["exact", "nearest_reference"], default="nearest_reference")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.video.is_file():
        parser.error(f"--video {args.video} does not exist")
    sys.path.insert(0, str(REPO / "src"))
    from facesleuth.extract.detect import set_cpu_threads
    from facesleuth.extract.video import DECODE_SWITCH_INTERVAL
    from facesleuth.runtime import machine_info

    set_cpu_threads(1)
    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']} cores; video: {args.video}; {args.frames} frames, {args.policy}")
    default_interval = sys.getswitchinterval()
    conditions = {
        "alone": (default_interval, False),
        f"beside Python, switch interval {default_interval * 1e3:g} ms": (default_interval, True),
        f"beside Python, switch interval {DECODE_SWITCH_INTERVAL * 1e3:g} ms": (DECODE_SWITCH_INTERVAL, True),
    }
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, (interval, busy) in conditions.items():
            sys.setswitchinterval(interval)
            seconds = decode_seconds(args.video, args.frames, args.policy, busy)
            best[name] = min(best.get(name, seconds), seconds)
    sys.setswitchinterval(default_interval)
    alone = best["alone"]
    for name, seconds in best.items():
        print(f"{name:>40}: {seconds:6.2f} s  ({seconds / alone:.2f}x alone)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
