"""Tables and figures beyond the thesis, from hand-made records (every cell known in advance)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from facesleuth.report import figures as F
from facesleuth.report import studies as R
from facesleuth.report import tables as T
from facesleuth.evaluate.metrics import evaluate
from facesleuth.report.tables import TableError, logloss_table

TESTSETS = ["dfdc_test", "celebdf", "ffpp_test"]


def _generalisation_runs():
    # auc = 0.5 + (trainset index + 1) / 10 + model index / 100 + testset index / 1000: every cell distinct
    runs = []
    for i, trainset in enumerate(["dfdc", "ffpp"]):
        for j, model in enumerate(["efb4_ns", "resnet50"]):
            for k, testset in enumerate(TESTSETS):
                runs.append({"trainset": trainset, "model": model, "aug": "default", "testset": testset,
                             "auc": 0.5 + (i + 1) / 10 + j / 100 + k / 1000})
    return runs


def test_generalisation_table_places_every_cell():
    table = R.generalisation_table(_generalisation_runs(), ["dfdc", "ffpp"], ["efb4_ns", "resnet50"], ["default"],
                                   TESTSETS, home_testsets={"dfdc": "dfdc_test", "ffpp": "ffpp_test"})
    data = table.data
    assert list(data[["trainset", "model"]].itertuples(index=False, name=None)) == [
        ("dfdc", "efb4_ns"), ("dfdc", "resnet50"), ("ffpp", "efb4_ns"), ("ffpp", "resnet50")]
    assert data.loc[3, "celebdf"] == pytest.approx(0.5 + 0.2 + 0.01 + 0.001)
    assert data.loc[0, "dfdc_test"] == pytest.approx(0.6)
    # own test set in italic, the others plain
    first = next(line for line in table.markdown.splitlines() if line.startswith("| dfdc | EFB4_NS"))
    assert "*0.600*" in first and "| 0.601 |" in first
    last = next(line for line in table.markdown.splitlines() if line.startswith("| ffpp | resnet50"))
    assert "*0.712*" in last


def test_generalisation_table_names_a_missing_cell():
    runs = [r for r in _generalisation_runs() if not (r["trainset"] == "ffpp" and r["testset"] == "celebdf")]
    with pytest.raises(TableError, match="trained on ffpp, tested on celebdf"):
        R.generalisation_table(runs, ["dfdc", "ffpp"], ["efb4_ns"], ["default"], TESTSETS)


def test_heatmap_shows_the_table():
    table = R.generalisation_table(_generalisation_runs(), ["dfdc", "ffpp"], ["efb4_ns", "resnet50"], ["default"],
                                   TESTSETS)
    fig = F.generalisation_heatmap(table.data, TESTSETS)
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(shown, table.data[TESTSETS].to_numpy())
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "0.712" in texts and len(texts) == 12


def test_heatmap_tells_below_chance_from_chance():
    # a tiny demo run scored 0.469 on the other source: the scale must not clip it to 0.5's colour
    runs = [{"trainset": "dfdc", "model": "efb4_ns", "aug": "default", "testset": t, "auc": auc}
            for t, auc in zip(TESTSETS, [0.5, 0.469, 0.31])]
    table = R.generalisation_table(runs, ["dfdc"], ["efb4_ns"], ["default"], TESTSETS)
    image = F.generalisation_heatmap(table.data, TESTSETS).axes[0].images[0]
    colours = [tuple(image.cmap(image.norm(v))) for v in (0.5, 0.469, 0.31)]
    assert len(set(colours)) == 3, colours
    assert image.get_clim() == (pytest.approx(0.3), 1.0)
    # above chance only: the scale is chance ... 1, as before
    runs = [{**r, "auc": 0.9} for r in runs]
    image = F.generalisation_heatmap(R.generalisation_table(runs, ["dfdc"], ["efb4_ns"], ["default"],
                                                            TESTSETS).data, TESTSETS).axes[0].images[0]
    assert image.get_clim() == (0.5, 1.0)


def test_calibration_table():
    records = [
        {"model": "efb4_ns", "aug": "none", "testset": "dfdc_test", "temperature": 2.0,
         "log_loss_before": 0.9, "log_loss_after": 0.6},
        {"model": "efb4_ns", "aug": "none", "testset": "celebdf", "temperature": 2.0,
         "log_loss_before": 0.5, "log_loss_after": 0.55},
        {"ensemble": "pair", "method": "mean_logit", "testset": "dfdc_test", "temperature": 0.8,
         "log_loss_before": 0.4, "log_loss_after": 0.3},
        {"ensemble": "pair", "method": "mean_logit", "testset": "celebdf", "temperature": 0.8,
         "log_loss_before": 0.45, "log_loss_after": 0.44},
    ]
    table = R.calibration_table(records, ["dfdc_test", "celebdf"])
    data = table.data.set_index("name")
    assert data.loc["EFB4_NS (none)", "dfdc_test_after"] == 0.6
    assert data.loc["Ensemble pair (mean_logit)", "temperature"] == 0.8
    assert data.loc["Ensemble pair (mean_logit)", "kind"] == "ensemble"
    row = next(line for line in table.markdown.splitlines() if line.startswith("| EFB4_NS"))
    assert "**0.6000**" in row and "| 0.5500 |" in row  # worse after calibration: not bold
    with pytest.raises(TableError, match="no calibrated metrics on \\['ffpp_test'\\]"):
        R.calibration_table(records, ["dfdc_test", "celebdf", "ffpp_test"])


def test_aggregation_table_marks_the_best_log_loss():
    records = [{"model": "resnet50", "aug": "grid", "testset": "celebdf",
                "aggregations": {"mean": {"log_loss": 0.6, "auc": 0.7}, "max_track_mean": {"log_loss": 0.5, "auc": 0.75}}}]
    table = R.aggregation_table(records, ["mean", "max_track_mean"], ["celebdf"])
    assert table.data.loc[0, "best_aggregation"] == "max_track_mean"
    assert table.data.loc[0, "mean_auc"] == 0.7
    row = next(line for line in table.markdown.splitlines() if line.startswith("| resnet50"))
    assert row.split("|")[2:6] == [" 0.6000 ", " 0.700 ", " **0.5000** ", " 0.750 "]
    with pytest.raises(TableError, match="lacks \\['median'\\]"):
        R.aggregation_table(records, ["mean", "median"], ["celebdf"])


def _metrics(strength: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.arange(40) % 2
    scores = 1 / (1 + np.exp(-(strength * (2 * labels - 1) + rng.normal(0, 1, 40))))
    videos = pd.DataFrame({"video_id": [f"v{i}" for i in range(40)], "label": labels, "score": scores,
                           "tags": [[] for _ in labels], "scored": True})
    return evaluate(videos, 0.5)


def test_ensemble_rows_join_the_thesis_tables_and_roc():
    runs = []
    for model, strength in (("efb4_ns", 2.0), ("resnet50", 1.0)):
        for setup in ("none", "default"):
            runs.append({**_metrics(strength + (setup == "default")), "model": model, "aug": setup})
    ensemble = {**_metrics(2.5, seed=1), "ensemble": "pair", "method": "mean_logit",
                "members": ["efb4_ns/default", "resnet50/default"]}
    base = logloss_table(runs, ["efb4_ns", "resnet50"], ["none", "default"])
    table = T.with_ensembles(base, [ensemble], {"log_loss": lambda r: r["log_loss"]}, {"log_loss": "Log loss"})
    assert list(table.data["kind"]) == ["run", "run", "ensemble"]
    assert table.data.loc[2, "log_loss"] == pytest.approx(ensemble["log_loss"])
    assert table.data.loc[2, "members"] == "efb4_ns/default + resnet50/default"
    assert table.data.loc[0, "default"] == pytest.approx(runs[1]["log_loss"])  # the grid is untouched
    assert f"{ensemble['log_loss']:.4f}" in table.markdown and "mean_logit:" in table.markdown
    assert T.with_ensembles(base, [], {}, {}) is base

    from facesleuth.report.figures import roc_curves

    fig = F.add_ensemble_rocs(roc_curves(runs, ["efb4_ns", "resnet50"], ["none", "default"]), [ensemble])
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[-1].get_xdata(), ensemble["roc"]["fpr"])
    assert any("Ensemble pair" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_auc_table_rows_runs_then_ensembles():
    runs = [{**_metrics(s, seed=k), "model": m, "aug": a, "testset": t}
            for k, (m, a, s) in enumerate((("efb4_ns", "none", 1.0), ("efb4_ns", "default", 2.0)))
            for t in ("dfdc_test", "celebdf")]
    ensembles = [{**_metrics(3.0, seed=9), "ensemble": "pair", "method": "mean_probability",
                  "members": ["efb4_ns/none", "efb4_ns/default"], "testset": t} for t in ("dfdc_test", "celebdf")]
    table = R.auc_table(runs, ensembles, ["efb4_ns"], ["none", "default"], ["dfdc_test", "celebdf"])
    assert list(table.data["kind"]) == ["run", "run", "ensemble"]
    assert table.data.loc[1, "celebdf"] == pytest.approx(runs[3]["auc"])
    assert table.data.loc[2, "dfdc_test"] == pytest.approx(ensembles[0]["auc"])
    with pytest.raises(TableError, match="efb4_ns/grid"):
        R.auc_table(runs, [], ["efb4_ns"], ["grid"], ["dfdc_test"])


def test_calibration_records_come_from_the_metrics_blocks():
    run = {"model": "m", "aug": "none", "testset": "celebdf",
           "calibration": {"temperature": 1.5, "log_loss_before": 0.7, "log_loss_after": 0.6, "n_videos": 10}}
    assert R.calibration_records([run]) == [{"model": "m", "aug": "none", "testset": "celebdf", "temperature": 1.5,
                                             "log_loss_before": 0.7, "log_loss_after": 0.6, "n_videos": 10}]
    with pytest.raises(TableError, match="no calibration block"):
        R.calibration_records([{"model": "m", "aug": "none", "testset": "celebdf"}])


def test_build_generalisation_reads_the_cells_in_order(tmp_path):
    from facesleuth.config import generalisation_settings

    config = {"models": ["efb4_ns"], "augmentation_setups": ["none", "default"],
              "evaluation": {"testsets": ["dfdc_test", "celebdf"]},
              "generalisation": {"training_sets": {"dfdc": {"datasets": ["dfdc_train"], "home_testset": "dfdc_test"},
                                                   "ffpp": {"datasets": ["ffpp_train"]}},
                                 "setups": ["default"]}}
    matrix = generalisation_settings(config)
    assert matrix["cells"] == [["dfdc", "efb4_ns", "default", "dfdc_test"], ["dfdc", "efb4_ns", "default", "celebdf"],
                               ["ffpp", "efb4_ns", "default", "dfdc_test"], ["ffpp", "efb4_ns", "default", "celebdf"]]
    paths = []
    for i, cell in enumerate(matrix["cells"]):
        path = tmp_path / f"{i}.json"  # the metrics file of the cell; its name says nothing
        path.write_text(json.dumps({"auc": 0.6 + i / 10}))
        paths.append(str(path))
    table = R.build_generalisation({"metrics": paths}, {"generalisation": matrix})
    np.testing.assert_allclose(table.data[["dfdc_test", "celebdf"]].to_numpy(), [[0.6, 0.7], [0.8, 0.9]])
    assert list(table.data["trainset"]) == ["dfdc", "ffpp"]
    assert "*0.600*" in table.markdown  # dfdc's own test set
    with pytest.raises(TableError, match="3 metrics files for 4 cells"):
        R.build_generalisation({"metrics": paths[:3]}, {"generalisation": matrix})
    # the heatmap outlines the training set's own test set, as the table's italic marks it
    [outline] = F.draw_generalisation({"metrics": paths}, {"generalisation": matrix})["png"].axes[0].patches
    assert (outline.get_xy(), outline.get_width(), outline.get_height()) == ((-0.5, -0.5), 1, 1)  # dfdc x dfdc_test
