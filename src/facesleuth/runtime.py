"""Small runtime helpers shared by every stage: devices, logging, chunking."""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import sys
import time
import zlib
from pathlib import Path

log = logging.getLogger("facesleuth")


DEVICE_ENV = "FACESLEUTH_DEVICE"


def resolve_device(name: str = "auto") -> str:
    """``auto`` -> ``$FACESLEUTH_DEVICE`` if set, else ``cuda`` when a GPU is visible, else ``cpu``;
    other names pass through, checked.

    The environment variable lets a run pick a device without touching config (a device is a
    runtime choice: changing it must not make Snakemake rerun anything).
    """
    import torch  # seconds to import: every module (and the CLI) imports this one, most without torch

    if name == "auto":
        name = os.environ.get(DEVICE_ENV, "").strip() or ("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but no CUDA GPU is visible; use device: auto or cpu")
    return name


def importable(module: str) -> bool:
    """Whether ``module`` (an optional dependency) imports here."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


CACHE_ENV = "FACESLEUTH_CACHE"


def user_cache() -> Path:
    """Where facesleuth keeps what it derives once per model (exported networks):
    ``$FACESLEUTH_CACHE``, else the platform's user cache folder for facesleuth."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    import pooch  # a dependency already (facesleuth samples fetch); platformdirs underneath

    return Path(pooch.os_cache("facesleuth"))


def openvino_cpu_config(threads: int) -> dict:
    """OpenVINO's CPU settings for facesleuth's networks: float32, as torch computes (on CPUs
    with AMX or AVX512-BF16 OpenVINO would otherwise pick bfloat16, about 1e-2 off torch), one
    stream of ``threads`` threads for the lowest latency, threads left unpinned, so that
    workers sized to the cores share them as the operating system schedules, and the compiled
    networks kept in the user cache's ``openvino/`` (where it can be written), which makes later
    starts compile them several times faster (benchmarks/README.md, scan latency)."""
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
              "INFERENCE_NUM_THREADS": int(threads), "ENABLE_CPU_PINNING": False}
    compiled = user_cache() / "openvino"
    try:
        compiled.mkdir(parents=True, exist_ok=True)
    except OSError:  # no cache: each start compiles anew
        return config
    if os.access(compiled, os.W_OK):
        config["CACHE_DIR"] = str(compiled)
    return config


class OpenVinoNetwork:
    """A network file (ONNX) compiled by OpenVINO for the CPU with :func:`openvino_cpu_config`:
    called with a float32 array, from any thread, it returns copies of its outputs in order.

    ``input_layout`` "NHWC" takes the input in channels-last memory for a network that computes
    in NCHW (OpenVINO fuses the transpose); None takes the network's own layout.

    Get one with :meth:`shared`, which keeps each compiled network for the life of the process:
    a process that had freed compiled networks (OpenVINO 2026.4) crashed with a segmentation
    fault in its next DataLoader with worker processes (tests/test_mtcnn_openvino.py).
    """

    @classmethod
    def shared(cls, path: str | Path, threads: int, input_layout: str | None = None) -> OpenVinoNetwork:
        """The process's one network compiled from ``path`` for ``threads`` and ``input_layout``."""
        return _shared_network(cls, str(Path(path).resolve()), int(threads), input_layout)

    def __init__(self, path: str | Path, threads: int, input_layout: str | None = None):
        import threading

        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        if input_layout is not None:
            steps = ov.preprocess.PrePostProcessor(model)
            steps.input().tensor().set_layout(ov.Layout(input_layout))
            steps.input().model().set_layout(ov.Layout("NCHW"))
            model = steps.build()
        self.path = Path(path)
        self.compiled = core.compile_model(model, "CPU", openvino_cpu_config(threads))
        self._requests = threading.local()  # an infer request serves one call at a time

    def __call__(self, inputs) -> list:
        import numpy as np

        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        results = request.infer([np.ascontiguousarray(inputs, dtype=np.float32)])
        # the request's output buffers are reused by its next call: copied out
        return [np.array(results[output], copy=True) for output in self.compiled.outputs]


@functools.lru_cache(maxsize=None)
def _shared_network(cls: type, path: str, threads: int, input_layout: str | None) -> OpenVinoNetwork:
    return cls(path, threads, input_layout)


def claimed_gpus(device: str, gpus: int = 1) -> int:
    """GPUs a workflow job on ``device`` claims: none for ``cpu``, else ``gpus`` (``auto`` takes a GPU where there is one)."""
    return 0 if str(device).strip() == "cpu" else int(gpus)


def job_device(claimed: int) -> str:
    """The device of a workflow job that claimed ``claimed`` GPUs: the CPU when none, else ``auto``."""
    return "auto" if int(claimed or 0) > 0 else "cpu"


def available_cpus() -> int:
    """CPUs this process may run on: a SLURM job's or a taskset's share of the node, not all of its cores."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def chunk_of(key: str, chunks: int) -> int:
    """Stable chunk index of ``key`` (same on every machine and Python run, unlike ``hash``)."""
    return zlib.crc32(key.encode("utf-8")) % chunks


def chunk_names(chunks: int) -> list[str]:
    return [f"{i:03d}" for i in range(chunks)]


LOG_FORMATS = ("text", "json")
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's ``extra`` fields
    (``log.info("...", extra={"job": id})``), for log collectors that index fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        line.update({key: value for key, value in vars(record).items() if key not in _RECORD_FIELDS})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


JsonFormatter.converter = time.gmtime  # the Z above: UTC


def setup_logging(log_path: str | Path | None = None, level: int = logging.INFO, fmt: str = "text") -> logging.Logger:
    """Send the package's logging (and warnings) to ``log_path`` and stderr; ``fmt`` is ``text``
    or ``json`` (one JSON object per line, see :class:`JsonFormatter`).

    Snakemake scripts call this first thing with ``snakemake.log[0]``.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    if fmt == "json":
        for handler in handlers:
            handler.setFormatter(JsonFormatter())
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    return log


def machine_info() -> dict:
    """What benchmark figures are recorded with: CPU model and cores, GPU, torch and its threads."""
    import torch  # seconds to import: every module (and the CLI) imports this one, most without torch

    cpu = platform.processor() or platform.machine() or "unknown"
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
