"""The thesis's tables from synthetic but realistic pipeline outputs: numbers and marks."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn import metrics as skm

import results_factory as rf
from facesleuth.report import tables as T


@pytest.fixture(scope="module")
def study(tmp_path_factory, samples):
    root = tmp_path_factory.mktemp("study")
    return root, rf.write_study(root, samples)


def make(name, root, tmp_path, inputs, settings):
    csv, md = tmp_path / f"{name}.csv", tmp_path / f"{name}.md"
    T.make_table(name, inputs, settings, csv, md)
    return pd.read_csv(csv), md.read_text()


def predictions(root, testset, model, aug):
    return pd.read_parquet(root / "results" / "predictions" / testset / model / f"{aug}.parquet")


def test_logloss_table_numbers_and_marks(study, tmp_path):
    root, _ = study
    data, md = make("dfdc_logloss", root, tmp_path, {"metrics": rf.paths(root, "metrics", "dfdc_test")},
                    {"models": rf.MODELS, "setups": rf.SETUPS})
    data = data.set_index("model")
    assert list(data.index) == rf.MODELS
    for model in rf.MODELS:
        for setup in rf.SETUPS:
            videos = predictions(root, "dfdc_test", model, setup)
            assert data.loc[model, setup] == pytest.approx(skm.log_loss(videos["label"], videos["score"]))
    # marks known by construction (results_factory.STRENGTHS)
    for model, setup in rf.BEST_LOGLOSS_SETUP.items():
        assert data.loc[model, "best_setup"] == setup
    for setup, model in rf.BEST_MODEL_PER_SETUP.items():
        assert data[f"best_for_setup_{setup}"].to_dict() == {m: m == model for m in rf.MODELS}
    # Markdown: efb4/default is best for both (bold italic), resnet50/none only per setup (italic),
    # efb4/coarse italic, resnet50/none not bold
    efb4_row = next(line for line in md.splitlines() if line.startswith("| EFB4_NS"))
    resnet_row = next(line for line in md.splitlines() if line.startswith("| resnet50"))
    cells = [c.strip() for c in efb4_row.strip("|").split("|")]
    assert cells[2] == f"***{data.loc['efb4_ns', 'default']:.4f}***"
    assert cells[3] == f"*{data.loc['efb4_ns', 'coarse']:.4f}*"
    assert cells[1] == f"{data.loc['efb4_ns', 'none']:.4f}"
    cells = [c.strip() for c in resnet_row.strip("|").split("|")]
    assert cells[1] == f"*{data.loc['resnet50', 'none']:.4f}*"
    assert cells[4] == f"***{data.loc['resnet50', 'grid']:.4f}***"
    assert md.startswith("**Table 3.1.**") and "threshold" in md.lower()
    assert "nan" not in md.lower()


@pytest.mark.parametrize("label,kind", [("fake", "augmenter"), ("real", "augmenter"), ("fake", "distractor"), ("real", "distractor")])
def test_errors_by_tag_use_each_models_best_run(study, tmp_path, label, kind):
    root, results = study
    name = f"dfdc_{label}_errors_by_{kind}"
    data, md = make(name, root, tmp_path, {"metrics": rf.paths(root, "metrics", "dfdc_test")},
                    {"models": rf.MODELS, "setups": rf.SETUPS})
    data = data.set_index("tag")
    expected_tags = {"augmenter": ["blur", "noise", "none"], "distractor": ["dots", "text"]}[kind]
    assert list(data.index) == expected_tags  # sorted, the no-tag row last
    for model, setup in rf.BEST_LOGLOSS_SETUP.items():
        videos = predictions(root, "dfdc_test", model, setup)
        threshold = results["dfdc"][(model, setup)]["eer_threshold"]
        videos = videos[videos["label"] == (1 if label == "fake" else 0)]
        wrong = (videos["score"] >= threshold) != (videos["label"] == 1)
        for tag in expected_tags:
            if tag == "none":
                has = videos["tags"].map(len) == 0
            else:
                has = videos["tags"].map(lambda tags, tag=tag: f"{kind}:{tag}" in list(tags))
            assert data.loc[tag, model] == pytest.approx(100 * wrong[has].mean()), (model, tag)
        worst = data[model] == data[model].max()
        assert (data[f"worst_{model}"] == worst).all()
    if label == "fake" and kind == "augmenter":
        # noise pushes fakes towards real: every model's worst augmenter, marked bold
        assert data.loc["noise", "worst_efb4_ns"] and data.loc["noise", "worst_resnet50"]
        noise_row = next(line for line in md.splitlines() if line.startswith("| noise"))
        assert noise_row.count("**") == 4
    assert (data["threshold"] == "test_eer").all()
    assert "EFB4_NS (default)" in md and "resnet50 (grid)" in md  # the best setups, named
    efb4_threshold = results["dfdc"][("efb4_ns", "default")]["eer_threshold"]
    assert f"EFB4_NS {efb4_threshold:.4f}" in md and "Threshold:" in md


def test_celebdf_tables_at_both_thresholds(study, tmp_path):
    root, results = study
    inputs = {"metrics": rf.paths(root, "metrics", "celebdf")}
    settings = {"models": rf.MODELS, "setups": rf.SETUPS}
    sens, sens_md = make("celebdf_sensitivity_specificity", root, tmp_path, inputs, settings)
    f1, f1_md = make("celebdf_f1", root, tmp_path, inputs, settings)
    assert sorted(sens["threshold"].unique()) == ["test_eer", "validation"]
    assert sorted(f1["threshold"].unique()) == ["test_eer", "validation"]
    for model in rf.MODELS:
        for setup in rf.SETUPS:
            videos = predictions(root, "celebdf", model, setup)
            run = results["celebdf"][(model, setup)]
            for kind, threshold in (("validation", 0.45), ("test_eer", run["eer_threshold"])):
                predicted = (videos["score"] >= threshold).astype(int)
                row = sens[(sens["model"] == model) & (sens["threshold"] == kind)].iloc[0]
                assert row[f"{setup}_sensitivity"] == pytest.approx(skm.recall_score(videos["label"], predicted))
                assert row[f"{setup}_specificity"] == pytest.approx(skm.recall_score(videos["label"], predicted, pos_label=0))
                assert row[f"{setup}_threshold_value"] == pytest.approx(threshold)
                f1_row = f1[(f1["model"] == model) & (f1["threshold"] == kind)].iloc[0]
                assert f1_row[setup] == pytest.approx(skm.f1_score(videos["label"], predicted))
    for kind in ("validation", "test_eer"):
        block = f1[f1["threshold"] == kind].set_index("model")
        grid = block[rf.SETUPS].astype(float)
        for model in rf.MODELS:
            assert block.loc[model, "best_setup"] == grid.loc[model].idxmax()
        for setup in rf.SETUPS:
            assert block[f"best_for_setup_{setup}"].to_dict() == (grid[setup] == grid[setup].max()).to_dict()
    for md in (sens_md, f1_md):
        assert "validation EER threshold" in md and "the test set's own EER threshold" in md
        assert "nan" not in md.lower()
        assert "(not recorded)" in md  # no validation source in the settings: the tables do not guess


@pytest.mark.parametrize("source, words", [
    ({"kind": "dataset", "name": "dfdc_val", "flow": "test"}, "validation dataset dfdc_val"),
    ({"kind": "holdout", "fraction": 0.1, "group_by": "original", "flow": "train"}, "hold-out of 10% of the train-flow faces"),
])
def test_celebdf_tables_name_the_validation_data(study, tmp_path, source, words):
    root, _ = study
    inputs = {"metrics": rf.paths(root, "metrics", "celebdf")}
    settings = {"models": rf.MODELS, "setups": rf.SETUPS, "validation": source}
    for name in ("celebdf_sensitivity_specificity", "celebdf_f1"):
        _, md = make(name, root, tmp_path, inputs, settings)
        heading = next(line for line in md.splitlines() if line.startswith("At the run's validation EER threshold"))
        assert words in heading, heading


def test_precision_table(study, tmp_path):
    root, results = study
    rf.write_run(root, rf.dfdc_videos(), "efb4_ns", "default-fp32", 2.1)
    rf.write_history(root, "efb4_ns", "default", epochs=3, seconds=1200.0)
    rf.write_history(root, "efb4_ns", "default-fp32", epochs=3, seconds=2000.0)
    runs = ["default", "default-fp32"]
    inputs = {
        "histories": [str(root / "results" / "models" / "efb4_ns" / r / "history.csv") for r in runs],
        "metrics": [str(root / "results" / "metrics" / "dfdc_test" / "efb4_ns" / f"{r}.json") for r in runs],
    }
    study_settings = {"model": "efb4_ns", "augmentation": "default", "runs": {"fp16": 64, "fp32": 32}}
    data, md = make("precision", root, tmp_path, inputs, {"precision_study": study_settings})
    data = data.set_index("precision")
    assert data.loc["FP16", "batch_size"] == 64 and data.loc["FP32", "batch_size"] == 32
    assert data.loc["FP16", "training_seconds"] == pytest.approx(1200 + 1201 + 1202)  # 60.05 min
    assert data.loc["FP16", "training_duration"] == "1 hour 0 mins"
    assert data.loc["FP32", "training_duration"] == "1 hour 40 mins"  # 6003 s
    fp32 = predictions(root, "dfdc_test", "efb4_ns", "default-fp32")
    assert data.loc["FP32", "dfdc_log_loss"] == pytest.approx(skm.log_loss(fp32["label"], fp32["score"]))
    assert data.loc["FP16", "dfdc_log_loss"] == pytest.approx(results["dfdc"][("efb4_ns", "default")]["log_loss"])
    assert "| FP32 | 32 | 1 hour 40 mins |" in md


def test_params_table_counts_trainable_parameters(tmp_path):
    import torch

    from facesleuth.train.models import build_model

    torch.set_num_threads(1)
    data, md = make("params", tmp_path, tmp_path, {}, {"models": ["resnet10t", "mobilenetv3_small_050"], "dropout": 0.2})
    for row in data.itertuples():
        model = build_model(row.model, pretrained=False, weights=None, dropout=0.2)
        expected = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert row.parameters == expected
        assert row.parameters_millions == round(expected / 1e6, 1)
    assert data["thesis_millions"].isna().all()  # not among the thesis's eight
    assert "| resnet10t | 4.9 | – |" in md


def test_missing_run_and_bad_json_are_clear(study, tmp_path):
    root, _ = study
    with pytest.raises(T.TableError, match="no metrics for model 'efb4_ns' with setup 'grid'"):
        T.logloss_table(T.read_metrics(rf.paths(root, "metrics", "dfdc_test", setups=["none"])), rf.MODELS, ["none", "grid"])
    bad = tmp_path / "m" / "x" / "none.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{")
    with pytest.raises(T.TableError, match="not valid JSON"):
        T.read_metrics([bad])
    with pytest.raises(T.TableError, match="not found"):
        T.read_metrics([tmp_path / "absent.json"])


def test_markdown_table_escapes_and_aligns():
    md = T.markdown_table(["a", "b"], [["x|y", "1"]])
    assert md.splitlines() == ["| a | b |", "|:---|---:|", "| x\\|y | 1 |"]
    assert T.format_duration(35280) == "9 hours 48 mins"
    assert T.format_duration(42) == "42 s"
    assert T.format_duration(61) == "1 min"
    assert T.metrics_frame([]).empty


def test_errors_by_tag_without_tagged_videos_is_an_empty_table(tmp_path, samples):
    # a small test set may hold no fake video with a distractor: say so, do not fail the workflow
    videos = rf.dfdc_videos()
    videos["tags"] = [[t for t in tags if not t.startswith("distractor:")] for tags in videos["tags"]]
    for model in rf.MODELS:
        for setup in rf.SETUPS:
            rf.write_run(tmp_path, videos, model, setup, rf.STRENGTHS[(model, setup)])
    data, md = make("dfdc_fake_errors_by_distractor", tmp_path, tmp_path, {"metrics": rf.paths(tmp_path, "metrics", "dfdc_test")},
                    {"models": rf.MODELS, "setups": rf.SETUPS})
    assert data.empty and "tag" in data.columns
    assert "No fake video of the test set carries a distractor tag" in md and "Threshold:" in md


def test_errors_by_tag_on_a_test_set_without_tags_say_so_in_one_line(tmp_path, samples):
    # The released DFDC test set (labels.csv: filename,label) has no tags: the four tables are
    # still written, each with one line saying so, and nothing fails.
    videos = rf.dfdc_videos()
    videos["tags"] = [[] for _ in range(len(videos))]
    for model in rf.MODELS:
        for setup in rf.SETUPS:
            rf.write_run(tmp_path, videos, model, setup, rf.STRENGTHS[(model, setup)])
    for label in ("fake", "real"):
        for kind in ("augmenter", "distractor"):
            name = f"dfdc_{label}_errors_by_{kind}"
            data, md = make(name, tmp_path, tmp_path, {"metrics": rf.paths(tmp_path, "metrics", "dfdc_test")},
                            {"models": rf.MODELS, "setups": rf.SETUPS})
            assert data.empty, name
            body = md.split("\n\n", 1)[1]
            assert body.splitlines()[0].startswith("The test set has no augmenter or distractor tags")
            assert "Threshold:" in md
