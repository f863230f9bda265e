"""Runtime helpers: stable chunking and device resolution."""

from __future__ import annotations

import pytest

from facesleuth.runtime import DEVICE_ENV, chunk_names, chunk_of, resolve_device


def test_chunk_of_is_stable_and_in_range():
    # crc32 values are fixed: the same video lands in the same chunk on every machine and run
    assert chunk_of("dfdc_train_part_0/gnmmhlbzge", 50) == chunk_of("dfdc_train_part_0/gnmmhlbzge", 50)
    assert [chunk_of(f"video{i}", 7) for i in range(200)] == [chunk_of(f"video{i}", 7) for i in range(200)]
    assert {chunk_of(f"video{i}", 7) for i in range(200)} == set(range(7))
    assert chunk_names(3) == ["000", "001", "002"]


def test_auto_device_follows_the_environment(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert resolve_device("auto") == "cpu"
    monkeypatch.delenv(DEVICE_ENV)
    assert resolve_device("auto") in ("cpu", "cuda")
    assert resolve_device("cpu") == "cpu"


def test_cuda_without_a_gpu_says_what_to_do(monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(RuntimeError, match="device: auto or cpu"):
        resolve_device("cuda")
    monkeypatch.setenv(DEVICE_ENV, "cuda:0")
    with pytest.raises(RuntimeError):
        resolve_device("auto")


def test_machine_info_names_the_hardware_and_torch() -> None:
    import os

    import torch

    from facesleuth.runtime import machine_info

    info = machine_info()
    assert info["cores"] == os.cpu_count()
    assert info["torch"] == torch.__version__ and info["torch_threads"] == torch.get_num_threads()
    assert info["cpu"] and info["cpu"] != "unknown"
    assert (info["gpu"] is None) == (not torch.cuda.is_available())
