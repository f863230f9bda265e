"""A real ``facesleuth serve`` in a subprocess on 127.0.0.1, and the trained run it serves.

The server is the installed command line (``python -m facesleuth.cli serve``) on a free port;
tests talk to it over HTTP only, and read its SQLite database to check what happened inside.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from scan_helpers import FAST_DETECTION_YAML, make_trained_run

READY_SECONDS = 180  # workers import torch and load the run: slow on a busy 2-core machine
FRAMES = "4"


def shared_run(base: Path, samples: Path) -> tuple[Path, Path]:
    """(run folder, fast detection config), trained once per test session under ``base``."""
    import torch

    run, config = base / "serve-run", base / "serve-config.yaml"
    if not (run / "threshold.json").is_file():
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            make_trained_run(samples, run)
        finally:
            torch.set_num_threads(before)
    config.write_text(FAST_DETECTION_YAML)
    return run, config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``facesleuth serve`` on 127.0.0.1; ``start()`` waits until every worker has loaded the run."""

    def __init__(self, run: Path, config: Path, data_dir: Path, *options: str, workers: int = 2):
        self.run, self.config, self.data_dir, self.options, self.workers = run, config, data_dir, options, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{data_dir.name}-server.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "facesleuth.cli", "serve", "--model", str(self.run), "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", str(self.data_dir), "--workers", str(self.workers),
            "--threads", "1", "--frames", FRAMES, "--config", str(self.config), *self.options,
        ]

    def start(self) -> Server:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).parents[1] / "src"),
                                                                         os.environ.get("PYTHONPATH", "")] if p)}
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"facesleuth serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                health = httpx.get(f"{self.url}/healthz", timeout=5).json()
                if health["workers_ready"] == self.workers:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"facesleuth serve not ready after {READY_SECONDS} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the web process, as a crash or the OOM killer would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def wait_done(self, client: httpx.Client, job_ids: list[str], timeout: float = 180) -> dict[str, dict]:
        """Poll until every job is done or failed; returns the last answer per job."""
        pending, answers = set(job_ids), {}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for job_id in sorted(pending):
                answer = client.get(f"{self.url}/api/scans/{job_id}").raise_for_status().json()
                if answer["state"] in ("done", "failed"):
                    answers[job_id] = answer
                    pending.discard(job_id)
            if pending:
                time.sleep(0.5)
        assert not pending, f"{len(pending)} job(s) still unfinished after {timeout} s:\n{self.log_tail()}"
        return answers


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
