"""The face classifier's backends: torch (the reference), ONNX Runtime and OpenVINO.

On a CPU, ONNX Runtime and OpenVINO run the same network faster than torch eager, OpenVINO
fastest (benchmarks/README.md, scan latency), so ``auto``, the default of ``facesleuth scan``
and ``serve``, takes OpenVINO there when ``openvino`` is installed (the ``openvino`` extra), else
ONNX Runtime when ``onnxruntime`` is (the ``onnx`` extra), and torch otherwise (or on a GPU). The
workflow's predictions take ``evaluation.backend`` (torch unless the config says otherwise:
the study's numbers come from the reference), through :func:`load_predictor`.

Both run one file: the ONNX model exported from the run's torch model with ``torch.onnx.export``
(the TorchScript exporter: it handles every backbone of the registry and the published
detectors without onnxscript) with a dynamic batch axis, once, and cached under a name made of
the run's checkpoint's sha256 (with its run.yaml for an imported detector, whose run.yaml chooses
the network's output mapping), so a retrained or replaced checkpoint is exported again and a
stale file is never used. The cache is ``<run folder>/onnx/`` where that folder can be written
and is not inside the installed package (the built-in runs), else the user cache
(``$FACESLEUTH_CACHE/onnx``, by default the platform's user cache folder for facesleuth).
With an exported model cached, a run loads without building its torch model (no timm import).
OpenVINO computes in float32 (:func:`facesleuth.runtime.openvino_cpu_config`). MTCNN stays on
torch with ONNX Runtime, which ran its three networks no faster; with OpenVINO it runs there too
(:mod:`facesleuth.extract.mtcnn_openvino`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from facesleuth.io import atomic_path
from facesleuth.registry import INFERENCE_BACKENDS
from facesleuth.runtime import CACHE_ENV, OpenVinoNetwork, importable, user_cache
from facesleuth.train.checkpoint import load_checkpoint
from facesleuth.train.models import build_model

log = logging.getLogger(__name__)

BACKENDS = INFERENCE_BACKENDS
AUTO, TORCH, ONNX, OPENVINO = BACKENDS
# What each exported-model backend imports and the extra that installs it; auto's order of
# preference on the CPU.
RUNTIMES = {OPENVINO: ("openvino", "openvino"), ONNX: ("onnxruntime", "onnx")}
ONNX_FOLDER = "onnx"  # beside the run's files, and in the user cache
# Part of every cached file's key: raise it when the export changes, so older files are not used.
EXPORT_VERSION = 1
DIGEST_CHARS = 16  # of the sha256's hex digits in a cached file's name
OPSET = 17
INPUT_NAME, OUTPUT_NAME = "faces", "logits"


class BackendError(ValueError):
    """The asked backend cannot run here; the message says what to do."""


def runtime_available(backend: str) -> bool:
    """Whether the package that runs ``backend`` (onnx or openvino) can be imported."""
    return importable(RUNTIMES[backend][0])


def resolve_backend(backend: str, device: str, setting: str = "--backend") -> str:
    """The backend that runs on ``device`` (already resolved): ``auto`` is, on the CPU, the first
    of openvino and onnx whose package is installed, torch otherwise. BackendError for onnx or
    openvino where it cannot run, its message naming ``setting`` (the flag, or the config key of
    the workflow's predictions)."""
    command_line = setting.startswith("--")
    if backend not in BACKENDS:
        raise BackendError(f"{setting} must be one of {', '.join(BACKENDS)}, got {backend!r}")
    on_cpu = str(device) == "cpu"
    if backend == AUTO:
        return next((b for b in RUNTIMES if runtime_available(b)), TORCH) if on_cpu else TORCH
    if backend in RUNTIMES and not on_cpu:
        fix = ("add --device cpu or use --backend torch" if command_line
               else f"set {setting} to auto (torch where there is a GPU) or torch")
        raise BackendError(f"{setting} {backend} runs on the CPU only, the device is {device}: {fix}")
    if backend in RUNTIMES and not runtime_available(backend):
        package, extra = RUNTIMES[backend]
        raise BackendError(f"{setting} {backend} needs {package}: pip install 'facesleuth[{extra}]' "
                           f"(or use {'--backend' if command_line else setting} torch)")
    return backend


# ---------------------------------------------------------------------------- torch models of runs


def load_run(
    run_dir_or_checkpoint: str | os.PathLike, device: "str | torch.device" = "cpu"
) -> tuple["torch.nn.Module", dict[str, Any]]:
    """Rebuild a run's model from its ``best.pt`` (a run folder or the file), in eval mode on ``device``.

    The architecture comes from the settings embedded in the checkpoint (the same as run.yaml),
    built without pretrained weights, then the trained weights are loaded strictly. The run folder
    of an imported published detector (run.yaml ``kind: published``) gives its network instead,
    answering with the same two logits (real, fake) (:mod:`facesleuth.published.runfolder`).
    """
    path = Path(run_dir_or_checkpoint)
    if is_published_checkpoint(path):
        from facesleuth.published.runfolder import load_published_run

        return load_published_run(path if path.is_dir() else path.parent, device)
    checkpoint, info = _read_trained_run(path)
    name = info.get("timm_name") or info["model"]
    model = build_model(name, pretrained=False, weights=None, dropout=float(info["dropout"]))
    model.load_state_dict(checkpoint["model_state"])
    device = torch.device(device)
    # channels_last: faster convolutions on GPU and on CPU (oneDNN) alike, as in training.
    model = model.to(device=device, memory_format=torch.channels_last).eval()
    return model, info


def is_published_checkpoint(path: Path) -> bool:
    """Whether ``path`` (a run folder or its weights file) is an imported published detector's."""
    from facesleuth.published.runfolder import is_published_run

    return is_published_run(path) or (path.is_file() and path.suffix != ".pt" and is_published_run(path.parent))


def _read_trained_run(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(checkpoint, settings) of a trained run's best.pt (a run folder or the file)."""
    checkpoint_path = path / "best.pt" if path.is_dir() else path
    if not checkpoint_path.exists():
        raise FileNotFoundError(f"no trained model at {checkpoint_path} (train the run first, or name its best.pt)")
    checkpoint = load_checkpoint(checkpoint_path)
    info = dict(checkpoint.get("run") or {})
    if not info and (checkpoint_path.parent / "run.yaml").exists():
        info = yaml.safe_load((checkpoint_path.parent / "run.yaml").read_text())
    for key in ("input_size", "dropout"):
        if key not in info:
            raise ValueError(f"{checkpoint_path} does not say its {key}: not a facesleuth checkpoint?")
    info["checkpoint"] = str(checkpoint_path)
    info["best_epoch"] = checkpoint.get("epoch")
    return checkpoint, info


def read_run_info(run_dir_or_checkpoint: str | os.PathLike) -> dict[str, Any]:
    """The settings :func:`load_run` returns beside the model, without building the model
    (no timm import: seconds of a scanner's cold start when an exported model stands in)."""
    path = Path(run_dir_or_checkpoint)
    if is_published_checkpoint(path):
        from facesleuth.published.runfolder import published_run_info

        return published_run_info(path if path.is_dir() else path.parent)
    return _read_trained_run(path)[1]


# ---------------------------------------------------------------------------- ONNX Runtime


class OnnxClassifier:
    """An exported classifier in an ONNX Runtime session, called like the torch model: a batch
    of prepared faces (torch tensor) in, the two logits (real, fake) per face out."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        # as many threads as torch was given, so the backends compare on the same cores
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 4  # its failures come back as exceptions; no second copy on stderr
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(inputs.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run([OUTPUT_NAME], {INPUT_NAME: array})[0])


class OpenVinoClassifier:
    """An exported classifier compiled by OpenVINO for the CPU, called like the torch model: a
    batch of prepared faces (torch tensor) in, the two logits (real, fake) per face out."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        # as many threads as torch was given, as OnnxClassifier
        self.network = OpenVinoNetwork.shared(self.path, int(threads or torch.get_num_threads()))

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.network(inputs.detach().cpu().numpy())[0])


def run_digest(checkpoint: Path, published: bool) -> str:
    """The cache key of a run's exported model: sha256 of its checkpoint (and run.yaml for an
    imported detector) and of the export version."""
    digest = hashlib.sha256(f"facesleuth-onnx-{EXPORT_VERSION}\n".encode())
    files = [checkpoint] + ([checkpoint.parent / "run.yaml"] if published else [])
    for path in files:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
    return digest.hexdigest()[:DIGEST_CHARS]


def cache_folders(folder: Path) -> list[Path]:
    """Where a run's exported model may be cached, first choice first."""
    import facesleuth

    package = Path(facesleuth.__file__).resolve().parent
    inside_package = folder.resolve().is_relative_to(package)
    return ([] if inside_package else [folder / ONNX_FOLDER]) + [user_cache() / ONNX_FOLDER]


def cached_model(folder: Path, digest: str) -> Path | None:
    """The exported model cached for ``digest``, or None."""
    for cache in cache_folders(folder):
        path = cache / f"{digest}.onnx"
        if path.is_file():
            return path
    return None


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Export ``model`` (eval mode, CPU) to ``path`` atomically, the batch axis dynamic."""
    import warnings

    model = model.cpu().eval()
    backbone = getattr(model, "backbone", None)
    if getattr(backbone, "dynamic_img_size", False) and hasattr(backbone, "set_input_size"):
        # A ViT with dynamic_img_size resizes its position embeddings on every call with an
        # operator ONNX lacks (antialiased bicubic); at the run's one input size that is
        # done once here, with the same operator, and the exported model takes that size only.
        backbone.set_input_size(img_size=tuple(example.shape[-2:]))
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's tracer warnings say nothing about this export
        torch.onnx.export(model, (example.contiguous(),), str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    return path


def _example_input(info: dict[str, Any]) -> torch.Tensor:
    """Two faces prepared as the scanner prepares them (the shape and scale the session will get)."""
    from facesleuth.train.preprocess import prepare_faces

    crops = [np.full((64, 48, 3), value, dtype=np.uint8) for value in (96, 160)]
    return prepare_faces(crops, info, "cpu")


def _export_for_run(folder: Path, checkpoint: Path, digest: str) -> tuple[Path, dict[str, Any]]:
    model, info = load_run(checkpoint, "cpu")
    example = _example_input(info)
    problems = []
    for cache in cache_folders(folder):
        path = cache / f"{digest}.onnx"
        try:
            export_onnx(model, example, path)
        except OSError as err:  # a read-only run folder: the next place
            problems.append(f"{cache}: {err.strerror or err}")
            continue
        for stale in cache.glob("*.onnx"):  # earlier checkpoints' exports of this run folder
            if stale != path and cache.parent == folder:
                stale.unlink(missing_ok=True)
        log.info("%s: exported the classifier to ONNX at %s", folder, path)
        return path, info
    raise OSError(f"cannot write the exported model anywhere ({'; '.join(problems)}); set {CACHE_ENV} to a "
                  "writable folder or use --backend torch")


def load_classifier(folder: Path, checkpoint: Path, device: str, backend: str) -> tuple[Any, dict[str, Any]]:
    """(model, settings) of a run for ``backend`` (torch, onnx or openvino, resolved): the torch
    model in eval mode on ``device``, or an :class:`OnnxClassifier` or :class:`OpenVinoClassifier`
    of the cached (or newly exported) model."""
    if backend == TORCH:
        model, info = load_run(checkpoint, device)
        # channels_last on CPU too (load_run does it on GPU): the same scores for less CPU
        # (benchmarks/README.md, scan latency).
        return model.to(memory_format=torch.channels_last), info
    digest = run_digest(checkpoint, is_published_checkpoint(checkpoint))
    path = cached_model(folder, digest)
    if path is not None:
        info = read_run_info(checkpoint)
    else:
        path, info = _export_for_run(folder, checkpoint, digest)
    return (OpenVinoClassifier(path) if backend == OPENVINO else OnnxClassifier(path)), info


def run_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """(run folder, the file its exported model is keyed by) of a run folder, its best.pt, or an
    imported detector's folder, run.yaml or weights file (the weights run.yaml names)."""
    from facesleuth.published.runfolder import read_run_yaml

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if is_published_checkpoint(path):
        return folder, folder / str(read_run_yaml(folder).get("weights") or "run.yaml")
    return folder, path / "best.pt" if path.is_dir() else path


def load_predictor(path: str | os.PathLike, device: str, backend: str = TORCH,
                   setting: str = "evaluation.backend") -> tuple[Any, dict[str, Any]]:
    """(model, settings) of a run (as :func:`load_run` takes it) for ``backend``: auto, torch,
    onnx or openvino, resolved for ``device`` by :func:`resolve_backend` (its errors name ``setting``)."""
    folder, checkpoint = run_files(path)
    return load_classifier(folder, checkpoint, device, resolve_backend(backend, device, setting))
