"""A real ``redis-server``, ``facesleuth serve --broker`` and ``facesleuth worker`` processes on 127.0.0.1.

Redis is Debian's ``redis-server`` (installed with apt-get when missing and running as root, as
the browser test installs chromium), on a free port, with its append-only file in the test's
folder so a restart keeps the queue and the results.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_helpers import FRAMES, READY_SECONDS, Server, free_port

HEARTBEAT_SECONDS = "1"  # a killed worker is found lost within 3 s
VISIBILITY_SECONDS = "20"


def redis_server_binary() -> str:
    """Debian's redis-server, installed with apt-get when missing and running as root; else skip."""
    if shutil.which("redis-server"):
        return shutil.which("redis-server")
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("the broker tests need redis-server: install it (apt-get install redis-server)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "redis-server"]):
        result = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    path = shutil.which("redis-server")
    assert path, "installed redis-server, but it is not on PATH"
    return path


def _env() -> dict[str, str]:
    src = str(Path(__file__).parents[1] / "src")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [src, os.environ.get("PYTHONPATH", "")] if p)}


class Redis:
    """``redis-server`` on 127.0.0.1 with persistence in ``folder``; stop and start keep the data."""

    def __init__(self, folder: Path):
        self.folder, self.binary = folder, redis_server_binary()
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> Redis:
        import redis

        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                   "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"]
        with open(self.folder / "redis.log", "a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_connect_timeout=1).ping():
                    return self
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start:\n{(self.folder / 'redis.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # redis-server saves and exits on SIGTERM
            self.process.wait(20)


class BrokerServer(Server):
    """``facesleuth serve --broker URL``: ready when ``workers`` workers have loaded the run."""

    def __init__(self, run: Path, config: Path, data_dir: Path, broker: str, *options: str, workers: int = 2):
        super().__init__(run, config, data_dir, "--broker", broker, *options, workers=workers)

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "facesleuth.cli", "serve", "--model", str(self.run), "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", str(self.data_dir), "--frames", FRAMES,
            "--config", str(self.config), *self.options,
        ]


class Worker:
    """``facesleuth worker`` in its own working folder, reading the API's data dir."""

    def __init__(self, run: Path, config: Path, data_dir: Path, broker: str, folder: Path, name: str, *options: str):
        self.name, self.folder = name, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "worker.log"
        self.command = [sys.executable, "-m", "facesleuth.cli", "worker", "--broker", broker, "--model", str(run),
                        "--data-dir", str(data_dir), "--threads", "1", "--frames", FRAMES, "--config", str(config),
                        "--name", name, "--heartbeat-seconds", HEARTBEAT_SECONDS,
                        "--visibility-timeout", VISIBILITY_SECONDS, "--log-format", "json", *options]
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(self.command, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
                                            env=_env())
        return self

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def wait_ready(url: str, workers: int, timeout: float = READY_SECONDS) -> None:
    """Until ``workers`` workers report their model loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).json()["workers_ready"] >= workers:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"fewer than {workers} workers ready after {timeout} s")
