"""Published detectors as baselines of the study (config ``baselines``): predictions with the
shipped Meso-4 DF on real face crops, its metrics and its rows in the tables, checked against
scikit-learn and pandas; and no row at all when no baseline is configured."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm

import results_factory as rf
from facesleuth import registry
from facesleuth.report import robustness as report_robustness
from facesleuth.report import studies as study_report
from facesleuth.report import tables as T
from facesleuth.evaluate.baselines import BaselineError, baseline_files, baseline_metrics, resolve_baseline
from facesleuth.config import ConfigError, baselines, robustness_cells, validate_config
from facesleuth.io import VIDEO_PREDICTIONS_SCHEMA, write_parquet
from facesleuth.evaluate.predict import predict_testset
from facesleuth.published.builtin import BUILTIN_RUNS

NAME = "Meso4_DF"


@pytest.fixture(scope="module")
def study(tmp_path_factory, samples):
    """The synthetic grid of results_factory plus Meso-4 DF's real predictions and metrics on its faces."""
    root = tmp_path_factory.mktemp("baselines")
    grid = rf.write_study(root, samples)
    spec = yaml.safe_load((BUILTIN_RUNS[NAME] / "run.yaml").read_text())
    out = {"grid": grid, "videos": {}, "faces": {}, "metrics": {}}
    for testset, videos in (("dfdc_test", grid["dfdc_videos"]), ("celebdf", grid["celebdf_videos"])):
        manifest = videos.assign(status="ok")
        manifest_path = root / f"{testset}.manifest.parquet"
        manifest.to_parquet(manifest_path)
        predicted, faces = predict_testset(BUILTIN_RUNS[NAME], [root / "results" / "faces" / testset / "000.parquet"],
                                           [], manifest_path, {"aggregation": "mean", "batch_size": 32}, "cpu")
        base = root / "results" / "baselines" / NAME
        write_parquet(predicted, base / "predictions" / f"{testset}.parquet", VIDEO_PREDICTIONS_SCHEMA)
        metrics = baseline_metrics(predicted, spec, NAME, testset)
        path = base / "metrics" / f"{testset}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics))
        out["videos"][testset], out["faces"][testset], out["metrics"][testset] = predicted, faces, str(path)
    return root, out


def test_baseline_scores_are_the_mean_of_its_face_scores_and_its_metrics_sklearns(study):
    _, out = study
    videos, faces = out["videos"]["dfdc_test"], out["faces"]["dfdc_test"]
    assert videos["scored"].all() and len(faces) == len(videos) * rf.FACES_PER_VIDEO
    means = faces.groupby("video_id")["score"].mean()
    assert np.allclose(videos.set_index("video_id")["score"], means.reindex(videos["video_id"]), atol=1e-6)
    assert videos["score"].std() > 1e-3, "Meso-4 gave every face one score: its preprocessing is broken"
    metrics = json.loads(open(out["metrics"]["dfdc_test"]).read())
    y, score = videos["label"].to_numpy(), videos["score"].to_numpy()
    assert metrics["kind"] == "baseline" and metrics["aug"] == registry.BASELINE and metrics["model"] == NAME
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(y, np.clip(score, 1e-15, 1 - 1e-15)))
    assert metrics["auc"] == pytest.approx(skm.roc_auc_score(y, score))
    # its own threshold, run.yaml's 0.5, stands where a grid run has its validation threshold
    at = metrics["at_threshold"]["validation"]
    assert metrics["validation_threshold"] == 0.5 and at["threshold"] == 0.5
    assert at["f1"] == pytest.approx(skm.f1_score(y, score >= 0.5, zero_division=0))
    assert at["sensitivity"] == pytest.approx(skm.recall_score(y, score >= 0.5, zero_division=0))
    assert at["specificity"] == pytest.approx(skm.recall_score(1 - y, score < 0.5, zero_division=0))
    assert "not chosen on the study's data" in at["description"]


def table(name, inputs, settings, tmp_path):
    csv, md = tmp_path / f"{name}.csv", tmp_path / f"{name}.md"
    T.make_table(name, inputs, settings, csv, md)
    return pd.read_csv(csv), md.read_text()


GRID = {"models": rf.MODELS, "setups": rf.SETUPS, "validation": None}


def test_logloss_table_has_the_baseline_row_and_none_without_baselines(study, tmp_path):
    root, out = study
    metrics = rf.paths(root, "metrics", "dfdc_test")
    plain, plain_md = table("dfdc_logloss", {"metrics": metrics}, GRID, tmp_path)
    empty, empty_md = table("dfdc_logloss", {"metrics": metrics, "ensembles": [], "baselines": []}, GRID, tmp_path)
    pd.testing.assert_frame_equal(plain, empty)
    assert plain_md == empty_md and "baseline" not in plain_md.lower() and "kind" not in plain.columns
    data, md = table("dfdc_logloss", {"metrics": metrics, "baselines": [out["metrics"]["dfdc_test"]]}, GRID, tmp_path)
    assert list(data["kind"]) == ["run"] * len(rf.MODELS) + ["baseline"]
    row = data[data["kind"] == "baseline"].iloc[0]
    videos = out["videos"]["dfdc_test"]
    assert row["model"] == NAME and row["aug"] == registry.BASELINE
    assert row["log_loss"] == pytest.approx(skm.log_loss(videos["label"], videos["score"].clip(1e-15, 1 - 1e-15)))
    assert "NOT trained by the pipeline" in md and f"{NAME} (baseline)" in md
    assert "Deepfakes" in row["trained_on"]
    # the grid's rows are untouched by the baseline's
    pd.testing.assert_frame_equal(data[data["kind"] == "run"].drop(columns=["kind", "aug", "trained_on", "log_loss"]).reset_index(drop=True),
                                  plain, check_dtype=False)


@pytest.mark.parametrize("name", ["celebdf_f1", "celebdf_sensitivity_specificity"])
def test_celebdf_tables_score_the_baseline_at_its_own_and_the_test_eer_threshold(study, tmp_path, name):
    root, out = study
    inputs = {"metrics": rf.paths(root, "metrics", "celebdf"), "baselines": [out["metrics"]["celebdf"]]}
    data, md = table(name, inputs, GRID, tmp_path)
    row = data[data["kind"] == "baseline"].iloc[0]
    videos = out["videos"]["celebdf"]
    y, score = videos["label"].to_numpy(), videos["score"].to_numpy()
    # the test set's own EER threshold, found independently: where FPR and FNR cross on sklearn's ROC
    fpr, tpr, thresholds = skm.roc_curve(y, score)
    eer_threshold = json.loads(open(out["metrics"]["celebdf"]).read())["eer_threshold"]
    assert min(thresholds[1:]) <= eer_threshold <= max(thresholds[1:])
    for kind, threshold in (("validation", 0.5), ("test_eer", eer_threshold)):
        predicted = score >= threshold
        if name == "celebdf_f1":
            assert row[f"f1_{kind}"] == pytest.approx(skm.f1_score(y, predicted, zero_division=0))
        else:
            assert row[f"sensitivity_{kind}"] == pytest.approx(skm.recall_score(y, predicted, zero_division=0))
            assert row[f"specificity_{kind}"] == pytest.approx(skm.recall_score(1 - y, ~predicted, zero_division=0))
    assert "its run folder's own" in md and "0.5000" in md


def test_auc_and_generalisation_tables_have_one_row_per_baseline(study, tmp_path):
    root, out = study
    testsets = ["dfdc_test", "celebdf"]
    runs = [f for t in testsets for f in rf.paths(root, "metrics", t)]
    baselines = [out["metrics"][t] for t in testsets]
    auc = study_report.build_auc({"metrics": runs, "baselines": baselines}, {**GRID, "testsets": testsets})
    plain = study_report.build_auc({"metrics": runs}, {**GRID, "testsets": testsets})
    row = auc.data[auc.data["kind"] == "baseline"]
    assert len(row) == 1 and row.iloc[0]["aug"] == registry.BASELINE
    for t in testsets:
        videos = out["videos"][t]
        assert row.iloc[0][t] == pytest.approx(skm.roc_auc_score(videos["label"], videos["score"]))
    pd.testing.assert_frame_equal(auc.data[auc.data["kind"] != "baseline"], plain.data)
    assert "baseline" not in plain.markdown

    matrix = {"training_sets": ["a", "b"], "models": ["efb4_ns"], "setups": ["default"], "testsets": testsets,
              "home_testsets": {}}
    matrix["cells"] = [[tr, "efb4_ns", "default", t] for tr in matrix["training_sets"] for t in testsets]
    cell_paths = [str(root / "results" / "metrics" / t / "efb4_ns" / "default.json") for _, _, _, t in matrix["cells"]]
    matrix_table = study_report.build_generalisation({"metrics": cell_paths, "baselines": baselines},
                                                     {"generalisation": matrix})
    baseline_rows = matrix_table.data[matrix_table.data["kind"] == "baseline"]
    assert len(matrix_table.data) == 3 and len(baseline_rows) == 1  # one row, whatever the training sets
    assert baseline_rows.iloc[0]["trainset"] == study_report.NOT_TRAINED
    assert baseline_rows.iloc[0]["celebdf"] == pytest.approx(auc.data[auc.data["kind"] == "baseline"].iloc[0]["celebdf"])
    with pytest.raises(T.TableError, match="baseline Meso4_DF on"):
        study_report.build_generalisation({"metrics": cell_paths, "baselines": baselines[:1]}, {"generalisation": matrix})


def test_robustness_cells_and_table_rows_of_a_baseline(study, tmp_path):
    _, out = study
    config = validate_config({
        "datasets": {"dfdc_test": {"format": "dfdc_test", "root": "x", "flow": "test"},
                     "t": {"format": "dfdc_train", "root": "y", "flow": "train"}},
        "splits": {"train_datasets": ["t"]}, "models": ["m"], "augmentation_setups": ["default"],
        "evaluation": {"testsets": ["dfdc_test"]}, "robustness": {"perturbations": {"jpeg": [50]}},
        "baselines": [NAME],
    })
    cells = robustness_cells(config)
    without = robustness_cells({**config, "baselines": {}})
    assert cells[: len(without)] == without and all("baseline" not in c for c in without)
    assert cells[len(without):] == [
        {"testset": "dfdc_test", "run": f"{NAME}/baseline", "perturbation": p, "baseline": NAME}
        for p in ("clean", "jpeg_50")]
    videos = out["videos"]["dfdc_test"]
    path = tmp_path / "p.parquet"
    write_parquet(videos, path, VIDEO_PREDICTIONS_SCHEMA)
    result = report_robustness.build_robustness({"predictions": [str(path)] * len(cells)},
                                         {"cells": cells, "perturbations": ["jpeg_50"]}, "auc")
    row = result.data[result.data["run"] == f"{NAME}/baseline"].iloc[0]
    assert row["clean"] == pytest.approx(skm.roc_auc_score(videos["label"], videos["score"]))
    assert "not trained by the pipeline" in result.markdown.lower()


def test_config_names_baselines_and_rejects_bad_ones(tmp_path):
    assert baselines({"baselines": ["Meso4_DF", "runs/xception_dfdc/"]}) == {
        "Meso4_DF": "Meso4_DF", "xception_dfdc": "runs/xception_dfdc/"}
    assert baselines({"baselines": {"meso": "Meso4_F2F"}}) == {"meso": "Meso4_F2F"}
    assert baselines({}) == {}
    base = {"datasets": {"t": {"format": "dfdc_train", "root": "y", "flow": "train"}},
            "splits": {"train_datasets": ["t"]}, "models": ["m"], "augmentation_setups": ["default"],
            "evaluation": {"testsets": []}}
    assert validate_config(dict(base))["baselines"] == {}
    for bad, key in (({"bad name": "Meso4_DF"}, "baselines"), (["a/x y"], "baselines.0"), (["a/m", "b/m"], "baselines"),
                     (3, "baselines")):
        with pytest.raises(ConfigError, match=key):
            validate_config({**base, "baselines": bad})
    assert resolve_baseline("Meso4_DF") == BUILTIN_RUNS["Meso4_DF"]
    files = baseline_files("Meso4_DF")
    assert files["weights"].endswith("Meso4_DF.h5") and files["run"].endswith("run.yaml")
    with pytest.raises(BaselineError, match="is no folder"):
        resolve_baseline("no_such_run", tmp_path)
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "run.yaml").write_text("model: resnet50\n")
    with pytest.raises(BaselineError, match="kind published"):
        resolve_baseline("trained", tmp_path)
    with pytest.raises(BaselineError, match="threshold"):
        baseline_metrics(pd.DataFrame({"label": [0, 1], "score": [0.2, 0.8]}), {"threshold": {"value": None}}, "x", "t")


def test_roc_figure_draws_the_baseline_dash_dotted_with_its_auc(study):
    from facesleuth.report.figures import draw_roc

    root, out = study
    metrics = rf.paths(root, "metrics", "dfdc_test")
    settings = {"models": rf.MODELS, "setups": rf.SETUPS}
    plain = draw_roc({"metrics": metrics}, settings)["png"]
    figure = draw_roc({"metrics": metrics, "baselines": [out["metrics"]["dfdc_test"]]}, settings)["png"]
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert len(lines) == len(plain.axes[0].get_lines()) + 1
    videos = out["videos"]["dfdc_test"]
    label = f"{NAME} (baseline), AUC {skm.roc_auc_score(videos['label'], videos['score']):.3f}"
    assert label in lines and lines[label].get_linestyle() == "-."
    fpr, tpr, _ = skm.roc_curve(videos["label"], videos["score"])
    assert np.interp(0.5, *lines[label].get_data()) == pytest.approx(np.interp(0.5, fpr, tpr), abs=1e-6)
