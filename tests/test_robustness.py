"""The robustness suite: perturbing a manifest chunk, scoring the cells, its tables and figure."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from facesleuth import registry
from facesleuth.report import catalog
from facesleuth.extract import perturb
from facesleuth.evaluate import robustness
from facesleuth.report import robustness as report_robustness
from facesleuth.config import ConfigError, load_config, robustness_cells, robustness_plan, validate_config
from facesleuth.demo.rendering import write_video
from facesleuth.report.figures import severity_curves
from facesleuth.io import MANIFEST_SCHEMA, VIDEO_PREDICTIONS_SCHEMA, write_parquet
from facesleuth.runtime import chunk_of
from facesleuth.extract.video import probe, read_frames


def manifest_row(video_id, path, label, status="ok"):
    return {
        "dataset": "t", "video_id": video_id, "path": str(path), "label": label, "split": "", "original": None,
        "group": "", "tags": [], "status": status, "message": "" if status == "ok" else "not on disk",
    }


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two small videos (12 frames of 64x48 gradients), one listed missing, one unreadable."""
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(2):
        frames = [rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8) for _ in range(12)]
        rows.append(manifest_row(f"part/v{i}", write_video(frames, root / f"v{i}.mp4", 12.0), i % 2))
    (root / "broken.mp4").write_bytes(b"not a video at all")
    rows.append(manifest_row("part/broken", root / "broken.mp4", 1))
    rows.append(manifest_row("part/gone", root / "gone.mp4", 0, status="missing"))
    return pd.DataFrame(rows)


def test_perturb_chunk_writes_the_chunk_and_reports_what_failed(videos, tmp_path):
    out = tmp_path / "jpeg_50"
    rows = robustness.perturb_chunk(videos, 0, 1, "jpeg_50", out, seed=1)
    write_parquet(rows, tmp_path / "manifest.parquet", MANIFEST_SCHEMA)  # fits the contract
    by_id = rows.set_index("video_id")
    assert list(rows["video_id"]) == list(videos["video_id"])
    for i in range(2):
        path = by_id.loc[f"part/v{i}", "path"]
        assert path == str(out / f"part/v{i}.avi") and by_id.loc[f"part/v{i}", "status"] == "ok"
        info = probe(path)
        assert (info.frames, info.width, info.height) == (12, 64, 48)
        source = read_frames(videos.loc[i, "path"], range(12))
        expected = perturb.jpeg(list(source), 50)
        assert all(np.array_equal(a, b) for a, b in zip(read_frames(path, range(12)), expected))
    # an unreadable source is never replaced by its clean self: a missing row that says why
    assert by_id.loc["part/broken", "status"] == "missing"
    assert "could not be perturbed (jpeg_50)" in by_id.loc["part/broken", "message"]
    assert by_id.loc["part/gone", "status"] == "missing" and by_id.loc["part/gone", "message"] == "not on disk"


def test_perturb_chunk_takes_only_its_chunk(videos, tmp_path):
    chunks = 3
    for chunk in range(chunks):
        rows = robustness.perturb_chunk(videos, chunk, chunks, "blur_0", tmp_path / str(chunk))
        assert all(chunk_of(v, chunks) == chunk for v in rows["video_id"])


def test_noise_seeds_differ_per_video_and_repeat():
    assert robustness.video_seed(0, "noise_5", "a") == robustness.video_seed(0, "noise_5", "a")
    assert robustness.video_seed(0, "noise_5", "a") != robustness.video_seed(0, "noise_5", "b")


def predictions(path, labels, scores, scored=None):
    frame = pd.DataFrame({
        "dataset": "t", "video_id": [f"v{i}" for i in range(len(labels))], "label": labels, "tags": [[]] * len(labels),
        "status": "ok", "n_faces": 3, "score": scores, "scored": scored if scored is not None else [True] * len(labels),
    })
    return write_parquet(frame, path, VIDEO_PREDICTIONS_SCHEMA)


def test_scores_match_scikit_learn(tmp_path):
    labels = [0, 0, 1, 1, 1, -1]
    scores = [0.1, 0.6, 0.4, 0.8, 0.9, 0.5]
    path = predictions(tmp_path / "p.parquet", labels, scores)
    got = robustness.scores(pd.read_parquet(path))
    assert got["auc"] == pytest.approx(roc_auc_score(labels[:5], scores[:5]))  # the unlabelled video is left out
    assert got["logloss"] == pytest.approx(log_loss(labels[:5], scores[:5]))
    one_class = predictions(tmp_path / "one.parquet", [1, 1], [0.2, 0.9])
    assert np.isnan(robustness.scores(pd.read_parquet(one_class))["auc"])


def test_tables_have_a_row_per_run_and_a_column_per_perturbation(tmp_path):
    config = {
        "models": ["m"], "augmentation_setups": ["default", "sbi"], "evaluation": {"testsets": ["dfdc_test"]},
        "robustness": {"perturbations": {"jpeg": [70, 30], "blur": [2]}},
    }
    cells = robustness_cells(config)
    assert [c["perturbation"] for c in cells[:4]] == ["clean", "jpeg_70", "jpeg_30", "blur_2"]
    assert {c["run"] for c in cells} == {"m/default", "m/sbi"} and len(cells) == 8
    rng = np.random.default_rng(0)
    labels = [0, 1] * 10
    paths, expected = [], {}
    for i, cell in enumerate(cells):
        scores = np.clip(np.array(labels) * (1 - i / 10) + rng.uniform(0, 0.6, 20), 0.01, 0.99)
        paths.append(str(predictions(tmp_path / f"{i}.parquet", labels, scores)))
        expected[(cell["run"], cell["perturbation"])] = (roc_auc_score(labels, scores), log_loss(labels, scores))
    settings = {"cells": cells, "perturbations": ["jpeg_70", "jpeg_30", "blur_2"]}
    for metric, index in (("auc", 0), ("logloss", 1)):
        table = report_robustness.build_robustness({"predictions": paths}, settings, metric)
        assert list(table.data.columns) == ["testset", "run", "clean", "jpeg_70", "jpeg_30", "blur_2"]
        assert list(table.data["run"]) == ["m/default", "m/sbi"]
        for _, row in table.data.iterrows():
            for column in ("clean", "jpeg_70", "jpeg_30", "blur_2"):
                assert row[column] == pytest.approx(expected[(row["run"], column)][index])
        assert "| dfdc_test | m/sbi |" in table.markdown
    figure = severity_curves(table.data, "logloss")
    assert [ax.get_title() for ax in figure.axes] == ["jpeg", "blur"]
    # jpeg: clean, then quality 70 (severity 30), then 30 (severity 70), left to right
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["clean", "70", "30"]
    assert len(figure.axes[0].get_lines()) == 2  # one per run
    with pytest.raises(ValueError, match="cells"):
        robustness.score_grid(cells, paths[:-1])


def test_config_checks_the_robustness_section(repo_root):
    config = load_config(repo_root / "config" / "config.yaml")
    assert config["robustness"]["seed"] == 0  # defaults filled
    plan = robustness_plan(config)
    assert plan["perturbations"] == ["jpeg_50", "jpeg_20"]
    for change, message in (
        ({"perturbations": {"sepia": [1]}}, "robustness.perturbations"),
        ({"runs": ["resnet10t/median"]}, "robustness.runs.0"),
        ({"testsets": ["dfdc_train"]}, "robustness.testsets.0"),
    ):
        bad = copy.deepcopy(config)
        bad["robustness"].update(change)
        with pytest.raises(ConfigError, match=message):
            validate_config(bad)
    without = copy.deepcopy(config)
    del without["robustness"]
    assert robustness_plan(validate_config(without)) is None
    assert "robustness_auc" not in catalog.wanted_tables(validate_config(without))


def test_an_implementation_that_drifts_from_the_registry_fails_on_import():
    registry.require_implemented("families", ["jpeg", "blur"], {"jpeg": 1, "blur": 2})
    with pytest.raises(RuntimeError, match=r"lists \['jpeg', 'blur'\], the implementation has \['jpeg'\]"):
        registry.require_implemented("families", ["jpeg", "blur"], {"jpeg": 1})
    with pytest.raises(RuntimeError):  # the order is the tables' column order: it must agree too
        registry.require_implemented("families", ["jpeg", "blur"], ["blur", "jpeg"])
