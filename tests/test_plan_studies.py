"""Planning the studies beyond the thesis (dry runs on empty dataset files; nothing is computed).

The thesis config plans none of them; config/extended.yaml plans every one; adding a test set to
a finished study plans only that test set's extraction, predictions and metrics (and the tables
and figure that show every test set).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from test_workflow import REPO, build_thesis_tree, new_workdir, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

STUDY_RULES = {"aggregation_study", "ensemble_validate", "ensemble_test", "train_trainset", "validate_trainset",
               "predict_trainset", "metrics_trainset", "table_aggregations", "table_auc", "table_calibration_logloss",
               "table_generalisation_auc", "figure_generalisation_auc"}


def build_ffpp_tree(root: Path) -> Path:
    """Empty files in FaceForensics++'s layout, with official split files of one pair each."""
    for rel in ["original_sequences/youtube/c23/videos/000.mp4", "original_sequences/youtube/c23/videos/001.mp4",
                "original_sequences/youtube/c23/videos/002.mp4", "original_sequences/youtube/c23/videos/003.mp4",
                "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4",
                "manipulated_sequences/Deepfakes/c23/videos/002_003.mp4"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).touch()
    (root / "splits").mkdir()
    (root / "splits" / "train.json").write_text(json.dumps([["000", "001"]]))
    (root / "splits" / "test.json").write_text(json.dumps([["002", "003"]]))
    return root


def study_configs(tmp_path: Path) -> tuple[Path, dict, dict]:
    """A work folder with thesis.yaml (real layouts, two models) and extended.yaml pointing at them."""
    roots = build_thesis_tree(tmp_path / "data")
    ffpp = build_ffpp_tree(tmp_path / "data" / "ffpp")
    workdir = new_workdir(tmp_path / "work")
    thesis = yaml.safe_load((REPO / "config" / "thesis.yaml").read_text())
    for name, root in roots.items():
        thesis["datasets"][name]["root"] = str(root)
        thesis["datasets"][name]["chunks"] = 2
    thesis["models"] = ["efb0_ns", "resnet50"]
    extended = yaml.safe_load((REPO / "config" / "extended.yaml").read_text())
    for name in ("ffpp_train", "ffpp_test"):
        extended["datasets"][name]["root"] = str(ffpp)
    (workdir / "config" / "thesis.yaml").write_text(yaml.safe_dump(thesis, sort_keys=False))
    return workdir, thesis, extended


def plan(workdir: Path, *configfiles: str) -> str:
    return snakemake(workdir, "-n", "--cores", "12", "--configfile", *configfiles).stdout


def test_the_thesis_plans_no_study_and_extended_plans_them_all(tmp_path):
    workdir, thesis, extended = study_configs(tmp_path)
    assert not STUDY_RULES & set(planned_jobs(plan(workdir, "config/thesis.yaml")))

    (workdir / "config" / "extended.yaml").write_text(yaml.safe_dump(extended, sort_keys=False))
    planned = planned_jobs(plan(workdir, "config/thesis.yaml", "config/extended.yaml"))
    assert STUDY_RULES <= set(planned), STUDY_RULES - set(planned)
    grid = len(extended["models"]) * len(thesis["augmentation_setups"])
    ffpp_runs = len(extended["models"]) * len(extended["generalisation"]["setups"])
    testsets = len(extended["evaluation"]["testsets"])
    assert planned["splits"] == 2  # the grid's (DFDC) and FF++'s; the dfdc training set is the grid's
    assert planned["train"] == grid + 1  # + the precision study's fp32 run
    assert planned["train_trainset"] == planned["validate_trainset"] == ffpp_runs
    assert planned["predict_trainset"] == planned["metrics_trainset"] == ffpp_runs * testsets
    assert planned["predict"] == grid * testsets + 1
    assert planned["ensemble_validate"] == len(extended["ensembles"])
    assert planned["ensemble_test"] == len(extended["ensembles"]) * testsets
    assert planned["aggregation_study"] == testsets


def test_adding_a_test_set_plans_only_its_extraction_predictions_and_metrics(tmp_path):
    workdir, thesis, extended = study_configs(tmp_path)
    extended["models"] = ["efb0_ns", "resnet50"]
    extended["ensembles"] = {"pair": {"runs": ["efb0_ns/default", "resnet50/default"], "method": "mean_logit"}}
    ffpp_test = extended["datasets"].pop("ffpp_test")
    extended["evaluation"]["testsets"] = ["dfdc_test", "celebdf"]
    extended["generalisation"]["training_sets"]["ffpp"]["home_testset"] = None
    (workdir / "config" / "extended.yaml").write_text(yaml.safe_dump(extended, sort_keys=False))
    configs = ("config/thesis.yaml", "config/extended.yaml")

    # a finished study: every output present (empty) and touched in the DAG's order
    outputs = {path.strip() for line in plan(workdir, *configs).splitlines()
               for match in [re.match(r"\s+output: (.*)", line)] if match for path in match.group(1).split(",")}
    for path in outputs:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).touch()
    snakemake(workdir, "--touch", "--cores", "1", "--configfile", *configs)
    assert "Nothing to be done" in plan(workdir, *configs)

    extended["datasets"]["ffpp_test"] = ffpp_test
    extended["evaluation"]["testsets"].append("ffpp_test")
    extended["generalisation"]["training_sets"]["ffpp"]["home_testset"] = "ffpp_test"
    (workdir / "config" / "extended.yaml").write_text(yaml.safe_dump(extended, sort_keys=False))
    planned = planned_jobs(plan(workdir, *configs))
    grid = len(extended["models"]) * len(thesis["augmentation_setups"])
    ffpp_runs = len(extended["models"]) * len(extended["generalisation"]["setups"])
    assert planned == {
        "manifest": 1, "extract_faces": ffpp_test["chunks"], "extraction_summary": 1,
        "predict": grid, "metrics": grid, "predict_trainset": ffpp_runs, "metrics_trainset": ffpp_runs,
        "aggregation_study": 1, "ensemble_test": 1,
        # the tables and the figure that show every test set
        "table_aggregations": 1, "table_auc": 1, "table_generalisation_auc": 1, "figure_generalisation_auc": 1,
        "all": 1,
    }
