"""A throwaway single-node SLURM cluster on localhost, for running the workflow through sbatch.

Used by ``tests/test_slurm.py``; also runnable by hand to try the SLURM profile::

    python tests/slurm/localcluster.py start /tmp/fs-cluster   # installs SLURM if missing (root)
    snakemake --workflow-profile profiles/slurm ...
    python tests/slurm/localcluster.py stop /tmp/fs-cluster

What makes it work without slurmdbd or cgroups (Debian bookworm, slurm-wlm 22.05):
``proctrack/linuxproc``, ``task/none``, no accounting storage; munged runs as user munge.
The config must sit at the default path (/etc/slurm/slurm.conf) because the executor plugin's
job step clears ``SLURM_CONF`` before calling ``srun``. The node declares more CPUs, memory and
GPUs than the machine has (``SlurmdParameters=config_overrides``, GPUs backed by stand-in device
files), so the SLURM profile's real requests are accepted as they are. ``MinJobAge`` keeps
finished jobs visible to ``squeue`` (the plugin's status command without accounting) and to
the test's checks.

Daemons are stopped by the PIDs this module started, never by name; the config files it wrote
are removed again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
GRES_CONF = Path("/etc/slurm/gres.conf")
MARKER = "# written by facesleuth tests/slurm/localcluster.py; removed when its cluster stops"
MUNGE_RUN_DIR = Path("/run/munge")
MUNGE_PID_FILE = MUNGE_RUN_DIR / "munged.pid"
NODE = "fsnode"
BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "munged", "munge")


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be set up on this machine for a reason the user cannot fix from here."""


@dataclass(frozen=True)
class NodeSpec:
    """What the node claims to have: enough for every request in profiles/slurm."""

    cpus: int = 32
    memory_mb: int = 262144
    gpus: int = 4


@dataclass(frozen=True)
class ControllerRecords:
    """Batch jobs in slurmctld's log: submitted by sbatch, started on the node, and exit statuses."""

    submitted: set[int]
    started: set[int]
    exit_status: dict[int, int]


def ensure_installed(timeout: int = 900) -> None:
    """Install ``slurm-wlm`` and ``munge`` from the distribution's packages if missing.

    Raises :class:`SlurmUnavailable` when not root or when apt-get is absent (the only cases a
    test may skip); a failing installation raises ``RuntimeError`` with apt's output.
    """
    if os.geteuid() != 0:
        raise SlurmUnavailable("a local SLURM cluster needs root (to install it, write /etc/slurm, run daemons)")
    if all(shutil.which(name) for name in BINARIES):
        return
    if not shutil.which("apt-get"):
        missing = [name for name in BINARIES if not shutil.which(name)]
        raise SlurmUnavailable(f"SLURM is not installed ({', '.join(missing)} missing) and apt-get is not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "slurm-wlm", "munge"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
    missing = [name for name in BINARIES if not shutil.which(name)]
    if missing:
        raise RuntimeError(f"installed slurm-wlm and munge, but {', '.join(missing)} are still not on PATH")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int, name: str) -> bool:
    """True if ``pid`` runs a process called ``name`` (and is not a zombie): guards against reused PIDs."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return comm == name and state != "Z"


def _read_pid(path: Path, timeout: float = 15.0) -> int:
    """The PID a daemon wrote to ``path`` (daemons write it a moment after forking)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text().strip()
            if text:
                return int(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no PID appeared in {path} within {timeout:.0f} s")


def _stop_pid(pid: int, name: str, timeout: float = 20.0) -> None:
    """SIGTERM ``pid`` if it still runs ``name``; SIGKILL after ``timeout`` seconds."""
    if not _alive(pid, name):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, name):
            return
        time.sleep(0.2)
    if _alive(pid, name):
        os.kill(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


class LocalSlurm:
    """One controller and one node on localhost, with state, logs and PID files in ``state_dir``."""

    def __init__(self, state_dir: str | Path, node: NodeSpec = NodeSpec(), min_job_age: int = 900) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.node = node
        self.min_job_age = min_job_age
        self.log_dir = self.state_dir / "log"
        self.controller_log = self.log_dir / "slurmctld.log"
        self.node_log = self.log_dir / "slurmd.log"
        self.pid_files = {
            "slurmctld": self.state_dir / "slurmctld.pid",
            "slurmd": self.state_dir / "slurmd.pid",
        }
        # daemon name -> PID, for the daemons this object started (and so must stop)
        self.started: dict[str, int] = {}
        self.wrote_config = False

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 60.0) -> LocalSlurm:
        """Write the config, start munged (unless one runs), slurmctld and slurmd; wait for an idle node."""
        try:
            self._claim_config_path()
            for sub in ("state", "spool", "log", "gpus"):
                (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
            self._write_config()
            self._start_munge()
            self._start_daemon("slurmctld", ["slurmctld"], self.controller_log)
            self._start_daemon("slurmd", ["slurmd", "-N", NODE], self.node_log)
            self._wait_idle(timeout)
        except BaseException:
            self.stop()
            raise
        self._save_state()
        return self

    def stop(self) -> None:
        """Cancel jobs still queued or running, stop what this object started (in reverse order, by
        PID) and remove the config it wrote."""
        if "slurmctld" in self.started:
            self._cancel_jobs()
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.started.pop(name, None)
            if pid is not None:
                _stop_pid(pid, name)
        if self.wrote_config:
            for path in (SLURM_CONF, GRES_CONF):
                if path.exists() and MARKER in path.read_text(errors="replace"):
                    path.unlink()
            self.wrote_config = False
        (self.state_dir / "cluster.json").unlink(missing_ok=True)

    def _cancel_jobs(self, timeout: float = 30.0) -> None:
        """Jobs outlive slurmd (their slurmstepd is a process of its own): cancel them, let them end.

        Every job on this private cluster belongs to the test, e.g. a Snakemake run killed by a timeout.
        """
        def active() -> list[str]:
            result = subprocess.run(
                ["squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED", "-o", "%i"],
                capture_output=True, text=True,
            )
            return result.stdout.split() if result.returncode == 0 else []

        jobs = active()
        if not jobs:
            return
        subprocess.run(["scancel", *jobs], capture_output=True)
        deadline = time.monotonic() + timeout
        while active() and time.monotonic() < deadline:
            time.sleep(0.5)

    def __enter__(self) -> LocalSlurm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _save_state(self) -> None:
        """Record the PIDs so ``stop`` works from another process (the command line below)."""
        state = {"started": self.started, "wrote_config": self.wrote_config}
        (self.state_dir / "cluster.json").write_text(json.dumps(state))

    @classmethod
    def attach(cls, state_dir: str | Path) -> LocalSlurm:
        """The cluster a previous ``start`` left running in ``state_dir``."""
        cluster = cls(state_dir)
        state = json.loads((cluster.state_dir / "cluster.json").read_text())
        cluster.started = {name: int(pid) for name, pid in state["started"].items()}
        cluster.wrote_config = state["wrote_config"]
        return cluster

    # ------------------------------------------------------------------ setup steps

    def _claim_config_path(self) -> None:
        """Refuse to replace a real cluster's config; clean up after an earlier run that was killed."""
        if not SLURM_CONF.exists():
            return
        text = SLURM_CONF.read_text(errors="replace")
        if MARKER not in text:
            raise SlurmUnavailable(
                f"{SLURM_CONF} exists and was not written by this test: this machine has its own SLURM "
                "setup, which the test will not overwrite"
            )
        # A test run that was killed left its daemons: stop them by the PIDs it recorded.
        for name, key in (("slurmd", "SlurmdPidFile"), ("slurmctld", "SlurmctldPidFile")):
            match = re.search(rf"^{key}=(\S+)", text, re.MULTILINE)
            if match:
                try:
                    _stop_pid(int(Path(match.group(1)).read_text().strip()), name)
                except (OSError, ValueError):
                    pass

    def _write_config(self) -> None:
        host = socket.gethostname().split(".")[0]
        gpu_files = []
        for index in range(self.node.gpus):
            path = self.state_dir / "gpus" / f"gpu{index}"
            if not path.exists():
                try:  # a character device, as slurmd expects; same numbers as /dev/null
                    os.mknod(path, 0o666 | 0o020000, os.makedev(1, 3))
                except OSError:  # no CAP_MKNOD: slurmd logs a complaint but still counts the file
                    path.touch()
            gpu_files.append(str(path))
        state = self.state_dir
        config = f"""{MARKER}
ClusterName=facesleuthtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={state}/state
SlurmdSpoolDir={state}/spool
SlurmctldPidFile={self.pid_files['slurmctld']}
SlurmdPidFile={self.pid_files['slurmd']}
SlurmctldLogFile={self.controller_log}
SlurmdLogFile={self.node_log}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
MinJobAge={self.min_job_age}
SchedulerType=sched/backfill
NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={self.node.cpus} RealMemory={self.node.memory_mb} Gres=gpu:{self.node.gpus} State=UNKNOWN
PartitionName=main Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""
        gres = f"{MARKER}\nNodeName={NODE} Name=gpu File={','.join(gpu_files)}\n"
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        self.wrote_config = True
        SLURM_CONF.write_text(config)
        GRES_CONF.write_text(gres)

    def _start_munge(self) -> None:
        """Use a running munged; otherwise start one as user munge (as the package's service would)."""
        if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
            return
        if not Path("/etc/munge/munge.key").exists():
            raise RuntimeError("/etc/munge/munge.key is missing; reinstall munge (apt-get install --reinstall munge)")
        MUNGE_RUN_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_RUN_DIR, "munge", "munge")
        MUNGE_RUN_DIR.chmod(0o755)
        MUNGE_PID_FILE.unlink(missing_ok=True)
        result = subprocess.run(["runuser", "-u", "munge", "--", "munged"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"munged failed to start ({result.returncode}): {result.stderr.strip()}")
        self.started["munged"] = _read_pid(MUNGE_PID_FILE)
        deadline = time.monotonic() + 15
        while subprocess.run(["munge", "-n"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("munged started but `munge -n` still fails after 15 s")
            time.sleep(0.2)

    def _start_daemon(self, name: str, command: list[str], log: Path) -> None:
        """Run a daemon that forks itself into the background and writes its PID file."""
        self.pid_files[name].unlink(missing_ok=True)
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}\n{_tail(log)}"
            )
        pid = _read_pid(self.pid_files[name])
        self.started[name] = pid
        time.sleep(0.2)
        if not _alive(pid, name):
            raise RuntimeError(f"{name} exited right after starting:\n{_tail(log)}")

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            result = subprocess.run(["sinfo", "-h", "-n", NODE, "-o", "%T"], capture_output=True, text=True)
            state = result.stdout.strip()
            if result.returncode == 0 and state == "idle":
                return
            time.sleep(0.5)
        reasons = subprocess.run(["sinfo", "-R"], capture_output=True, text=True).stdout
        raise RuntimeError(
            f"node {NODE} is {state or 'unknown'!r}, not idle, after {timeout:.0f} s\n{reasons}\n"
            f"slurmctld:\n{_tail(self.controller_log)}\nslurmd:\n{_tail(self.node_log)}"
        )

    # ------------------------------------------------------------------ job records

    def jobs(self, name: str | None = None) -> list[dict[str, str]]:
        """Jobs the controller still knows (finished ones for ``MinJobAge`` s), as ``scontrol`` fields."""
        result = subprocess.run(["scontrol", "-o", "show", "job"], capture_output=True, text=True, check=True)
        records = []
        for line in result.stdout.splitlines():
            if not line.startswith("JobId="):
                continue
            record = dict(re.findall(r"(\w[\w:/]*)=(\S*)", line))
            if name is None or record.get("JobName") == name:
                records.append(record)
        return records

    def controller_log_records(self) -> ControllerRecords:
        """What slurmctld's log says about the batch jobs it received."""
        text = self.controller_log.read_text(errors="replace")
        started = r"(?:sched: Allocate|sched/backfill: _start_job: Started) JobId=(\d+)"
        return ControllerRecords(
            submitted={int(i) for i in re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", text)},
            started={int(i) for i in re.findall(started, text)},
            exit_status={int(i): int(s) for i, s in re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS (\d+)", text)},
        )


def main(argv: list[str]) -> int:
    usage = "usage: localcluster.py start|stop STATE_DIR"
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(usage, file=sys.stderr)
        return 2
    action, state_dir = argv
    if action == "start":
        ensure_installed()
        cluster = LocalSlurm(state_dir).start()
        print(f"cluster up: {cluster.started}; stop with: {sys.argv[0]} stop {state_dir}")
    else:
        LocalSlurm.attach(state_dir).stop()
        print("cluster stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
