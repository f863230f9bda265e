"""The CUDA-only paths, run on the CPU under a fake CUDA runtime (tests/fake_cuda.py).

Each test here would have caught a defect that no CPU run showed: an index-less device given to
``torch.cuda.set_device`` (every single-GPU run failed before its first step), SyncBatchNorm
conversion that dropped timm's fused activations (six of the eight thesis backbones trained
without them on several GPUs), the float32 math a GPU run uses, DataLoader workers sized by the
node instead of the job, and a web process that held a CUDA context for nothing.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from face_crops import write_split
from fake_cuda import FakeCuda, environment_with_fake_gpus
from train_settings import tiny_run_settings

from facesleuth.train import loop as train_module
from facesleuth.train.backbones import REGISTRY, THESIS_MODELS
from facesleuth.train.models import build_model
from facesleuth.train.loop import (
    FLOAT32_MATH,
    Distributed,
    convert_batchnorm,
    dataloader_workers,
    load_checkpoint,
    resolve_training_device,
    train_run,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def settings(**training):
    """The tiny run in fp16 on ``device: auto``: CUDA wherever a (fake) GPU is visible."""
    return tiny_run_settings(**{"precision": "fp16", "device": "auto", **training})


@pytest.fixture
def fake_cuda(monkeypatch):
    fake = FakeCuda(count=2).install(monkeypatch)
    yield fake
    fake.uninstall()


@pytest.fixture(scope="module")
def split(samples, tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("split") / "train.parquet", samples)


def losses(history):
    return [(row["epoch"], row["train_loss"], row["val_loss"]) for row in history]


# ---------------------------------------------------------------- the fake itself


def test_the_fake_rejects_an_index_less_device_as_cuda_does(fake_cuda):
    with pytest.raises(ValueError, match="specified index"):
        torch.cuda.set_device(torch.device("cuda"))
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.cuda.set_device(torch.device("cuda", 2))
    torch.cuda.set_device(torch.device("cuda", 1))
    assert torch.cuda.current_device() == 1


# ---------------------------------------------------------------- device resolution


@pytest.mark.parametrize("name", ["auto", "cuda"])
def test_auto_and_cuda_train_on_the_current_gpu_with_its_index(fake_cuda, name):
    device = resolve_training_device(name, Distributed())
    assert device == torch.device("cuda", 0)
    assert fake_cuda.calls["set_device"] == [torch.device("cuda", 0)]


def test_a_named_gpu_and_a_torchrun_rank_take_their_own_index(fake_cuda):
    assert resolve_training_device("cuda:1", Distributed()) == torch.device("cuda", 1)
    assert resolve_training_device("auto", Distributed(rank=1, local_rank=1, world_size=2)) == torch.device("cuda", 1)
    with pytest.raises(RuntimeError, match="only 2 GPUs"):
        resolve_training_device("auto", Distributed(rank=0, local_rank=0, world_size=3))
    with pytest.raises(RuntimeError, match="GPU 3 asked for"):
        resolve_training_device("cuda:3", Distributed())


# ---------------------------------------------------------------- a whole run on "CUDA"


def test_train_run_on_cuda_trains_checkpoints_and_resumes(split, tmp_path, fake_cuda, monkeypatch):
    """fp16 on a GPU: autocast and GradScaler on cuda, pinned batches, a kill after epoch 1 and a resume."""
    reference = train_run(split, tmp_path / "uninterrupted", settings())
    assert fake_cuda.placements["cuda"] > 0 and fake_cuda.placements["pinned"] > 0  # the work went to the GPU
    assert torch.device("cuda", 0) in fake_cuda.calls["set_device"]
    assert fake_cuda.calls["synchronize"], "epoch timing must wait for the GPU"

    run_dir = tmp_path / "killed"
    real_evaluate = train_module.Trainer.evaluate

    def killed_in_epoch_2(self, loader, epoch, note="", **options):
        if epoch == 2:
            raise KeyboardInterrupt("killed")
        return real_evaluate(self, loader, epoch, note, **options)

    with monkeypatch.context() as patch:
        patch.setattr(train_module.Trainer, "evaluate", killed_in_epoch_2)
        with pytest.raises(KeyboardInterrupt):
            train_run(split, run_dir, settings())
    last = load_checkpoint(run_dir / "last.pt")
    assert last["epoch"] == 1
    assert last["scaler_state"]["scale"] > 0  # fp16 on CUDA trains with a live GradScaler
    assert len(last["rng"]["cuda"]) == fake_cuda.count  # the GPUs' RNG states travel with the run
    for name in ("best.pt", "history.csv", "run.yaml"):
        (run_dir / name).unlink()
    resumed = train_run(split, run_dir, settings())
    assert resumed["resumed_from"] == 1
    assert fake_cuda.calls["set_rng_state_all"], "resuming restores the GPUs' RNG states"
    assert losses(resumed["history"]) == losses(reference["history"])
    got, expected = load_checkpoint(run_dir / "last.pt"), load_checkpoint(tmp_path / "uninterrupted" / "last.pt")
    assert got["scaler_state"] == expected["scaler_state"]
    for key, value in expected["model_state"].items():
        assert torch.equal(got["model_state"][key], value), key

    run = yaml.safe_load((run_dir / "run.yaml").read_text())
    assert run["device"] == "cuda" and run["precision"] == "fp16"
    assert run["float32_math"] == {"cuda_matmul_tf32": False, "cudnn_tf32": False, "cudnn_benchmark": True}


def test_fp32_on_cuda_learns_what_fp32_on_the_cpu_learns(split, tmp_path, monkeypatch):
    """Same seed and data, the CUDA branch (fused Adam, pinned memory, device copies) and the CPU one:
    equal up to the optimiser kernels' rounding."""
    cpu = train_run(split, tmp_path / "cpu", settings(precision="fp32", device="cpu", epochs=1))
    fake = FakeCuda(count=1).install(monkeypatch)
    try:
        gpu = train_run(split, tmp_path / "gpu", settings(precision="fp32", device="cuda", epochs=1))
    finally:
        fake.uninstall()
    assert fake.placements["cuda"] > 0
    assert cpu["history"][0]["train_loss"] == pytest.approx(gpu["history"][0]["train_loss"], rel=1e-5)
    assert cpu["history"][0]["val_loss"] == pytest.approx(gpu["history"][0]["val_loss"], rel=1e-4)


def test_every_run_sets_float32_math_explicitly_and_records_it(split, tmp_path):
    torch.backends.cuda.matmul.allow_tf32 = True  # what a previous run or user code may have left
    torch.backends.cudnn.allow_tf32 = True
    train_run(split, tmp_path, settings(precision="fp32", device="cpu", epochs=1))
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    run = yaml.safe_load((tmp_path / "run.yaml").read_text())
    assert run["float32_math"] == {**FLOAT32_MATH, "cudnn_benchmark": False}  # no cuDNN on a CPU


# ---------------------------------------------------------------- SyncBatchNorm


@pytest.mark.parametrize("name", list(REGISTRY))
def test_syncbatchnorm_conversion_computes_the_same_function(name):
    """Every backbone of the thesis and the extended config, in eval mode: the converted model
    (what several GPUs train) gives the logits of the plain one (what prediction loads)."""
    torch.manual_seed(0)
    model = build_model(name, pretrained=False, dropout=0.0).eval()
    converted = convert_batchnorm(copy.deepcopy(model), torch.device("cuda", 0), Distributed(world_size=2)).eval()
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in converted.modules())
        assert not any(type(m) in (torch.nn.BatchNorm2d,) for m in converted.modules())
    # the checkpoint of a multi-GPU run loads into the plain model, strictly
    assert converted.state_dict().keys() == model.state_dict().keys()
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        # a fresh model's running statistics are 0 and 1; other values make every norm do work,
        # so a dropped activation or a miswired norm cannot hide behind an identity
        for module in [*model.modules(), *converted.modules()]:
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.fill_(0.1)
                module.running_var.fill_(1.5)
        expected, got = model(images), converted(images)
    assert torch.allclose(expected, got, atol=1e-5, rtol=1e-5), (expected - got).abs().max()


def test_torchs_own_conversion_would_drop_timms_activations():
    """The defect this guards against, shown: torch's converter changes an EfficientNet's function."""
    torch.manual_seed(0)
    model = build_model("efb0_ns", pretrained=False, dropout=0.0).eval()
    broken = torch.nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(model)).eval()
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert (model(images) - broken(images)).abs().max() > 1e-2


def test_the_thesis_backbones_are_all_covered():
    assert set(THESIS_MODELS) <= set(REGISTRY) and len(THESIS_MODELS) == 8


# ---------------------------------------------------------------- CPUs, prediction, the service


def test_dataloader_workers_follow_the_jobs_cpus_not_the_nodes(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 128)
    assert dataloader_workers(8) == 3  # 4 CPUs: 3 workers beside the training loop
    assert dataloader_workers(2) == 2
    assert dataloader_workers(8, processes=2) == 1  # 2 CPUs per torchrun process
    assert dataloader_workers(8, processes=4) == 0


def test_prediction_on_cuda_scores_as_on_the_cpu(samples, tmp_path, monkeypatch):
    from face_crops import faces_frame

    from facesleuth.evaluate.predict import predict_faces

    torch.manual_seed(0)
    model = build_model("mobilenetv3_small_050", pretrained=False, dropout=0.0).eval()
    faces = faces_frame(samples, {"a": (0, 5), "b": (1, 4)})
    info = {"input_size": 64}
    cpu = predict_faces(model, info, faces, "cpu", batch_size=4)
    fake = FakeCuda(count=1).install(monkeypatch)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)  # 0 workers: batches pinned here
    try:
        gpu = predict_faces(model, info, faces, torch.device("cuda"), batch_size=4)
    finally:
        fake.uninstall()
    assert fake.placements["cuda"] >= 3 and fake.placements["pinned"] >= 3  # three batches went to the GPU
    np.testing.assert_allclose(gpu, cpu, atol=1e-6)


def test_serve_checks_its_model_without_a_cuda_context(tmp_path, monkeypatch, split):
    """The web process only checks the run folder; the workers load the model where they scan."""
    from facesleuth.cli import serve as serve_cli

    train_run(split, tmp_path / "run", settings(precision="fp32", device="cpu", epochs=1))
    fake = FakeCuda(count=1).install(monkeypatch)
    try:
        serve_cli.check_model(str(tmp_path / "run"), "auto")
    finally:
        fake.uninstall()
    assert fake.placements["cuda"] == 0, "the web process put tensors on the GPU"


def test_history_of_a_cuda_run_is_written_like_a_cpu_run(split, tmp_path, fake_cuda):
    train_run(split, tmp_path, settings(epochs=1))
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["epoch"].tolist() == [1] and (history[["train_loss", "val_loss"]] > 0).all().all()


# ---------------------------------------------------------------- benchmarks/gpu_paths.py


def test_gpu_paths_rehearses_every_step_on_the_cpu(samples, tmp_path, repo_root):
    """The GPU check's correctness steps, with --device cpu: each runs and passes its own check."""
    import json
    import subprocess
    import sys

    out = tmp_path / "paths.json"
    done = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "gpu_paths.py"), "--device", "cpu",
                           "--quick", "--json", str(out)], capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "FACESLEUTH_SAMPLES": str(samples)})
    report = json.loads(out.read_text())
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:], report)
    steps = report["steps"]
    assert list(steps) == ["mtcnn", "train_fp16", "train_bf16", "resume", "validate", "scan", "ddp"]
    assert steps["resume"]["killed_after_epoch"] == steps["resume"]["resumed_from"] == 1
    assert steps["ddp"]["status"] == "skipped"


def test_gpu_paths_under_the_fake_cuda_runtime(samples, tmp_path, monkeypatch, repo_root):
    """The same steps' CUDA branch: detection, fp16 training, prediction and the scanner put their
    work on the GPU and score what the CPU scores."""
    import json
    import sys

    monkeypatch.syspath_prepend(str(repo_root / "benchmarks"))
    monkeypatch.setenv("FACESLEUTH_SAMPLES", str(samples))  # where the fixture found them
    import gpu_paths

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)  # no DataLoader workers
    fake = FakeCuda(count=1).install(monkeypatch)
    try:
        code = gpu_paths.main(["--device", "cuda", "--quick", "--steps", "validate", "scan",
                               "--json", str(tmp_path / "paths.json")])
    finally:
        fake.uninstall()
        sys.modules.pop("gpu_paths", None)
    report = json.loads((tmp_path / "paths.json").read_text())
    assert code == 0, report
    assert set(report["steps"]) == {"mtcnn", "train_fp16", "validate", "scan"}
    assert report["steps"]["train_fp16"]["run_device"] == "cuda"
    assert fake.placements["cuda"] > 0 and fake.placements["pinned"] > 0


# ---------------------------------------------------------------- benchmarks/gpu_check.py


def test_gpu_check_rehearses_its_measurements_on_the_fake_gpu(samples, tmp_path, repo_root):
    """``gpu_check.py --quick`` with every script in processes that see the fake GPU: each step
    runs on ``cuda``, puts its work there and writes its figures. torch.compile is left out, as
    its tracing probes the CUDA driver itself."""
    import json
    import subprocess
    import sys

    sys.path.insert(0, str(repo_root / "benchmarks"))
    try:
        import gpu_check
    finally:
        sys.path.pop(0)
    steps = [name for name, _, args, _ in gpu_check.STEPS if "--compile" not in args]
    placements = tmp_path / "placements"
    placements.mkdir()
    env = {**environment_with_fake_gpus(1, placements), "FACESLEUTH_SAMPLES": str(samples)}
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "gpu_check.py"), "--quick", "--budget",
                           "1500", "--only", *steps, "--json", str(out)], capture_output=True, text=True,
                          timeout=1600, check=False, env=env)
    report = json.loads(out.read_text())
    failed = {name: step.get("output_tail") for name, step in report["steps"].items() if step["status"] != "ok"}
    assert done.returncode == 0 and not failed, (done.stdout[-2000:], failed)
    assert report["gpu"] == "Fake GPU (CPU arithmetic)" and report["quick"] is True
    assert list(report["steps"]) == steps == ["gpu_paths", "train_efb4_ns_b64", "train_efb4_ns_b256",
                                              "train_resnet50_b64", "extract", "detect", "scan_latency"]
    figures = {name: step["figures"] for name, step in report["steps"].items()}
    assert {name: step["status"] for name, step in figures["gpu_paths"]["steps"].items()} == {
        "mtcnn": "ok", "train_fp16": "ok", "train_bf16": "ok", "resume": "ok", "validate": "ok", "scan": "ok",
        "ddp": "skipped"}  # DDP needs two GPUs
    for name in steps[1:4]:  # every precision of the training loop, on the (fake) GPU
        assert [row["precision"] for row in figures[name]] == ["fp16", "bf16", "fp32"]
        assert all(row["device"].startswith("Fake GPU") and row["real_images_per_s"] > 0 for row in figures[name])
    assert figures["extract"]["settings"]["device"] == "cuda"
    assert figures["extract"]["pipeline_nearest_recall_of_naive"] >= 0.9 and not figures["extract"]["decoding_cpu_s"]
    assert figures["detect"]["settings"]["device"] == "cuda"
    scans = figures["scan_latency"]["rows"]
    assert figures["scan_latency"]["device"] == "cuda" and {row["backend"] for row in scans} == {"torch"}
    assert {row["frame_policy"] for row in scans} == {"exact", "nearest_reference"}
    assert all(row["code"] == "now" for row in scans)  # no CPU baseline revision on a GPU
    # the processes that computed put tensors on the GPU: the CUDA branches ran
    placed = [json.loads(path.read_text())["placements"] for path in placements.glob("*.json")]
    # the GPU paths, three training runs, extraction's baselines and its one job, detection, two
    # scanning processes
    assert sum(p.get("cuda", 0) > 0 for p in placed) >= 1 + 3 + 2 + 1 + 2, placed
    assert sum(p.get("pinned", 0) for p in placed) > 0
