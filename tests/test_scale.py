"""The scale rehearsal at 1/200 of the study: layouts parse through the real manifest adapters,
the face files through the real split and dataset code, and the GPU check exits cleanly without a GPU."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from facesleuth.train.data import FaceDataset
from facesleuth.io import LABEL_FAKE, LABEL_REAL, read_parquets
from facesleuth.manifests import build_manifest
from facesleuth.demo.rehearsal import (
    DFDC_MEDIAN_CROP,
    StudySize,
    lay_out_study,
    sample_face_crops,
    train_flow_tables,
    write_study_sized_split,
    write_train_flow_chunks,
)
from facesleuth.train.splits import make_splits

REPO = Path(__file__).resolve().parents[1]
FRACTION = 1 / 200


@pytest.fixture(scope="module")
def size() -> StudySize:
    return StudySize.thesis().scaled(FRACTION)


@pytest.fixture(scope="module")
def study(tmp_path_factory, samples, size):
    root = tmp_path_factory.mktemp("study")
    return root, lay_out_study(root, samples, size)


@pytest.fixture(scope="module")
def crops(samples) -> list[bytes]:
    return sample_face_crops(samples, 40, frames_per_video=2)


def test_thesis_sizes_are_the_thesis_figures():
    size = StudySize.thesis()
    assert size.dfdc_train_videos == 119_197
    assert size.dfdc_train_parts == 50
    assert size.celebdf_videos == 6_529
    assert size.split_faces == 202_951 + 212_454  # thesis 2.4.1


def test_layout_parses_through_the_manifest_adapters(study, size, samples):
    _, datasets = study
    expected = {"dfdc_train": (size.dfdc_train_videos, size.dfdc_train_fakes),
                "dfdc_val": (size.dfdc_validation, None), "dfdc_test": (size.dfdc_test, None),
                "celebdf": (size.celebdf_videos, size.celebdf_fake)}
    for name, dataset in datasets.items():
        manifest = build_manifest(name, {k: v for k, v in dataset.items() if k != "videos"})
        videos, fakes = expected[name]
        assert len(manifest) == videos == dataset["videos"], name
        assert (manifest["status"] == "ok").all(), name
        if fakes is not None:
            assert int((manifest["label"] == LABEL_FAKE).sum()) == fakes, name
    train = build_manifest("dfdc_train", {"format": "dfdc_train", "root": datasets["dfdc_train"]["root"]})
    assert train["group"].nunique() == size.dfdc_train_parts
    # every fake's original is a real video of its own part, as in DFDC
    reals = set(train.loc[train["label"] == LABEL_REAL, "video_id"])
    fakes = train[train["label"] == LABEL_FAKE]
    assert set(fakes["original"]) <= reals
    assert (fakes["original"].str.split("/").str[0] == fakes["group"]).all()
    # links, not copies: every video resolves into the samples
    for path in train["path"].head(20):
        assert os.path.islink(path) and Path(path).resolve().is_relative_to(Path(samples).resolve())


def test_celebdf_testing_list_agrees_with_the_folders(study):
    _, datasets = study
    dataset = {"format": "celebdf", "root": datasets["celebdf"]["root"], "labels": "List_of_testing_videos.txt"}
    listed = build_manifest("celebdf", dataset)
    lines = (Path(dataset["root"]) / dataset["labels"]).read_text().split("\n")
    flags = [line.split()[0] for line in lines if line]
    assert len(listed) == len(flags)
    # Celeb-DF's flag is 1 = REAL; the adapter's labels come from the folders
    assert int((listed["label"] == LABEL_REAL).sum()) == flags.count("1")


def test_face_crops_are_real_distinct_and_thesis_sized(crops):
    assert len(set(crops)) == len(crops)
    shapes = np.array([cv2.imdecode(np.frombuffer(c, np.uint8), cv2.IMREAD_COLOR).shape[:2] for c in crops])
    median_area = float(np.median(shapes[:, 0] * shapes[:, 1]))
    target = DFDC_MEDIAN_CROP[0] * DFDC_MEDIAN_CROP[1]
    assert 0.6 * target < median_area < 1.6 * target
    # JPEG quality 95 of a real face at that size: tens of kilobytes, not a flat image's few
    assert 8_000 < np.median([len(c) for c in crops]) < 80_000


def test_split_reads_through_the_training_dataset(tmp_path, crops, size):
    path = tmp_path / "split.parquet"
    totals = write_study_sized_split(path, crops, size)
    train = FaceDataset.from_split(path, "train", 224)
    val = FaceDataset.from_split(path, "val", 224)
    assert len(train) + len(val) == size.split_faces == totals["faces"]
    assert len(val) == round(size.split_faces * size.validation_fraction)
    assert int((np.concatenate([train.labels, val.labels]) == LABEL_FAKE).sum()) == size.split_fakes
    ids = pq.read_table(path, columns=["face_id"]).column("face_id").to_pylist()
    assert len(set(ids)) == len(ids)
    image, label = train[0]
    assert tuple(image.shape) == (224, 224, 3) and label in (0, 1)
    stored = pq.read_table(path, columns=["jpeg"]).column("jpeg")
    assert sum(len(b) for b in stored.to_pylist()) == totals["jpeg_bytes"]


def test_train_flow_faces_split_like_the_thesis(tmp_path, study, crops, size):
    """The splits rule's steps on the rehearsal's train-flow faces: every real face kept, one fake in five."""
    _, datasets = study
    manifest = build_manifest("dfdc_train", {"format": "dfdc_train", "root": datasets["dfdc_train"]["root"]})
    written = write_train_flow_chunks(tmp_path, manifest, crops, chunks=3)
    assert written["faces"] == size.dfdc_train_videos * size.faces_per_video
    faces = read_parquets(sorted(map(str, tmp_path.glob("[0-9][0-9][0-9].parquet"))), columns=["dataset", "video_id", "face_id", "label"])
    status = read_parquets(sorted(map(str, tmp_path.glob("*.status.parquet"))))
    assert len(faces) == written["faces"] and len(status) == len(manifest)
    settings = {"validation_fraction": 0.1, "group_by": "original", "fake_downsample": 5, "seed": 42}
    split, _ = make_splits(faces, status, settings, manifest_df=manifest)
    real_faces = size.dfdc_train_reals * size.faces_per_video
    assert int((split["label"] == LABEL_REAL).sum()) == real_faces
    fake_faces = size.dfdc_train_fakes * size.faces_per_video
    # ceil(n / 5) per side: between a fifth of all fakes and that plus one
    assert fake_faces / 5 <= int((split["label"] == LABEL_FAKE).sum()) <= math.ceil(fake_faces / 5) + 1
    # the metadata-only tables agree with what was written
    meta, _ = train_flow_tables(manifest, size.faces_per_video)
    assert sorted(meta.column("face_id").to_pylist()) == sorted(faces["face_id"])


def test_benchmark_runs_layout_manifests_and_dry_run(tmp_path, samples):
    out = tmp_path / "scale.json"
    # the benchmark looks for the samples as the tests do; hand it the folder the fixture found
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "scale.py"), "--work", str(tmp_path / "work"), "--fraction", "0.005",
         "--steps", "layout", "manifests", "dry-run", "--json", str(out)],
        check=False, capture_output=True, text=True, timeout=600, env={**os.environ, "FACESLEUTH_SAMPLES": str(samples)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    assert figures["layout"]["datasets"]["dfdc_train"] == StudySize.thesis().scaled(0.005).dfdc_train_videos
    # docs/scaling.md: the thesis config (with its DFDC validation set) plans 342 jobs whatever the number of videos
    assert figures["dry_run"]["jobs"] == 342
    assert figures["manifests"]["dfdc_train"]["peak_rss_gib"] > 0


def test_gpu_check_without_a_gpu_exits_cleanly(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the check would run for minutes")
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--json", str(out)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["skipped"] is True and "no CUDA GPU" in report["reason"]


def test_gpu_check_steps_use_options_the_scripts_accept():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import gpu_check
    finally:
        sys.path.pop(0)
    assert sum(limit for *_, limit in gpu_check.STEPS) <= gpu_check.DEFAULT_BUDGET_S  # every step fits
    helps: dict[str, str] = {}
    for name, script, args, _ in gpu_check.STEPS:
        if script not in helps:
            helps[script] = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--help"],
                                           capture_output=True, text=True, timeout=120, check=True).stdout
        for option in (a for a in [*args, *gpu_check.QUICK_ARGS[script], "--device", "--json"] if a.startswith("--")):
            assert option in helps[script], f"{name}: {script} has no {option}"


def test_a_broken_face_is_named_by_its_id(tmp_path, crops, size):
    """Face ids stay an Arrow column in the dataset; errors still name the face."""
    import pandas as pd

    from facesleuth.io import SPLITS_SCHEMA, write_parquet

    rows = [{"dataset": "d", "video_id": f"v{i}", "face_id": f"v{i}/0/0", "group": "g", "original": None,
             "label": i % 2, "split": "train", "landmarks": None,
             "jpeg": crops[i] if i != 2 else b"not a jpeg"} for i in range(4)]
    path = write_parquet(pd.DataFrame(rows), tmp_path / "split.parquet", SPLITS_SCHEMA)
    dataset = FaceDataset.from_split(path, "train", 64)
    assert tuple(dataset[1][0].shape) == (64, 64, 3)
    with pytest.raises(ValueError, match="face v2/0/0"):
        dataset[2]
