"""Throughput and latency of ``facesleuth serve`` under N concurrent uploads (localhost), in either mode.

    python benchmarks/serve_load.py                       # 50 uploads, 2 workers, EfficientNet-B0 run
    python benchmarks/serve_load.py --uploads 100 --workers 2 --threads 1 --json out.json
    python benchmarks/serve_load.py --mode broker         # Redis + facesleuth worker: 1 worker, then 2

A real server (``python -m facesleuth.cli serve``) is started on 127.0.0.1 with a fresh data
dir and waited for until every worker has loaded the run; then N clients upload one file each
at the same moment (one job per upload), after one unmeasured job per worker, and the jobs are
polled until done. In
``--mode broker`` a ``redis-server`` is started on a free port, the API with ``--broker``, and
``facesleuth worker`` processes: one for a first round of N uploads, a second one joins for a
second round, so both figures come from the same run on the same machine.

- **latency**: from the start of a client's POST until its job is finished by the server's clock
  (upload, queueing, scan, result stored; polling does not add to it). With N jobs on W workers most of
  it is waiting in the queue, so p95 grows with N / W.
- **accept**: the POST alone (202 with the job id: upload, content sniffing, the job recorded).
- **throughput**: jobs finished per second from the first POST to the last job done.
- **ideal**: worker cores / CPU seconds per job, where the CPU seconds are the workers' own
  (user + system, from /proc) over the round, divided by its jobs, and worker cores are
  workers x threads (at most the machine's cores): what the workers would finish if nothing
  but scanning used their cores. ``efficiency`` = throughput / ideal.

The run folder is made here as in ``scan_latency.py`` (efb0_ns at 224 px, random weights:
speed does not depend on their values), unless ``--model`` names one. The default image is
FF++'s 640x480 frame with one face (``images/ex_original.png`` of the samples).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import signal
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
POLL_SECONDS = 0.1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}


def _wait_ready(server: subprocess.Popen, url: str, workers: int, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=5).json()["workers_ready"] >= workers:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"server not ready after {READY_SECONDS} s:\n{log.read_text()[-3000:]}")


def _start_server(args: argparse.Namespace, run: Path, data: Path, log: Path, *options: str,
                  wait: bool = True) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "facesleuth.cli", "serve", "--model", str(run), "--host", "127.0.0.1",
               "--port", str(port), "--data-dir", str(data), "--workers", str(args.workers),
               "--threads", str(args.threads), "--max-queue", str(max(100, args.uploads)), "--backend", args.backend,
               *options]
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env())
    url = f"http://127.0.0.1:{port}"
    if wait:
        _wait_ready(server, url, args.workers, log)
    return server, url


def _start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("--mode broker needs redis-server (Debian: apt-get install redis-server)")
    port = _free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                                "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            return process, url
        except redis.RedisError:
            time.sleep(0.1)
    raise RuntimeError("redis-server did not start")


def _start_worker(args: argparse.Namespace, run: Path, data: Path, broker: str, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "facesleuth.cli", "worker", "--broker", broker, "--model", str(run),
               "--data-dir", str(data), "--threads", str(args.threads), "--backend", args.backend]
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd=log.parent)


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _runqueue_seconds(pids: list[int]) -> float:
    """Seconds these processes' threads spent runnable but waiting for a core (/proc/PID/task/*/schedstat)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def _pool_pids(server: subprocess.Popen) -> list[int]:
    """The embedded mode's worker processes: the server's spawned children (any of its threads may
    have started them; multiprocessing's resource tracker is not one)."""
    pids = [int(pid) for task in Path(f"/proc/{server.pid}/task").iterdir()
            for pid in (task / "children").read_text().split()]
    return [pid for pid in pids if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def load(url: str, upload: tuple[bytes, str], uploads: int) -> dict:
    """Fire ``uploads`` concurrent uploads and wait for every job; returns the measured figures.

    Each job's end is the server's own ``finished`` time (same machine, same clock), so how often
    the jobs are polled does not shape the figures; they are polled oldest first, and a poll stops at
    the first one still unfinished (the queue is first in, first out), so the load generator takes
    little of the cores the workers are measured on.
    """
    import httpx

    with httpx.Client(timeout=300, limits=httpx.Limits(max_connections=uploads)) as client:
        def post(i: int) -> tuple[str, float, float]:
            started, clock = time.time(), time.perf_counter()
            answer = client.post(f"{url}/api/scans", files={"file": (f"load-{i:04d}{upload[1]}", upload[0])})
            answer.raise_for_status()
            return answer.json()["id"], started, time.perf_counter() - clock

        first = time.time()
        with ThreadPoolExecutor(uploads) as pool:
            posted = sorted(pool.map(post, range(uploads)), key=lambda item: item[1])
        started = {job_id: t for job_id, t, _ in posted}
        done_at: dict[str, float] = {}
        states: dict[str, str] = {}
        while len(done_at) < uploads:
            for job_id in [j for j in started if j not in done_at]:
                job = client.get(f"{url}/api/scans/{job_id}").json()
                if job["state"] not in ("done", "failed"):
                    break
                done_at[job_id] = _dt.datetime.fromisoformat(job["finished"]).timestamp()
                states[job_id] = job["state"]
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


def warm_up(url: str, upload: tuple[bytes, str], workers: int) -> None:
    """One job per worker, not measured: the first scan of a process pays one-off costs (lazy
    imports, first allocations) that a service running for hours does not."""
    load(url, upload, workers)


def measured_round(url: str, upload: tuple[bytes, str], uploads: int, worker_pids: list[int], worker_cores: int,
                   api_pid: int) -> dict:
    """One round of ``uploads`` concurrent uploads, with the workers' CPU time and the ideal throughput.

    ``efficiency`` (throughput / ideal) is, by its definition, the share of their cores the
    workers used over the round (CPU seconds / wall seconds / worker cores). What they did not
    use splits into ``worker_waiting_share``, runnable but waiting for a core (the kernel's
    run-queue time: cores held by the API or other jobs), and ``worker_idle_share``, the rest:
    no job to scan (the queue's own overhead, the upload phase). ``api_cpu_s_per_job``: the
    API's own CPU per upload, ``clients_cpu_s_per_job`` the load generator's (this process): both
    take cores the workers could have had on a machine that holds them all.
    """
    warm_up(url, upload, len(worker_pids))
    cpu_before, api_before = _cpu_seconds(worker_pids), _cpu_seconds([api_pid])
    clients_before = time.process_time()
    waiting_before = _runqueue_seconds(worker_pids)
    figures = load(url, upload, uploads)
    clients_cpu = time.process_time() - clients_before
    waiting = _runqueue_seconds(worker_pids) - waiting_before
    worker_cpu = _cpu_seconds(worker_pids) - cpu_before
    cpu_per_job = worker_cpu / uploads
    ideal = worker_cores / cpu_per_job
    return {**figures, "workers": len(worker_pids), "worker_cores": worker_cores,
            "cpu_s_per_job": round(cpu_per_job, 3), "ideal_per_s": round(ideal, 2),
            "efficiency": round(figures["throughput_per_s"] / ideal, 3),
            "worker_waiting_share": round(waiting / figures["wall_s"] / worker_cores, 3),
            # the two clocks are read a moment apart: a share a hair below 0 is none
            "worker_idle_share": round(max(0.0, 1 - (worker_cpu + waiting) / figures["wall_s"] / worker_cores), 3),
            "api_cpu_s_per_job": round((_cpu_seconds([api_pid]) - api_before) / uploads, 3),
            "clients_cpu_s_per_job": round(clients_cpu / uploads, 3)}


def _describe(round_: dict) -> str:
    return (f"{round_['workers']} worker(s): {round_['throughput_per_s']} jobs/s ({round_['wall_s']} s, "
            f"{round_['failed']} failed), ideal {round_['ideal_per_s']} jobs/s ({round_['worker_cores']} cores / "
            f"{round_['cpu_s_per_job']} CPU s per job) -> {round_['efficiency']:.0%} of ideal (the share of their "
            f"cores the workers used; waiting for a core {round_['worker_waiting_share']:.0%}, idle "
            f"{round_['worker_idle_share']:.0%}); the API {round_['api_cpu_s_per_job']} and the clients "
            f"{round_['clients_cpu_s_per_job']} CPU s per job; latency p50 "
            f"{round_['latency_p50_s']} s, p95 {round_['latency_p95_s']} s; accept p50 {round_['accept_p50_s']} s, "
            f"p95 {round_['accept_p95_s']} s")


def broker_rounds(args: argparse.Namespace, upload: tuple[bytes, str], tmp: Path) -> list[dict]:
    """Redis, the API with --broker, then a round with one worker and a round with two."""
    (tmp / "redis").mkdir()
    (tmp / "data" / "uploads").mkdir(parents=True)
    redis, broker = _start_redis(tmp / "redis")
    cores = os.cpu_count() or 1
    workers: list[subprocess.Popen] = []
    server = None
    try:
        server, url = _start_server(args, args.model, tmp / "data", tmp / "server.log", "--broker", broker, wait=False)
        rounds = []
        for count in (1, 2):
            while len(workers) < count:
                workers.append(_start_worker(args, args.model, tmp / "data", broker, tmp / f"worker{len(workers)}.log"))
            _wait_ready(server, url, count, tmp / "server.log")
            rounds.append(measured_round(url, upload, args.uploads, [w.pid for w in workers],
                                         min(cores, count * args.threads), server.pid))
            print(_describe(rounds[-1]), flush=True)
        return rounds
    finally:
        for process in [*workers, server, redis]:
            if process is not None:
                process.send_signal(signal.SIGTERM)
        for process in [*workers, server, redis]:
            if process is not None:
                process.wait(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=50, help="concurrent uploads, one file each (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    parser.add_argument("--file", "--image", dest="image", type=Path, default=DEFAULT_IMAGE,
                        help="image or video uploaded by every client (default: images/ex_original.png of "
                             "FACESLEUTH_SAMPLES; a video makes jobs of a few seconds, as uploads to a platform are)")
    parser.add_argument("--model", type=Path, help="run folder to serve (default: a random efb0_ns run)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--backend", choices=["auto", "torch", "onnx", "openvino"], default="auto",
                        help="what runs the classifier in the workers (default auto, the service's default)")
    parser.add_argument("--mode", choices=["sqlite", "broker"], default="sqlite",
                        help="sqlite: the embedded pool of --workers (default); broker: Redis and facesleuth worker "
                             "processes, one then two (--workers is then unused)")
    args = parser.parse_args(argv)

    from facesleuth.runtime import machine_info

    upload = (args.image.read_bytes(), args.image.suffix)  # (content, the name suffix the clients give)
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        tmp = Path(tmp)
        if args.model is None:
            from scan_latency import make_random_run

            args.model = make_random_run(tmp / "efb0_ns-none")
        load_before = os.getloadavg()[0]
        if args.mode == "broker":
            rounds = broker_rounds(args, upload, tmp)
        else:
            server, url = _start_server(args, args.model, tmp / "data", tmp / "server.log")
            try:
                rounds = [measured_round(url, upload, args.uploads, _pool_pids(server),
                                         min(os.cpu_count() or 1, args.workers * args.threads), server.pid)]
            finally:
                server.terminate()
                server.wait(30)
        load_after = os.getloadavg()[0]
    result = {
        "machine": {**machine_info(), "torch_threads": args.threads},  # the workers' threads, not this process's
        "model": "efb0_ns (224 px)" if args.model.name == "efb0_ns-none" else str(args.model),
        "image": args.image.name,
        "mode": args.mode,
        "load_average": [round(load_before, 1), round(load_after, 1)],
        "rounds": rounds,
    }
    if len(rounds) == 2:
        result["speedup_2_over_1"] = round(rounds[1]["throughput_per_s"] / rounds[0]["throughput_per_s"], 2)
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, gpu {m['gpu']}, torch {m['torch']}, "
          f"{args.threads} torch thread(s) per worker; load average {load_before:.1f} -> {load_after:.1f}")
    print(f"{args.uploads} concurrent uploads of {args.image.name} per round, {result['model']}, {args.mode} mode:")
    for round_ in rounds:
        print("  " + _describe(round_))
    if "speedup_2_over_1" in result:
        print(f"  2 workers / 1 worker: {result['speedup_2_over_1']}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    failed = sum(r["failed"] for r in rounds)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
