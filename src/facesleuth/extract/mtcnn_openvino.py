"""MTCNN's three networks (P-Net, R-Net, O-Net) on OpenVINO, for the CPU.

The networks are facenet-pytorch's own: exported to ONNX from the installed wheel's weights,
once, and cached in the user cache (``$FACESLEUTH_CACHE/onnx``) under a name made of the
weights files' sha256 and the export version, so other weights are exported again and a stale
file is never used. Each is compiled for the CPU in float32
(:func:`facesleuth.runtime.openvino_cpu_config`), its input taken in channels-last memory (the
layout :mod:`facesleuth.extract.mtcnn_fast` feeds). :func:`load_mtcnn` gives them with
facenet's detection settings to :func:`facesleuth.extract.mtcnn_fast.detect`: the cascade around
them (pyramid, candidates, NMS, crops) is the same as on torch. With the exports cached,
neither facenet-pytorch nor torchvision is imported (about 1.5 s of a scanner's cold start).
Outputs agree with torch's to float rounding (about 1e-6); faces, boxes and probabilities are
compared with torch's in tests/test_mtcnn_openvino.py.

:class:`facesleuth.extract.detect.FaceDetector` imports this module when it loads MTCNN with
``backend: openvino``, after torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path
from typing import Any

import torch

from facesleuth.io import atomic_path
from facesleuth.runtime import CACHE_ENV, OpenVinoNetwork, user_cache

log = logging.getLogger(__name__)

# Part of the cached files' key: raise it when the export changes, so older files are not used.
EXPORT_VERSION = 1
OPSET = 17
CACHE_FOLDER = "onnx"  # beside the classifiers' exports
# facenet-pytorch's MTCNN pyramid factor (its default, which FaceDetector keeps)
PYRAMID_FACTOR = 0.709
# Each network's example input and its dynamic axes beyond the batch: P-Net is fully
# convolutional and runs on every pyramid level's size; R-Net and O-Net take fixed crops.
NETWORKS: dict[str, tuple[tuple[int, ...], dict[int, str]]] = {
    "pnet": ((1, 3, 48, 64), {2: "height", 3: "width"}),
    "rnet": ((2, 3, 24, 24), {}),
    "onet": ((2, 3, 48, 48), {}),
}


def weights_digest() -> str:
    """sha256 (16 hex digits) of the installed facenet-pytorch's P/R/O-Net weights files and the
    export version: the cache key of the exported networks. Found without importing the package."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("facenet-pytorch is not installed: pip install facenet-pytorch==2.5.3")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    digest = hashlib.sha256(f"facesleuth-mtcnn-onnx-{EXPORT_VERSION}\n".encode())
    for name in NETWORKS:
        digest.update((data / f"{name}.pt").read_bytes())
    return digest.hexdigest()[:16]


def export_network(net: Any, name: str, path: Path) -> Path:
    """Export facenet's ``net`` (P-, R- or O-Net, on the CPU) to ONNX at ``path``, atomically."""
    import warnings

    shape, axes = NETWORKS[name]
    outputs = [f"out{i}" for i in range({"pnet": 2, "rnet": 2, "onet": 3}[name])]
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's tracer warnings say nothing here
        torch.onnx.export(net.cpu().eval(), (torch.zeros(shape),), str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=["images"], output_names=outputs,
                          dynamic_axes={"images": {0: "batch", **axes}, **{o: {0: "batch"} for o in outputs}})
    return path


def exported_networks() -> dict[str, Path]:
    """The ONNX file of each of facenet-pytorch's MTCNN networks, exported now unless cached."""
    folder = user_cache() / CACHE_FOLDER
    digest = weights_digest()
    paths = {}
    torch_networks = None
    for name in NETWORKS:
        path = folder / f"mtcnn-{digest}-{name}.onnx"
        if not path.is_file():
            if torch_networks is None:
                from facenet_pytorch import MTCNN  # only to export: it imports torchvision

                torch_networks = MTCNN(device="cpu")
            try:
                export_network(getattr(torch_networks, name), name, path)
            except OSError as err:
                raise OSError(f"cannot write MTCNN's exported networks to {folder} ({err.strerror or err}); set "
                              f"{CACHE_ENV} to a writable folder, or run MTCNN on torch") from err
            log.info("exported MTCNN's %s to ONNX at %s", name, path)
        paths[name] = path
    return paths


class CompiledNetwork(torch.nn.Module):
    """One of MTCNN's networks compiled by OpenVINO, called like the torch one: an (N, 3, H, W)
    float32 tensor in (any layout; channels-last is read without a copy), its outputs as
    float32 tensors out. A ``torch.nn.Module`` without parameters, so ``.to()`` leaves it be."""

    def __init__(self, path: Path, threads: int):
        super().__init__()
        self.network = OpenVinoNetwork.shared(path, threads, input_layout="NHWC")
        self.path = path
        self.dtype = torch.float32  # what mtcnn_fast computes the cascade in

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        nhwc = inputs.detach().cpu().permute(0, 2, 3, 1).numpy()
        return tuple(torch.from_numpy(output) for output in self.network(nhwc))


class CompiledMTCNN(torch.nn.Module):
    """What :func:`facesleuth.extract.mtcnn_fast.detect` reads of a ``facenet_pytorch.MTCNN``
    (its networks and detection settings), with the networks compiled by OpenVINO."""

    def __init__(self, networks: dict[str, CompiledNetwork], min_face_size: float,
                 thresholds: list[float], factor: float = PYRAMID_FACTOR):
        super().__init__()
        self.pnet, self.rnet, self.onet = networks["pnet"], networks["rnet"], networks["onet"]
        self.min_face_size = min_face_size
        self.thresholds = list(thresholds)
        self.factor = factor
        self.device = torch.device("cpu")


def load_mtcnn(min_face_size: float, thresholds: list[float], threads: int) -> CompiledMTCNN:
    """facenet-pytorch's MTCNN networks compiled by OpenVINO, each on ``threads`` CPU threads,
    with facenet's detection settings (its smallest face, its three thresholds)."""
    networks = {name: CompiledNetwork(path, threads) for name, path in exported_networks().items()}
    return CompiledMTCNN(networks, min_face_size, thresholds)
