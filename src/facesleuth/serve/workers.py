"""The worker pool: processes that each load the run once and scan the jobs they claim.

Processes, not threads: MTCNN is thousands of small Python-driven operations, so threads
would queue on the GIL; a process per worker scans in parallel and a crash (a decoder
segfault) costs one worker, which the pool restarts, not the service. They are started with
``spawn`` (no forked copy of the web server's threads and sockets) and each pins torch to
``threads`` threads: on a small machine two workers with one thread each scan faster than
two workers whose OpenMP threads fight over the same cores (benchmarks/README.md, scan latency).

Each input has a wall-clock limit (``input_seconds`` of the scanner's limits). The scanner keeps
to it by itself between frames; a worker stuck past it anyway (inside a decoder or a network)
is killed and replaced by the pool, which marks the input timed out beside its upload and puts
the job back in the queue without using an attempt: the next worker answers that input with
``timed_out`` and scans the others.

Workers take jobs from the database (:meth:`JobStore.claim`), not from a pipe, so nothing is
lost with a process: a wake-up queue only saves them the polling delay. A worker dies with
the web process (Linux ``PR_SET_PDEATHSIG``, and a parent check as a fallback), so a server
killed with SIGKILL leaves no worker behind that could finish a job the restarted server
scans again.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facesleuth.serve.store import JobStore

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # a worker looks at the queue at least this often, woken or not
RESPAWN_SECONDS = 10.0  # at most one restart of a worker slot in this time
# A worker is killed this long after its input's limit: the scanner's own check comes first.
KILL_GRACE_SECONDS = 2.0
TIMED_OUT_SUFFIX = ".timed_out"  # beside an upload: the input ran past its time in a replaced worker
_NAME_BYTES = 80  # "<job id>/<stored name>", both 32 hex digits
_PR_SET_PDEATHSIG = 1


@dataclass
class WorkerSettings:
    """What every worker needs to load the run and scan (picklable: sent to spawned processes)."""

    database: str
    uploads: str
    model: str
    # ScanOptions' frames, frame_policy and max_frame_offset as given (the rest: its defaults)
    sampling: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    backend: str = "auto"  # the classifier's (facesleuth.evaluate.inference.BACKENDS)
    detection: dict[str, Any] = field(default_factory=dict)
    threads: int = 1
    thumbnails: int = 12  # face thumbnails per input kept for the page and the report
    log_format: str = "text"  # or json: one JSON object per line (facesleuth.runtime.JsonFormatter)
    limits: dict[str, Any] = field(default_factory=dict)  # ScanOptions' max_pixels, ..., input_seconds

    @property
    def input_seconds(self) -> float | None:
        from facesleuth.scan.scanner import ScanOptions

        return self.limits.get("input_seconds", ScanOptions.input_seconds)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the web process dies; exit now if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent check in the loop still applies
        pass
    if os.getppid() != parent:
        os._exit(0)


def timed_out_marker(upload: Path) -> Path:
    return upload.with_name(upload.name + TIMED_OUT_SUFFIX)


def mark_timed_out(upload: Path, limit: float) -> bool:
    """Leave the marker beside ``upload`` that makes :func:`scan_inputs` answer it ``timed_out``
    (written atomically: on a shared mount another machine may read it at once); False when the
    job's folder is gone (its result was stored meanwhile)."""
    from facesleuth.io import write_text_atomic

    if not upload.parent.is_dir():
        return False
    write_text_atomic(f"{limit:g}\n", timed_out_marker(upload))
    return True


def scan_job(scanner: Any, job: Any, uploads: Path, on_input: Any = None) -> dict[str, Any]:
    """The ``--format json`` document of a job, with thumbnails; inputs named by the client's names."""
    from facesleuth.scan.formats import build_document, now_iso

    created, started = now_iso(), time.perf_counter()
    results = scan_inputs(scanner, job, uploads, on_input)
    return build_document(results, scanner.run, scanner.options, [], time.perf_counter() - started, created,
                          thumbnails=True)


def scan_inputs(scanner: Any, job: Any, uploads: Path, on_input: Any = None) -> list[Any]:
    """One ScanResult per input of ``job``, in order.

    ``on_input(upload or None)`` is told which input is being scanned (None once all are); an
    input a replaced worker ran out of time on answers ``timed_out`` without being scanned again.
    """
    from facesleuth.registry import TIMED_OUT

    results = []
    for upload in job.inputs:
        path = uploads / job.id / upload.stored
        marker = timed_out_marker(path)
        if marker.is_file():
            limit = marker.read_text().strip()
            result = scanner.limit_result(path, TIMED_OUT, f"scanning took longer than the limit of {limit} s per "
                                                           "input (--input-seconds); its worker was replaced")
        else:
            if on_input is not None:
                on_input(upload)
            result = scanner.scan_file(path)
        result.path = upload.name  # the stored name means nothing to the client
        results.append(result)
    if on_input is not None:
        on_input(None)
    return results


def scan_options(settings: Any) -> Any:
    """The ScanOptions a worker scans with, embedded or broker (:class:`WorkerSettings` or
    ``BrokerWorkerSettings``).

    A worker keeps to the cores it is given: on the CPU with one thread it decodes and classifies
    in its scanning thread, not ahead in a second one, which made one worker take more than its core
    and crowd the next on a machine sized at a core per worker (benchmarks/README.md, serve_load)."""
    from facesleuth.runtime import resolve_device
    from facesleuth.scan import ScanOptions

    one_core = settings.threads == 1 and resolve_device(settings.device) == "cpu"
    return ScanOptions(**settings.sampling, device=settings.device, backend=settings.backend,
                       detection=settings.detection, thumbnails=settings.thumbnails, decode_ahead=not one_core,
                       classify_ahead=not one_core, **settings.limits)


def load_scanner(settings: Any) -> Any:
    """The scanner of one worker process, embedded or broker: the run loaded once with
    :func:`scan_options`, torch and the video decoder pinned to ``settings.threads``."""
    import torch

    from facesleuth.extract.detect import set_cpu_threads
    from facesleuth.scan import Scanner

    set_cpu_threads(settings.threads)
    torch.set_num_interop_threads(1)
    return Scanner(settings.model, scan_options(settings))


def worker_main(settings: WorkerSettings, parent: int, wake: Any, ready: Any, slot: int, busy_since: Any = None,
                busy_input: Any = None) -> None:
    """Entry point of a worker process: load once, then claim and scan until the parent goes.

    ``busy_since[slot]`` / ``busy_input``: when this worker started its current input and which
    (``job/stored``), for the pool's wall-clock watch."""
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    from facesleuth.extract.video import quiet_decoder_logs

    quiet_decoder_logs()
    if settings.log_format == "json":
        from facesleuth.runtime import setup_logging

        setup_logging(fmt="json")
    else:
        logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker {os.getpid()} %(levelname)s %(message)s")
    scanner = load_scanner(settings)
    store, uploads, me = JobStore(settings.database), Path(settings.uploads), os.getpid()
    ready[slot] = 1
    while os.getppid() == parent:
        job = store.claim(me)
        if job is None:
            try:
                wake.get(timeout=POLL_SECONDS)
            except queue.Empty:
                pass
            continue
        log.info("job %s: %d input(s), attempt %d", job.id, len(job.inputs), job.attempts)

        def on_input(upload: Any, job_id: str = job.id) -> None:
            if busy_since is None:
                return
            if upload is not None:
                busy_input.value = f"{job_id}/{upload.stored}".encode()[:_NAME_BYTES]
            busy_since[slot] = time.time() if upload is not None else 0.0

        try:
            document, error = scan_job(scanner, job, uploads, on_input), None
        except Exception as err:  # the job fails with the reason, the worker goes on
            log.exception("job %s failed", job.id)
            document, error = None, f"{type(err).__name__}: {err}"
        if store.finish(job.id, me, document, error):
            remove_uploads(uploads / job.id)
            log.info("job %s %s", job.id, "done" if error is None else "failed",
                     extra={"event": "job", "job": job.id, "state": "done" if error is None else "failed",
                            "attempt": job.attempts, "inputs": len(job.inputs)})
        else:
            log.warning("job %s was taken from this worker meanwhile; result dropped", job.id)


def remove_uploads(folder: Path) -> None:
    """Delete a job's uploaded files once its result is stored (the result keeps all that is shown)."""
    if folder.is_dir():
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()


class WorkerPool:
    """``size`` worker processes, restarted when one dies (its job is queued again, or failed)."""

    def __init__(self, settings: WorkerSettings, size: int):
        self.settings, self.size = settings, size
        self.context = mp.get_context("spawn")
        self.wake = self.context.Queue()
        self.ready = self.context.Array("b", size)  # 1 for each worker slot whose model is loaded
        self.busy_since = self.context.Array("d", size)  # time.time() its current input began; 0 idle
        self.busy_input = [self.context.Array("c", _NAME_BYTES) for _ in range(size)]
        self.processes: list[mp.process.BaseProcess | None] = []
        self.store = JobStore(settings.database)
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    def _spawn(self, slot: int) -> mp.process.BaseProcess:
        process = self.context.Process(target=worker_main, name="facesleuth-worker", daemon=True,
                                       args=(self.settings, os.getpid(), self.wake, self.ready, slot,
                                             self.busy_since, self.busy_input[slot]))
        process.start()
        return process

    def start(self) -> None:
        # The monitor thread starts every worker: PR_SET_PDEATHSIG fires when the *thread* that
        # started a child ends, and this one lives as long as the pool.
        self._monitor = threading.Thread(target=self._watch, name="facesleuth-pool", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        self.processes = [self._spawn(slot) for slot in range(self.size)]
        spawned = [time.monotonic()] * self.size
        while not self._stop.wait(POLL_SECONDS):
            self.replace_overdue()
            for slot, process in enumerate(self.processes):
                if self._stop.is_set():
                    break
                if process is not None and process.is_alive():
                    continue
                if process is not None:
                    log.error("worker %s exited (code %s); starting another", process.pid, process.exitcode)
                    self.ready[slot] = 0
                    self.store.recover(workers={process.pid})
                    self.processes[slot] = None
                # A worker that cannot even load the run would otherwise restart in a tight loop.
                if time.monotonic() - spawned[slot] >= RESPAWN_SECONDS:
                    self.processes[slot], spawned[slot] = self._spawn(slot), time.monotonic()

    def replace_overdue(self, now: float | None = None) -> list[int]:
        """Kill the workers whose current input ran past its wall-clock limit (the monitor then
        starts others); mark the input timed out and queue its job again, the attempt given back.
        Returns the slots killed."""
        limit = self.settings.input_seconds
        if limit is None:
            return []
        now = time.time() if now is None else now
        killed = []
        for slot, process in enumerate(self.processes):
            since = self.busy_since[slot]
            if process is None or since <= 0 or now - since <= limit + KILL_GRACE_SECONDS or not process.is_alive():
                continue
            name = self.busy_input[slot].value.decode(errors="replace")
            process.kill()
            process.join(10)
            self.busy_since[slot] = 0.0
            job_id, _, stored = name.partition("/")
            if job_id and stored:
                mark_timed_out(Path(self.settings.uploads) / job_id / stored, limit)
            self.store.recover(workers={process.pid}, counted=False)
            log.error("worker %s ran past the limit of %g s per input on job %s; replaced, the input answers "
                      "timed_out", process.pid, limit, job_id)
            killed.append(slot)
        return killed

    def notify(self) -> None:
        """Wake an idle worker (a job was queued)."""
        self.wake.put(None)

    @property
    def ready_count(self) -> int:
        return sum(self.ready[:])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers; the jobs they were scanning go back to the queue without using an attempt."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout)
        running = [p for p in self.processes if p is not None]
        pids = {p.pid for p in running if p.pid is not None}
        for process in running:
            process.terminate()
        for process in running:
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(timeout)
        self.store.recover(workers=pids, counted=False)
        self.wake.close()
