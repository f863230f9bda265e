"""Face scores from a trained run, video aggregation, every video once, no-face handling."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from face_crops import faces_frame, write_split
from train_settings import TINY_RUN as SETTINGS

from facesleuth import registry
from facesleuth.io import (
    FACE_PREDICTIONS_SCHEMA,
    STATUS_SCHEMA,
    VIDEO_PREDICTIONS_SCHEMA,
    write_parquet,
)
from facesleuth.evaluate.inference import load_run
from facesleuth.evaluate.predict import (
    AGGREGATIONS,
    aggregate_videos,
    get_aggregation,
    is_aggregation,
    predict_crops,
    predict_faces,
    predict_testset,
    validate_on_holdout,
)
from facesleuth.train.loop import train_run


def _manifest(videos: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({
        "dataset": "testset", "video_id": list(videos), "path": [f"{v}.mp4" for v in videos],
        "label": list(videos.values()), "split": "test", "original": None, "group": "test",
        "tags": [["augmenter:noise"] if i % 2 else [] for i in range(len(videos))],
        "status": "ok", "message": "",
    })


def test_aggregations():
    scores = np.array([0.1, 0.2, 0.3, 0.9])
    assert AGGREGATIONS["mean"](scores) == pytest.approx(0.375)
    assert AGGREGATIONS["median"](scores) == pytest.approx(0.25)
    assert AGGREGATIONS["max"](scores) == pytest.approx(0.9)
    assert AGGREGATIONS["top_mean"](scores) == pytest.approx(0.9)  # the top quarter: one face of four
    assert AGGREGATIONS["top_mean"](np.arange(8) / 10) == pytest.approx(0.65)  # 0.6 and 0.7


def test_every_manifest_video_once_with_no_face_fallback(tmp_path):
    manifest = _manifest({"a": 1, "b": 0, "c": 1, "d": 0})
    faces = pd.DataFrame({"video_id": ["a", "a", "b", "a"], "score": [0.9, 0.7, 0.2, 0.8]})
    status = pd.DataFrame({"video_id": ["a", "b", "c"], "status": ["ok", "ok", "no_face"]})
    videos = aggregate_videos(faces, status, manifest, "mean", 0.5)
    assert list(videos.columns) == VIDEO_PREDICTIONS_SCHEMA.names
    assert videos["video_id"].tolist() == ["a", "b", "c", "d"]
    by_id = videos.set_index("video_id")
    assert by_id.loc["a", "score"] == pytest.approx(0.8) and by_id.loc["a", "n_faces"] == 3
    assert by_id.loc["b", "score"] == pytest.approx(0.2) and bool(by_id.loc["b", "scored"])
    assert by_id.loc["c", "score"] == 0.5 and not by_id.loc["c", "scored"] and by_id.loc["c", "status"] == "no_face"
    assert by_id.loc["d", "status"] == "ok"  # no status row: the manifest's status
    assert by_id.loc["b", "tags"] == ["augmenter:noise"]
    write_parquet(videos, tmp_path / "videos.parquet", VIDEO_PREDICTIONS_SCHEMA)  # fits the contract


def test_no_face_score_none_leaves_nan_and_max_aggregation():
    manifest = _manifest({"a": 1, "b": 0})
    faces = pd.DataFrame({"video_id": ["a", "a"], "score": [0.1, 0.7]})
    videos = aggregate_videos(faces, None, manifest, "max", None).set_index("video_id")
    assert videos.loc["a", "score"] == pytest.approx(0.7)
    assert np.isnan(videos.loc["b", "score"]) and not videos.loc["b", "scored"]


def test_aggregation_errors():
    manifest = _manifest({"a": 1})
    with pytest.raises(ValueError, match="mean, median, max, top_mean, top3_mean, max_track_mean"):
        aggregate_videos(pd.DataFrame({"video_id": [], "score": []}), None, manifest, "mode", 0.5)
    with pytest.raises(ValueError, match="not in the manifest"):
        aggregate_videos(pd.DataFrame({"video_id": ["zz"], "score": [0.5]}), None, manifest, "mean", 0.5)
    with pytest.raises(ValueError, match="more than once"):
        aggregate_videos(pd.DataFrame({"video_id": [], "score": []}), None, pd.concat([manifest, manifest]), "mean", 0.5)


@pytest.fixture(scope="module")
def trained(samples, tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("predict")
    split = write_split(root / "split.parquet", samples)
    settings = copy.deepcopy(SETTINGS)
    settings["training"]["epochs"] = 1
    train_run(split, root / "run", settings)
    return root / "run", split


def test_load_run_rebuilds_the_trained_model(trained, samples):
    run_dir, _ = trained
    model, info = load_run(run_dir, "cpu")
    assert not model.training and info["input_size"] == 64 and info["model"] == "mobilenetv3_small_050"
    same, _ = load_run(run_dir / "best.pt", "cpu")
    faces = faces_frame(samples, {"v": (1, 3)})
    scores = predict_faces(model, info, faces, "cpu", batch_size=2)
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert ((scores > 0) & (scores < 1)).all()
    # batching does not matter beyond rounding: oneDNN may pick another kernel for another batch size
    assert np.allclose(scores, predict_faces(same, info, faces, "cpu", batch_size=3), rtol=0, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="best.pt"):
        load_run(run_dir / "missing", "cpu")


def test_crops_in_memory_score_like_their_jpeg_bytes(trained, samples):
    from facesleuth.train.preprocess import decode_jpeg

    model, info = load_run(trained[0], "cpu")
    faces = faces_frame(samples, {"v": (0, 3)})
    crops = [decode_jpeg(jpeg) for jpeg in faces["jpeg"]]
    assert np.allclose(predict_crops(model, info, crops, "cpu", batch_size=2), predict_faces(model, info, faces, "cpu"),
                       atol=1e-6)


def test_predict_testset_scores_faces_and_every_video(trained, samples, tmp_path):
    run_dir, _ = trained
    videos = {"fake1": (1, 3), "real1": (0, 2), "fake2": (1, 2)}
    write_parquet(faces_frame(samples, {k: videos[k] for k in ("fake1", "real1")}), tmp_path / "000.parquet")
    write_parquet(faces_frame(samples, {"fake2": videos["fake2"]}, seed=9), tmp_path / "001.parquet")
    manifest = _manifest({"fake1": 1, "real1": 0, "fake2": 1, "nothing": 0})
    write_parquet(manifest, tmp_path / "manifest.parquet")
    status = pd.DataFrame([{"dataset": "testset", "video_id": v, "path": "", "label": 0, "status": s, "message": "",
                            "frames_total": 10, "frames_read": 10, "faces_detected": 1, "faces_kept": 1,
                            "box_source": "self", "seconds": 0.1, "frames_failed": 0, "frames_skipped": 0}
                           for v, s in [("fake1", "ok"), ("real1", "ok"), ("fake2", "ok"), ("nothing", "no_face")]])
    write_parquet(status, tmp_path / "000.status.parquet", STATUS_SCHEMA)
    evaluation = {"aggregation": "mean", "no_face_score": 0.5, "batch_size": 4}
    videos_df, faces_df = predict_testset(run_dir, [tmp_path / "000.parquet", tmp_path / "001.parquet"],
                                          [tmp_path / "000.status.parquet"], tmp_path / "manifest.parquet", evaluation, "cpu")
    assert list(faces_df.columns) == FACE_PREDICTIONS_SCHEMA.names and len(faces_df) == 7
    write_parquet(faces_df, tmp_path / "faces.out.parquet", FACE_PREDICTIONS_SCHEMA)
    assert videos_df["video_id"].tolist() == ["fake1", "real1", "fake2", "nothing"]
    means = faces_df.groupby("video_id")["score"].mean()
    by_id = videos_df.set_index("video_id")
    for video in ("fake1", "real1", "fake2"):
        assert by_id.loc[video, "score"] == pytest.approx(means[video], rel=1e-6)
    assert by_id.loc["nothing", "score"] == 0.5 and not by_id.loc["nothing", "scored"]
    assert by_id.loc["nothing", "status"] == "no_face" and by_id.loc["nothing", "n_faces"] == 0


def test_validate_on_holdout_writes_threshold_fields(trained):
    run_dir, split = trained
    faces, videos, threshold = validate_on_holdout(run_dir, split, {"aggregation": "mean", "batch_size": 8}, "cpu")
    assert len(faces) == 16 and sorted(set(faces["video_id"])) == sorted(videos["video_id"])
    assert len(videos) == 4 and videos["scored"].all() and (videos["n_faces"] == 4).all()
    assert set(threshold) == {"eer_threshold", "eer", "auc", "n_videos", "n_unscored", "source", "aggregation",
                              "validation"}
    assert threshold["n_videos"] == 4 and threshold["source"] == "validation" and threshold["aggregation"] == "mean"
    assert 0 <= threshold["eer"] <= 1 and 0 <= threshold["auc"] <= 1
    json.dumps(threshold)


def test_confident_and_track_aggregations_by_hand():
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.8])
    # top3_mean: (0.9 + 0.8 + 0.3) / 3; top<k>_mean for any k, all faces when fewer than k
    assert AGGREGATIONS["top3_mean"](scores) == pytest.approx(2.0 / 3)
    assert get_aggregation("top2_mean")(scores) == pytest.approx(0.85)
    assert get_aggregation("top9_mean")(scores) == pytest.approx(0.46)
    # two people: track 0 scores 0.1, 0.2, 0.3 (mean 0.2), track 4 scores 0.9, 0.8 (mean 0.85)
    tracks = np.array([0, 0, 0, 4, 4])
    assert AGGREGATIONS["max_track_mean"](scores, tracks) == pytest.approx(0.85)
    assert AGGREGATIONS["max_track_mean"](scores) == pytest.approx(0.46)  # untracked: one person, the mean
    assert AGGREGATIONS["mean"](scores, tracks) == pytest.approx(0.46)  # tracks do not change the others
    assert is_aggregation("top12_mean") and not is_aggregation("top0_mean") and not is_aggregation("mode")
    assert list(AGGREGATIONS) == list(registry.AGGREGATIONS)  # the names the config accepts are implemented


def test_aggregate_videos_passes_tracks():
    manifest = _manifest({"a": 1, "b": 0})
    # a: track 1 = 0.2, 0.4 (mean 0.3); track 2 = 0.9 -> 0.9. b: untracked (-1) faces, one group
    faces = pd.DataFrame({"video_id": ["a", "a", "a", "b", "b"], "track": [1, 1, 2, -1, -1],
                          "score": [0.2, 0.4, 0.9, 0.1, 0.3]})
    videos = aggregate_videos(faces, None, manifest, "max_track_mean", 0.5).set_index("video_id")
    assert videos.loc["a", "score"] == pytest.approx(0.9) and videos.loc["b", "score"] == pytest.approx(0.2)
    means = aggregate_videos(faces, None, manifest, "mean", 0.5).set_index("video_id")
    assert means.loc["a", "score"] == pytest.approx(0.5)


def test_the_workflow_predicts_on_an_exported_model_when_the_config_says_so(trained, samples, tmp_path):
    """evaluation.backend onnx and openvino: the same face scores as torch's (within 1e-4) from
    the run's exported model, kept in the run folder; a trained run and a published one (as rule
    predict_baseline names it, by its run.yaml)."""
    pytest.importorskip("onnxruntime")
    from facesleuth.evaluate.inference import BackendError, OnnxClassifier, OpenVinoClassifier, load_predictor, runtime_available
    from facesleuth.published.builtin import BUILTIN_RUNS

    exported = ["onnx"] + (["openvino"] if runtime_available("openvino") else [])
    run_dir, _ = trained
    write_parquet(faces_frame(samples, {"fake1": (1, 3), "real1": (0, 3)}), tmp_path / "000.parquet")
    write_parquet(_manifest({"fake1": 1, "real1": 0}), tmp_path / "manifest.parquet")
    for run in (run_dir, BUILTIN_RUNS["Meso4_DF"] / "run.yaml"):
        scores = {}
        for backend in ("torch", *exported):
            evaluation = {"aggregation": "mean", "no_face_score": 0.5, "batch_size": 4, "backend": backend}
            _, faces_df = predict_testset(run, [tmp_path / "000.parquet"], [], tmp_path / "manifest.parquet",
                                          evaluation, "cpu")
            scores[backend] = faces_df["score"].to_numpy()
        for backend in exported:
            np.testing.assert_allclose(scores[backend], scores["torch"], rtol=0, atol=1e-4, err_msg=backend)
            # the faces' scores differ far more than the backends do: the export follows its input
            assert len(scores["torch"]) == 6
            assert np.abs(scores[backend] - scores["torch"]).max() * 10 < np.ptp(scores["torch"]), backend
    assert len(list((run_dir / "onnx").glob("*.onnx"))) == 1
    model, _ = load_predictor(run_dir, "cpu", "auto")
    assert isinstance(model, OpenVinoClassifier if "openvino" in exported else OnnxClassifier)
    with pytest.raises(BackendError, match=r"evaluation.backend onnx runs on the CPU only.*set evaluation.backend to auto"):
        load_predictor(run_dir, "cuda", "onnx")
