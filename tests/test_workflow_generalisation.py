"""The generalisation matrix run end to end on a small demo: two training sets, each trained with
the tiny settings of tests/train_settings.py, tested on both demo test sets; the table and its
heatmap are checked against scikit-learn on the predictions the workflow wrote.

The demo has one DFDC-style training set; the second is the demo's Celeb-DF-v2 folder read in the
train flow (every video, no testing list). It holds the videos of the celebdf test set too, so its
home column measures nothing: this test checks the machinery, not generalisation.
"""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
from test_workflow import demo_config, new_workdir, planned_jobs, snakemake
from train_settings import TINY_RUN

pytestmark = pytest.mark.workflow

TARGETS = ("results/tables/generalisation_auc.csv", "results/figures/generalisation_auc.png")


def matrix_config() -> dict:
    """The demo, shrunk to what two training sets x two test sets need: one model, one setup."""
    config = demo_config()
    config["demo"].update(train_parts=1, originals_per_part=8, test_videos=8, celebdf_videos=12, frames=12)
    config["datasets"]["dfdc_train"]["chunks"] = 1
    config["datasets"]["celebdf_train"] = {"format": "celebdf", "root": config["datasets"]["celebdf"]["root"],
                                           "flow": "train", "chunks": 1}
    config["models"] = [TINY_RUN["model"]]
    config["augmentation_setups"] = ["none"]
    config["training"].update(copy.deepcopy(TINY_RUN["training"]))
    for study in ("precision_study", "robustness"):  # they name runs outside this grid
        config.pop(study)
    config["ensembles"] = {}
    config["baselines"] = {}  # the grid alone: a baseline has a row of its own (tests/test_baselines.py)
    config["generalisation"] = {"training_sets": {
        "dfdc": {"datasets": ["dfdc_train"], "home_testset": "dfdc_test"},  # the grid's own split and run
        "celeb": {"datasets": ["celebdf_train"], "home_testset": "celebdf"},
    }}
    return config


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory):
    config = matrix_config()
    workdir = new_workdir(tmp_path_factory.mktemp("generalisation"), config)
    snakemake(workdir, "--cores", "2", *TARGETS)
    return workdir, config


def predictions_of(workdir, trainset: str, testset: str, run: str) -> pd.DataFrame:
    """The video predictions the workflow wrote for one cell (the grid's own, for the grid's training set)."""
    if trainset == "dfdc":
        return pd.read_parquet(workdir / "results" / "predictions" / testset / f"{run}.parquet")
    return pd.read_parquet(workdir / "results" / "trainsets" / trainset / "predictions" / testset / f"{run}.parquet")


def test_every_cell_is_the_auc_of_its_runs_predictions(matrix_run):
    from sklearn.metrics import roc_auc_score

    workdir, config = matrix_run
    model, setup = config["models"][0], config["augmentation_setups"][0]
    testsets = config["evaluation"]["testsets"]
    table = pd.read_csv(workdir / "results" / "tables" / "generalisation_auc.csv")
    assert list(table["trainset"]) == list(config["generalisation"]["training_sets"])
    assert [c for c in table.columns if c in config["evaluation"]["testsets"]] == testsets
    assert set(table.columns) == {"trainset", "model", "aug", "name", *testsets}
    assert (table["model"] == model).all() and (table["aug"] == setup).all()
    cells = {}
    for row in table.itertuples(index=False):
        for testset in testsets:
            videos = predictions_of(workdir, row.trainset, testset, f"{model}/{setup}")
            manifest = pd.read_parquet(workdir / "results" / "manifests" / f"{testset}.parquet")
            # every video of the test set is scored (a video without faces gets the no-face score)
            assert sorted(videos["video_id"]) == sorted(manifest["video_id"]), (row.trainset, testset)
            expected = roc_auc_score(videos["label"], videos["score"])
            assert getattr(row, testset) == pytest.approx(expected), (row.trainset, testset)
            cells[row.trainset, testset] = expected
    # two runs, not one run read twice
    assert not all(math.isclose(cells["dfdc", t], cells["celeb", t]) for t in testsets), cells
    markdown = (workdir / "results" / "tables" / "generalisation_auc.md").read_text()
    assert f"*{cells['dfdc', 'dfdc_test']:.3f}*" in markdown and f"*{cells['celeb', 'celebdf']:.3f}*" in markdown


def test_each_training_set_trains_on_its_own_split(matrix_run):
    workdir, config = matrix_run
    results = workdir / "results"
    for trainset, split in (("dfdc", "dfdc_train"), ("celeb", "celeb")):
        faces = pd.read_parquet(results / "splits" / f"{split}.parquet")
        datasets = config["generalisation"]["training_sets"][trainset]["datasets"]
        assert set(faces["dataset"]) == set(datasets), trainset
        assert set(faces["split"]) == {"train", "val"}, trainset
        manifest = pd.concat(pd.read_parquet(results / "manifests" / f"{d}.parquet") for d in datasets)
        assert set(faces["video_id"]) <= set(manifest["video_id"])
    run = f"{config['models'][0]}/{config['augmentation_setups'][0]}"
    for folder in (results / "models" / run, results / "trainsets" / "celeb" / "models" / run):
        history = pd.read_csv(folder / "history.csv")
        assert len(history) == config["training"]["epochs"], folder
        assert (folder / "best.pt").stat().st_size > 0


def test_heatmap_is_an_image_and_the_matrix_is_complete(matrix_run):
    import matplotlib.image

    workdir, _ = matrix_run
    pixels = matplotlib.image.imread(workdir / "results" / "figures" / "generalisation_auc.png")
    assert pixels.ndim == 3 and pixels.shape[0] >= 200 and pixels.shape[1] >= 400, pixels.shape
    assert pixels[..., :3].std() > 0.05, "the heatmap is blank"
    planned = planned_jobs(snakemake(workdir, "-n", "--cores", "2", *TARGETS).stdout)
    assert planned == {}, f"a finished matrix still plans jobs: {planned}"
