"""The thesis's figures from synthetic but realistic pipeline outputs: drawn values and PNGs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import results_factory as rf
from facesleuth.report import figures as F
from facesleuth.io import SPLITS_SCHEMA, write_parquet
from facesleuth.train.preprocess import decode_jpeg, letterbox
from facesleuth.report.tables import read_metrics

SETTINGS = {"models": rf.MODELS, "setups": rf.SETUPS}


@pytest.fixture(scope="module")
def study(tmp_path_factory, samples):
    root = tmp_path_factory.mktemp("study")
    return root, rf.write_study(root, samples)


def assert_png(path, min_width=500):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5_000, f"{path.name} looks empty ({len(data)} bytes)"
    with Image.open(path) as image:
        assert image.width >= min_width and image.height >= 300, image.size


def test_metric_figures_write_pngs(study, tmp_path):
    root, _ = study
    dfdc = {"metrics": rf.paths(root, "metrics", "dfdc_test")}
    jobs = [
        ("eer", dfdc, SETTINGS),
        ("thresholds", dfdc, SETTINGS),
        ("dfdc_roc", dfdc, SETTINGS),
        ("celebdf_f1", {"metrics": rf.paths(root, "metrics", "celebdf")}, SETTINGS),
        ("dfdc_logloss", {"metrics": rf.paths(root, "metrics", "dfdc_test", setups=["coarse"])}, {"models": rf.MODELS, "setup": "coarse"}),
    ]
    for kind, inputs, settings in jobs:
        out = tmp_path / f"{kind}.png"
        assert F.make_figures(kind, inputs, settings, {"png": str(out)}) == [out]
        assert_png(out)


def test_eer_figure_marks_the_best_runs_crossing(study):
    root, results = study
    fig = F.eer_curve(F.best_run_overall(read_metrics(rf.paths(root, "metrics", "dfdc_test")), rf.SETUPS))
    best = results["dfdc"][("efb4_ns", "default")]  # lowest log loss by construction
    ax = fig.axes[0]
    fpr_line, fnr_line, point = ax.lines[:3]
    np.testing.assert_allclose(point.get_xydata(), [[best["eer_threshold"], best["eer"]]])
    np.testing.assert_allclose(fpr_line.get_ydata(), best["roc"]["fpr"])
    np.testing.assert_allclose(fnr_line.get_ydata(), 1 - np.asarray(best["roc"]["tpr"]))
    assert "EFB4_NS" in ax.get_title() and "Default" in ax.get_title()
    F._pyplot().close(fig)


def test_bar_figures_draw_the_metrics(study):
    root, results = study
    runs = read_metrics(rf.paths(root, "metrics", "dfdc_test"))
    fig = F.logloss_bars(runs, rf.MODELS, "none")
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert heights == pytest.approx([results["dfdc"][(m, "none")]["log_loss"] for m in rf.MODELS])
    fig = F.threshold_bars(runs, rf.MODELS, rf.SETUPS)
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    best = [results["dfdc"][(m, rf.BEST_LOGLOSS_SETUP[m])] for m in rf.MODELS]
    assert heights == pytest.approx([r["eer_threshold"] for r in best] + [r["validation_threshold"] for r in best])
    fig = F.roc_curves(runs, rf.MODELS, rf.SETUPS)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0] == f"EFB4_NS (default), AUC {best[0]['auc']:.3f}"
    assert legend[1] == f"resnet50 (grid), AUC {best[1]['auc']:.3f}"
    celeb = read_metrics(rf.paths(root, "metrics", "celebdf"))
    fig = F.f1_bars(celeb, rf.MODELS, rf.SETUPS)
    chosen = {}
    for model in rf.MODELS:
        f1s = {s: results["celebdf"][(model, s)]["at_threshold"]["test_eer"]["f1"] for s in rf.SETUPS}
        chosen[model] = results["celebdf"][(model, max(f1s, key=f1s.get))]
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    expected = [chosen[m]["at_threshold"]["test_eer"]["f1"] for m in rf.MODELS]
    expected += [chosen[m]["at_threshold"]["validation"]["f1"] for m in rf.MODELS]
    assert heights == pytest.approx(expected)
    F._pyplot().close("all")


def test_loss_and_precision_figures(study, tmp_path):
    root, _ = study
    histories = [str(root / "results" / "models" / m / "default" / "history.csv") for m in rf.MODELS]
    outputs = {"train_loss": str(tmp_path / "train_loss.png"), "validation_loss": str(tmp_path / "validation_loss.png")}
    F.make_figures("losses", {"histories": histories}, {"models": rf.MODELS, "setup": "default"}, outputs)
    for path in outputs.values():
        assert_png(Path(path))
    # a NaN validation loss is left out and said so in the legend (thesis Fig. 2.14 note)
    history = pd.read_csv(histories[0])
    history.loc[2, "val_loss"] = np.nan
    fig = F.loss_curves({"efb4_ns": history}, "val_loss", "default")
    assert len(fig.axes[0].lines[0].get_xdata()) == len(history) - 1
    assert "1 NaN epochs left out" in fig.axes[0].get_legend().get_texts()[0].get_text()
    F._pyplot().close(fig)
    # the title names the validation data (Fig. 2.14): DFDC's validation set or a hold-out
    for source, words in (({"kind": "dataset", "name": "dfdc_val", "flow": "test"}, "dfdc_val (test flow)"),
                          ({"kind": "holdout", "fraction": 0.1, "flow": "train"}, "10% train-flow hold-out")):
        fig = F.loss_curves({"efb4_ns": history}, "val_loss", "default", source)
        assert words in fig.axes[0].get_title()
        F._pyplot().close(fig)
    study_settings = {"model": "efb4_ns", "augmentation": "default", "runs": {"fp16": 64, "fp32": 32}}
    out = tmp_path / "precision_epoch_time.png"
    F.make_figures("precision_epoch_time", {"histories": histories}, {"precision_study": study_settings}, {"png": str(out)})
    assert_png(out)


def test_misclassified_examples_by_hand():
    videos = pd.DataFrame(
        {"video_id": ["a", "b", "c", "d", "e"], "label": [1, 1, 1, 0, 0], "score": [0.2, 0.45, 0.9, 0.7, 0.1]}
    )
    faces = pd.DataFrame(
        {
            "video_id": ["a", "a", "b", "b", "c", "d", "d"],
            "face_id": ["a/0", "a/1", "b/0", "b/1", "c/0", "d/0", "d/1"],
            "score": [0.1, 0.3, 0.5, 0.4, 0.9, 0.6, 0.8],
        }
    )
    fakes = F.misclassified_examples(videos, faces, 0.5, "fake", limit=10)
    # fakes under 0.5: a (0.2) then b (0.45), each with its lowest-scored face
    assert list(fakes["video_id"]) == ["a", "b"] and list(fakes["face_id"]) == ["a/0", "b/1"]
    reals = F.misclassified_examples(videos, faces, 0.5, "real", limit=10)
    assert list(reals["video_id"]) == ["d"] and list(reals["face_id"]) == ["d/1"]
    assert list(F.misclassified_examples(videos, faces, 0.5, "fake", limit=1)["video_id"]) == ["a"]
    assert F.misclassified_examples(videos, faces, 0.05, "fake", limit=10).empty


@pytest.mark.parametrize("testset,select_by", [("dfdc_test", "log_loss"), ("celebdf", "f1_test_eer")])
def test_misclassified_galleries(study, tmp_path, testset, select_by):
    root, _ = study
    inputs = {kind: rf.paths(root, kind, testset) for kind in ("metrics", "videos", "face_scores", "faces")}
    for label in ("fake", "real"):
        out = tmp_path / f"{testset}_{label}.png"
        F.make_figures("misclassified", inputs, {"setups": rf.SETUPS, "label": label, "select_by": select_by}, {"png": str(out)})
        assert_png(out)


def test_gallery_shows_crops_or_a_note(study, tmp_path):
    root, results = study
    run = results["dfdc"][("efb4_ns", "default")]
    videos = pd.read_parquet(root / "results" / "predictions" / "dfdc_test" / "efb4_ns" / "default.parquet")
    faces = pd.read_parquet(root / "results" / "predictions" / "dfdc_test" / "efb4_ns" / "default.faces.parquet")
    examples = F.misclassified_examples(videos, faces, run["eer_threshold"], "fake", 12)
    assert len(examples) > 0
    crops = F.read_crops(rf.paths(root, "faces", "dfdc_test"), list(examples["face_id"]))
    assert set(crops) == set(examples["face_id"])
    fig = F.gallery(examples, crops, "title", "nothing")
    assert len(fig.axes[0].get_images()) == 1  # a decoded crop in the first panel
    F._pyplot().close(fig)
    out = tmp_path / "empty.png"
    F.save_figure(F.gallery(examples.iloc[:0], {}, "Fake videos called real", "No fake video was misclassified."), out)
    with Image.open(out) as image:
        assert image.width > 300
    assert out.stat().st_size > 5_000


def test_augmentation_examples_from_the_split(tmp_path, samples):
    from face_crops import jittered_crops_with_landmarks

    (crop, landmarks), (larger, _) = jittered_crops_with_landmarks(samples, 2, False, seed=0, scale=0.5)
    larger = larger + b"\0" * len(crop)  # the longest JPEG, but without landmarks
    split = pd.DataFrame(
        {
            "dataset": "d", "video_id": ["f", "r", "q"], "face_id": ["f/0/0", "r/0/0", "q/0/0"], "group": "g",
            "original": [None, None, None], "label": [1, 0, 0], "split": "train",
            "landmarks": [landmarks, landmarks, None], "jpeg": [b"not read", crop, larger],
        }
    )
    path = write_parquet(split, tmp_path / "split.parquet", SPLITS_SCHEMA)
    face = F.first_real_face(path)  # a real face with landmarks (sbi examples need them)
    assert (face.face_id, face.jpeg) == ("r/0/0", crop)
    assert np.allclose(face.landmarks.reshape(-1), landmarks)
    panels = F.self_blend_examples(decode_jpeg(crop), face.landmarks, 96, None, 3)
    assert [title for title, _ in panels][:2] == ["SBI 1: mask", "SBI 1"]
    mask, blended = panels[0][1], panels[1][1]
    source = letterbox(decode_jpeg(crop), 96)
    assert mask.shape == blended.shape == source.shape
    assert (mask > 0).any() and (mask == 0).any()
    assert not np.array_equal(blended, source)
    settings = {"setups": ["none", "default", "coarse", "grid", "sbi"], "input_size": 96, "augmentations": {}, "seed": 3}
    digests = []
    for attempt in range(2):
        out = tmp_path / f"aug{attempt}.png"
        F.make_figures("augmentation_examples", {"split": [str(path)]}, settings, {"png": str(out)})
        assert_png(out)
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1], "the same seed must draw the same augmentations"


def test_augmentation_steps_are_listed_one_by_one():
    from facesleuth.train.augment import build_augmentation

    names = [name for name, _ in F._steps(build_augmentation("coarse", 96, {}))]
    assert names[:4] == ["ImageCompression", "GaussNoise", "GaussianBlur", "Sharpen"]
    assert names[-1] == "CoarseDropout"
