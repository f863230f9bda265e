"""Throughput and latency of ``facesleuth serve`` under N concurrent image uploads (localhost).

    python benchmarks/serve_load.py                       # 50 uploads, 2 workers, EfficientNet-B0 run
    python benchmarks/serve_load.py --uploads 100 --workers 2 --threads 1 --json out.json

A real server (``python -m facesleuth.cli serve``) is started on 127.0.0.1 with a fresh data
dir and waited for until every worker has loaded the run; then N clients upload one image each
at the same moment (one job per upload) and the jobs are polled every 50 ms until done.

- **latency**: from the start of a client's POST until its job is seen done (upload, queueing,
  scan, result stored; the 50 ms polling adds at most 50 ms). With N jobs on W workers most of
  it is waiting in the queue, so p95 grows with N / W.
- **accept**: the POST alone (202 with the job id: upload, content sniffing, SQLite insert).
- **throughput**: jobs finished per second from the first POST to the last job done.

The run folder is made here as in ``scan_latency.py`` (efb0_ns at 224 px, random weights:
speed does not depend on their values), unless ``--model`` names one. The default image is
FF++'s 640x480 frame with one face (``images/ex_original.png`` of the samples).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
SAMPLES = Path(os.environ.get("FACESLEUTH_SAMPLES") or REPO.parent / "shared/data/samples")
DEFAULT_IMAGE = SAMPLES / "images/ex_original.png"
READY_SECONDS = 300
POLL_SECONDS = 0.05


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def _start_server(args: argparse.Namespace, run: Path, data: Path, log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    command = [sys.executable, "-m", "facesleuth.cli", "serve", "--model", str(run), "--host", "127.0.0.1",
               "--port", str(port), "--data-dir", str(data), "--workers", str(args.workers),
               "--threads", str(args.threads), "--max-queue", str(max(100, args.uploads))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=5).json()["workers_ready"] == args.workers:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"server not ready after {READY_SECONDS} s:\n{log.read_text()[-3000:]}")


def load(url: str, image: bytes, uploads: int) -> dict:
    """Fire ``uploads`` concurrent uploads and wait for every job; returns the measured figures."""
    import httpx

    with httpx.Client(timeout=300, limits=httpx.Limits(max_connections=uploads)) as client:
        def post(i: int) -> tuple[str, float, float]:
            started = time.perf_counter()
            answer = client.post(f"{url}/api/scans", files={"file": (f"load-{i:04d}.png", image)})
            answer.raise_for_status()
            return answer.json()["id"], started, time.perf_counter() - started

        first = time.perf_counter()
        with ThreadPoolExecutor(uploads) as pool:
            posted = list(pool.map(post, range(uploads)))
        started = {job_id: t for job_id, t, _ in posted}
        done_at: dict[str, float] = {}
        states: dict[str, str] = {}
        while len(done_at) < uploads:
            for job_id in [j for j in started if j not in done_at]:
                state = client.get(f"{url}/api/scans/{job_id}").json()["state"]
                if state in ("done", "failed"):
                    done_at[job_id], states[job_id] = time.perf_counter(), state
            time.sleep(POLL_SECONDS)
    latency = [done_at[j] - started[j] for j in started]
    accept = [seconds for _, _, seconds in posted]
    wall = max(done_at.values()) - first
    return {
        "uploads": uploads,
        "failed": sum(state != "done" for state in states.values()),
        "wall_s": round(wall, 2),
        "throughput_per_s": round(uploads / wall, 2),
        "latency_p50_s": round(_percentile(latency, 50), 2),
        "latency_p95_s": round(_percentile(latency, 95), 2),
        "accept_p50_s": round(_percentile(accept, 50), 3),
        "accept_p95_s": round(_percentile(accept, 95), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=50, help="concurrent uploads, one image each (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="image uploaded by every client (default: images/ex_original.png of FACESLEUTH_SAMPLES)")
    parser.add_argument("--model", type=Path, help="run folder to serve (default: a random efb0_ns run)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    from facesleuth.runtime import machine_info

    image = args.image.read_bytes()
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        tmp = Path(tmp)
        if args.model is None:
            from scan_latency import make_random_efb0_run

            args.model = make_random_efb0_run(tmp / "efb0_ns-none")
        server, url = _start_server(args, args.model, tmp / "data", tmp / "server.log")
        try:
            load_before = os.getloadavg()[0]
            figures = load(url, image, args.uploads)
            load_after = os.getloadavg()[0]
        finally:
            server.terminate()
            server.wait(30)
    result = {
        "machine": {**machine_info(), "torch_threads": args.threads},  # the workers' threads, not this process's
        "model": "efb0_ns (224 px)" if args.model.name == "efb0_ns-none" else str(args.model),
        "image": args.image.name,
        "workers": args.workers,
        "load_average": [round(load_before, 1), round(load_after, 1)],
        **figures,
    }
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, gpu {m['gpu']}, torch {m['torch']}, "
          f"{args.workers} workers x {args.threads} torch thread(s); load average {load_before:.1f} -> {load_after:.1f}")
    print(f"{figures['uploads']} concurrent uploads of {args.image.name}, {result['model']}: "
          f"{figures['throughput_per_s']} jobs/s ({figures['wall_s']} s in all, {figures['failed']} failed); "
          f"latency p50 {figures['latency_p50_s']} s, p95 {figures['latency_p95_s']} s; "
          f"accept p50 {figures['accept_p50_s']} s, p95 {figures['accept_p95_s']} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if figures["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
