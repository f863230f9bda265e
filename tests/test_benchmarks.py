"""Every benchmark script runs on the CPU at a small size and writes figures that hold together.

The scripts are run by hand, so nothing else notices when a change to the package breaks one;
their timings here mean nothing. The GPU check's scripts also run on ``cuda`` under the fake
CUDA runtime (tests/test_gpu_paths.py), which leaves out the CPU-only parts checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_cuda import environment_with_fake_gpus
from sklearn.metrics import log_loss, roc_auc_score

pytestmark = pytest.mark.slow


def run_script(repo_root: Path, samples: Path, script: str, *args: str, timeout: int = 600) -> str:
    done = subprocess.run([sys.executable, str(repo_root / "benchmarks" / script), *args], capture_output=True,
                          text=True, timeout=timeout, check=False,
                          env={**os.environ, "FACESLEUTH_SAMPLES": str(samples), "OPENCV_LOG_LEVEL": "ERROR"})
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    return done.stdout


def test_every_benchmark_script_is_run_by_a_test(repo_root):
    """Here (named in quotes in this file), as a step of the GPU check, or by test_scale."""
    sys.path.insert(0, str(repo_root / "benchmarks"))
    try:
        import gpu_check
    finally:
        sys.path.pop(0)
    here = Path(__file__).read_text()
    run_here = {path.name for path in (repo_root / "benchmarks").glob("*.py") if f'"{path.name}"' in here}
    by_gpu_check = {script for _, script, _, _ in gpu_check.STEPS} | {"gpu_check.py"}
    by_test_scale = {"scale.py"}
    scripts = {path.name for path in (repo_root / "benchmarks").glob("*.py")}
    assert scripts - run_here - by_gpu_check - by_test_scale == set()


def test_extract_runs_both_pipelines_against_both_baselines(repo_root, samples, tmp_path):
    out = tmp_path / "extract.json"
    run_script(repo_root, samples, "extract.py", "--quick", "--device", "cpu", "--json", str(out))
    figures = json.loads(out.read_text())
    assert figures["videos"] == 4 and figures["frames_per_video"] == 3 and len(figures["rounds"]) == 1
    row = figures["rounds"][0]
    for name in ("pipeline_exact", "pipeline_nearest"):
        # a ratio is the two times it divides, as the row reports them
        assert row[f"{name}_over_naive"] == pytest.approx(row["naive_s"] / row[f"{name}_s"], rel=0.01)
        assert figures["decoding_cpu_s"][name] > 0  # the CPU decoding floor
        assert figures[f"{name}_recall_of_naive"] >= 0.9
    assert row["pipeline_exact_frames_moved"] == 0 < row["pipeline_nearest_frames_moved"]


def test_detect_measures_speed_and_equivalence(repo_root, samples, tmp_path):
    out = tmp_path / "detect.json"
    run_script(repo_root, samples, "detect.py", "--frames", "2", "--rounds", "1", "--equivalence-frames", "1",
               "--json", str(out))
    figures = json.loads(out.read_text())
    assert set(figures["speed"]) == {"960x540", "1920x1080->960"}
    assert all(min(speed["best_fps"].values()) > 0 for speed in figures["speed"].values())
    same = figures["equivalence"]  # the fast MTCNN against facenet-pytorch's, frame by frame
    assert same["frames"] >= 11 and same["faces_facenet"] == same["faces_fast"] > 0
    assert same["frames_with_other_counts"] == same["unmatched_faces"] == same["kept_by_one_side"] == 0
    assert same["max_box_shift_px"] < 0.01


def test_scan_latency_compares_backends_against_torch(repo_root, samples, tmp_path):
    out = tmp_path / "scan.json"
    run_script(repo_root, samples, "scan_latency.py", "--frames", "4", "--threads", "1", "--warm", "1",
               "--rounds", "1", "--backends", "torch", "openvino", "--frame-policies", "nearest_reference",
               "--baseline-rev", "none", "--json", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert [(row["backend"], row["frame_policy"]) for row in rows] == [("torch", "nearest_reference"),
                                                                      ("openvino", "nearest_reference")]
    assert all(row["warm"] and row["cold"] > 0 for row in rows)
    assert [row["warm"][0]["faces"] for row in rows] == [4, 4]  # the DFDC video's one face, on each sampled frame
    assert [row["warm"][0]["frames_read"] for row in rows] == [4, 4]


def test_scan_latency_refuses_cpu_backends_on_a_gpu(repo_root, samples):
    """On the fake GPU (tests/fake_cuda_site), as a GPU box would see it."""
    done = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "scan_latency.py"), "--device", "cuda",
                           "--backends", "torch", "onnx"], capture_output=True, text=True, timeout=120, check=False,
                          env={**environment_with_fake_gpus(1), "FACESLEUTH_SAMPLES": str(samples)})
    assert done.returncode == 2
    assert "--backends onnx run on the CPU only; with --device cuda compare torch alone" in done.stderr


def test_decode_contention_times_decoding_alone_and_beside_python(repo_root, samples):
    stdout = run_script(repo_root, samples, "decode_contention.py", "--frames", "4", "--rounds", "1")
    assert "alone" in stdout and "switch interval 0.2 ms" in stdout


def test_model_cost_counts_parameters_as_torch_does(repo_root, samples, tmp_path):
    import timm

    out = tmp_path / "cost.json"
    run_script(repo_root, samples, "model_cost.py", "--models", "mobilenetv3_small_050", "--size", "64", "--batch",
               "2", "--steps", "1", "--warmup", "1", "--rounds", "1", "--json", str(out))
    (row,) = json.loads(out.read_text())
    backbone = timm.create_model(row["timm"], pretrained=False, num_classes=0)
    parameters = sum(p.numel() for p in backbone.parameters()) / 1e6
    assert row["params_m"] == pytest.approx(parameters, abs=0.06)  # the backbone, and a one-logit head
    assert row["train_images_per_s"] > 0 and row["predict_images_per_s"] > 0


def test_predict_backends_scores_agree(repo_root, samples, tmp_path):
    out = tmp_path / "backends.json"
    run_script(repo_root, samples, "predict_backends.py", "--models", "mobilenetv3_small_050", "--size", "64",
               "--faces", "8", "--batch-size", "4", "--rounds", "1", "--json", str(out))
    (row,) = json.loads(out.read_text())["rows"]
    assert row["onnx_max_score_difference"] <= 1e-4 and row["openvino_max_score_difference"] <= 1e-4
    assert row["onnx_over_torch"] == pytest.approx(row["onnx_faces_per_s"] / row["torch_faces_per_s"], rel=0.01)


def test_real_media_metrics_are_those_of_its_scores(repo_root, samples, tmp_path):
    """The video AUC and log loss of all fakes against all reals, recomputed with scikit-learn
    from the video scores and the labels the sample README gives."""
    out = tmp_path / "real.json"
    run_script(repo_root, samples, "real_media.py", "--frames", "4", "--json", str(out))
    figures = json.loads(out.read_text())
    reals = {"004.mp4", "519.mp4", "634.mp4", "street.mp4"}
    fakes = {"519_515.mp4", "634_660.mp4", "004_982.mp4", "brtujopkby.mp4", "widuwuoiur.mp4", "yhffcuhhjy.mp4"}
    assert set(figures["scores"]) >= {"Meso4_DF", "Meso4_F2F"}
    for model, scores in figures["scores"].items():
        videos = {Path(path).name: score for path, score in scores.items() if Path(path).name in reals | fakes}
        assert set(videos) == reals | fakes, model
        labels = [int(name in fakes) for name in videos]
        # clipped as the DFDC competition's scoring clips them: the scanner's 6-decimal scores reach 0 and 1
        probabilities = np.clip(list(videos.values()), 1e-15, 1 - 1e-15)
        everything = figures["metrics"][model]["all"]
        assert everything["videos"] == 10
        assert everything["auc"] == pytest.approx(roc_auc_score(labels, probabilities), abs=1e-9)
        assert everything["log_loss"] == pytest.approx(log_loss(labels, probabilities), rel=1e-9)


def test_serve_load_runs_every_upload(repo_root, samples, tmp_path):
    out = tmp_path / "serve.json"
    run_script(repo_root, samples, "serve_load.py", "--uploads", "4", "--workers", "1", "--json", str(out))
    (round_,) = json.loads(out.read_text())["rounds"]
    assert round_["uploads"] == 4 and round_["failed"] == 0
    assert round_["throughput_per_s"] == pytest.approx(4 / round_["wall_s"], rel=0.1)
    assert 0 < round_["efficiency"] <= 1.5
