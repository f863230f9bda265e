"""A fake CUDA runtime for the CPU: torch.cuda as a machine with GPUs presents it, computing on the CPU.

Code paths that run only on a GPU (device indices, pinned memory, autocast and GradScaler on
``cuda``, synchronisation, RNG states) run here for real, with two differences from a GPU:

- the ``torch.cuda`` functions the package calls are replaced by recorders that accept and
  reject what real CUDA does: ``set_device`` goes through torch's own index check, so an
  index-less ``torch.device("cuda")`` raises the ``ValueError`` it raises on a GPU;
- a TorchFunctionMode turns every tensor placement on ``cuda`` (``.to``, ``.cuda()``, factory
  functions' ``device=``) into one on the CPU and counts it, so the arithmetic runs on the CPU
  and a test can tell whether the code put its work on the GPU at all.

Autocast on ``cuda`` then leaves the CPU kernels in float32 (it casts CUDA ops only), so
results equal a CPU run's up to the optimiser's kernel (fused Adam on CUDA).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode


def _on_cpu(value: Any) -> Any:
    if isinstance(value, torch.device) and value.type == "cuda":
        return torch.device("cpu")
    if isinstance(value, str) and value.startswith("cuda"):
        return "cpu"
    return value


def _names_cuda(value: Any) -> bool:
    return (isinstance(value, torch.device) and value.type == "cuda") or (
        isinstance(value, str) and value.startswith("cuda"))


class _CpuPlacement(TorchFunctionMode):
    def __init__(self, placements: Counter):
        super().__init__()
        self.placements = placements

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.cuda:
            self.placements["cuda"] += 1
            return args[0]
        if _names_cuda(kwargs.get("device")):
            self.placements["cuda"] += 1
            kwargs["device"] = "cpu"
        if func is torch.Tensor.to and any(_names_cuda(a) for a in args[1:]):
            self.placements["cuda"] += 1
            args = (args[0], *(_on_cpu(a) for a in args[1:]))
        return func(*args, **kwargs)


class _Stream:
    def is_capturing(self) -> bool:  # no CUDA graph is ever captured here
        return False

    def synchronize(self) -> None:
        return None


class FakeCuda:
    """``count`` fake GPUs; :meth:`install` patches torch through pytest's ``monkeypatch``."""

    def __init__(self, count: int = 1, bf16: bool = True, name: str = "Fake GPU (CPU arithmetic)"):
        self.count = count
        self.bf16 = bf16
        self.name = name
        self.current = 0
        self.calls: dict[str, list] = defaultdict(list)
        self.placements: Counter = Counter()
        self._mode: _CpuPlacement | None = None

    # -------------------------------------------------------------- torch.cuda functions

    def set_device(self, device: Any) -> None:
        index = torch.cuda._get_device_index(device)  # torch's own check: raises for "cuda" without an index
        if not 0 <= index < self.count:
            raise RuntimeError(f"CUDA error: invalid device ordinal {index} ({self.count} GPUs)")
        self.calls["set_device"].append(device)
        self.current = index

    def current_device(self) -> int:
        return self.current

    def synchronize(self, device: Any = None) -> None:
        self.calls["synchronize"].append(device)

    def set_device_index(self, device: Any) -> None:
        self.calls["set_device_index"].append(device)

    def get_rng_state_all(self) -> list["torch.Tensor"]:
        return [torch.get_rng_state() for _ in range(self.count)]

    def set_rng_state_all(self, states: list) -> None:
        if len(states) != self.count:
            raise RuntimeError(f"{len(states)} RNG states for {self.count} GPUs")
        self.calls["set_rng_state_all"].append(len(states))

    # -------------------------------------------------------------- installing

    def install(self, monkeypatch) -> "FakeCuda":
        cuda = torch.cuda
        monkeypatch.setattr(cuda, "is_available", lambda: True)
        monkeypatch.setattr(cuda, "device_count", lambda: self.count)
        monkeypatch.setattr(cuda, "current_device", self.current_device)
        monkeypatch.setattr(cuda, "set_device", self.set_device)
        monkeypatch.setattr(cuda, "synchronize", self.synchronize)
        monkeypatch.setattr(cuda, "is_bf16_supported", lambda *a, **k: self.bf16)
        monkeypatch.setattr(cuda, "get_device_name", lambda *a, **k: self.name)
        monkeypatch.setattr(cuda, "get_rng_state_all", self.get_rng_state_all)
        monkeypatch.setattr(cuda, "set_rng_state_all", self.set_rng_state_all)
        # a DataLoader with workers asks for the current device, and its pinning thread sets it
        monkeypatch.setattr(torch.accelerator, "current_device_index", self.current_device)
        monkeypatch.setattr(torch.accelerator, "set_device_index", self.set_device_index)
        # pinning is patched on the class, not caught by the placement mode: the DataLoader pins
        # in a thread of its own, which the mode (thread-local) does not reach
        placements = self.placements

        def pin_memory(tensor: "torch.Tensor", device: Any = None) -> "torch.Tensor":
            placements["pinned"] += 1
            return tensor

        monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
        # optimisers ask the current accelerator's stream whether a CUDA graph is being captured
        monkeypatch.setattr(torch.accelerator, "current_stream", lambda *a, **k: _Stream())
        self._mode = _CpuPlacement(self.placements)
        self._mode.__enter__()
        return self

    def uninstall(self) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None


def environment_with_fake_gpus(count: int = 1, report_dir: Path | None = None) -> dict[str, str]:
    """``os.environ`` for a subprocess in which every Python process, the subprocess's own ones
    too, sees ``count`` fake GPUs (fake_cuda_site/sitecustomize.py); with ``report_dir``, each
    writes there at exit what it placed on them."""
    site = str(Path(__file__).resolve().parent / "fake_cuda_site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH")])),
           "FAKE_CUDA_GPUS": str(count)}
    if report_dir is not None:
        env["FAKE_CUDA_REPORT_DIR"] = str(report_dir)
    return env
