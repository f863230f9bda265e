"""Workflow tests: Snakemake on the demo config (end to end), config validation, the thesis
dry run on a tree of empty files in the real layouts, and the cache (what a change reruns).

The demo runs once per session in a temporary working directory; the tests after it read its
outputs and plan reruns against it.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 3600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    # cwd=workdir: relative paths in options (--configfile config/thesis.yaml) mean the workdir's files
    result = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-5000:]}\n{result.stderr[-8000:]}"
        )
    return result


def new_workdir(base: Path, config: dict | None = None) -> Path:
    """A working directory with config/ as in the repo (optionally with config.yaml replaced)."""
    base.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "config", base / "config")
    if config is not None:
        (base / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return base


def planned_jobs(dry_run_output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table a dry run prints."""
    counts: dict[str, int] = {}
    in_table = False
    for line in dry_run_output.splitlines():
        if line.startswith("job") and "count" in line:
            in_table = True
            continue
        if in_table:
            match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if match and match.group(1) != "total":
                counts[match.group(1)] = int(match.group(2))
            elif line.strip().startswith("total"):
                break
    return counts


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The README's main job on the embedded demo, in a fresh working directory."""
    workdir = new_workdir(tmp_path_factory.mktemp("demo"))
    snakemake(workdir, "--cores", "2")
    return workdir


def test_demo_produces_every_table_and_figure(demo_run: Path) -> None:
    planned = planned_jobs(snakemake(demo_run, "-n", "--cores", "2").stdout)
    assert planned == {}, f"a complete demo run still plans jobs: {planned}"
    tables = sorted(p.name for p in (demo_run / "results" / "tables").glob("*.csv"))
    figures = sorted(p.name for p in (demo_run / "results" / "figures").glob("*.png"))
    for name in [
        "params.csv",
        "precision.csv",
        "dfdc_logloss.csv",
        "dfdc_fake_errors_by_distractor.csv",
        "dfdc_real_errors_by_distractor.csv",
        "dfdc_fake_errors_by_augmenter.csv",
        "dfdc_real_errors_by_augmenter.csv",
        "celebdf_sensitivity_specificity.csv",
        "celebdf_f1.csv",
        "calibration_logloss.csv",
        "aggregations.csv",
    ]:
        assert name in tables
        assert (demo_run / "results" / "tables" / name.replace(".csv", ".md")).stat().st_size > 0
    assert len(figures) >= 16, figures
    for png in (demo_run / "results" / "figures").glob("*.png"):
        assert png.stat().st_size > 5_000, f"{png.name} looks empty"


def test_demo_report_captions_every_table_and_figure(demo_run: Path, tmp_path: Path) -> None:
    """snakemake --report renders the package's caption files with each rule's caption words:
    every table names the validation data its runs' epochs were chosen on (the demo's hold-out)."""
    report = tmp_path / "report.zip"
    snakemake(demo_run, "--report", str(report))
    import zipfile

    with zipfile.ZipFile(report) as archive:
        text = "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
                         if name.endswith((".html", ".js", ".json")))
    fraction = demo_config()["splits"]["validation_fraction"]
    holdout = f"a hold-out of {fraction:.0%} of the train-flow faces"
    assert holdout in text, "the captions do not name the demo's validation data"
    assert "snakemake.params" not in text  # every template was rendered
    for caption in ("video log loss (thesis eq. 3.1;", "sensitivity (fakes called fake, eq. 3.2)",
                    "DFDC video log loss of every model trained with the default chain plus CoarseDropout"):
        assert caption in text, caption


def test_demo_runs_are_marked_as_trained_on_synthetic_faces(demo_run: Path) -> None:
    runs = sorted((demo_run / "results" / "models").glob("*/*/run.yaml"))
    assert runs
    for path in runs:
        info = yaml.safe_load(path.read_text())
        assert info["trained_on_demo"] is True, path
        assert any("synthetic faces" in limit and "not validated on real media" in limit
                   for limit in info["limits"]), path
        train_flow = demo_config()["extraction"].get("train_flow", {})
        assert info["frames"] == {"frame_policy": train_flow.get("frame_policy", "nearest_reference"),
                                  "max_frame_offset": train_flow.get("max_frame_offset", 2)}, path
        # the demo's crops (config/config.yaml: faces of 40 px or more, 12 px margins, found at 192 px),
        # the rest the schema's defaults
        assert info["face_crops"] == {"detect_max_side": 192, "thresholds": [0.6, 0.7, 0.7], "min_detection_size": 20,
                                      "min_probability": 0.9, "min_face_size": 40, "margin": 12,
                                      "jpeg_quality": 95}, path


def test_demo_logloss_table_covers_the_grid(demo_run: Path) -> None:
    config = demo_config()
    table = pd.read_csv(demo_run / "results" / "tables" / "dfdc_logloss.csv")
    # the configured ensembles, then the baselines, follow the grid as rows of their own
    assert list(table["kind"]) == (["run"] * len(config["models"]) + ["ensemble"] * len(config["ensembles"])
                                   + ["baseline"] * len(config["baselines"]))
    table = table[table["kind"] == "run"]
    for setup in config["augmentation_setups"]:
        column = [c for c in table.columns if c == setup]
        assert column, f"no column for setup {setup!r} in {list(table.columns)}"
        values = table[setup].astype(float)
        assert all(math.isfinite(v) and v > 0 for v in values)


def test_demo_studies_match_an_independent_computation(demo_run: Path) -> None:
    """Calibration, aggregations and the ensemble of the demo, recomputed here with scipy, pandas and sklearn."""
    from scipy import special
    from sklearn.metrics import log_loss, roc_auc_score

    config = demo_config()
    results = demo_run / "results"
    name, ensemble_config = next(iter(config["ensembles"].items()))
    model, setup = ensemble_config["runs"][0].split("/")
    videos = pd.read_parquet(results / "predictions" / "celebdf" / model / f"{setup}.parquet")
    temperature = json.loads((results / "models" / model / setup / "calibration.json").read_text())["temperature"]
    calibration = pd.read_csv(results / "tables" / "calibration_logloss.csv")
    row = calibration[(calibration["model"] == model) & (calibration["aug"] == setup)].iloc[0]
    assert row["celebdf_before"] == pytest.approx(log_loss(videos["label"], videos["score"]))
    calibrated = special.expit(special.logit(videos["score"].clip(1e-15, 1 - 1e-15)) / temperature)
    assert row["celebdf_after"] == pytest.approx(log_loss(videos["label"], calibrated))

    faces = pd.read_parquet(results / "predictions" / "dfdc_test" / model / f"{setup}.faces.parquet")
    top3 = faces.groupby("video_id")["score"].apply(lambda s: s.nlargest(3).mean())
    dfdc = pd.read_parquet(results / "predictions" / "dfdc_test" / model / f"{setup}.parquet").set_index("video_id")
    scores = top3.reindex(dfdc.index).fillna(config["evaluation"].get("no_face_score", 0.5))
    aggregations = pd.read_csv(results / "tables" / "aggregations.csv")
    row = aggregations[(aggregations["testset"] == "dfdc_test") & (aggregations["model"] == model)
                       & (aggregations["aug"] == setup)].iloc[0]
    assert row["top3_mean_log_loss"] == pytest.approx(log_loss(dfdc["label"], scores))
    assert row["top3_mean_auc"] == pytest.approx(roc_auc_score(dfdc["label"], scores))

    members = [pd.read_parquet(results / "predictions" / "dfdc_test" / f"{run}.parquet").set_index("video_id")
               for run in ensemble_config["runs"]]
    joined = special.expit(sum(special.logit(m["score"].clip(1e-15, 1 - 1e-15)) for m in members) / len(members))
    assert ensemble_config["method"] == "mean_logit"
    ensemble = json.loads((results / "ensembles" / name / "metrics" / "dfdc_test.json").read_text())
    assert ensemble["auc"] == pytest.approx(roc_auc_score(members[0]["label"], joined))
    assert (results / "ensembles" / name / "ensemble.yaml").is_file()


def test_demo_tables_hold_the_mesonet_baseline_scored_as_sklearn_does(demo_run: Path) -> None:
    """The demo's baseline (the shipped Meso-4 DF): its rows in Tables 3.1, 3.6, 3.7 and the
    robustness table, recomputed from its predictions with scikit-learn, on the same videos as the grid's."""
    from sklearn.metrics import f1_score, log_loss, recall_score, roc_auc_score

    config = demo_config()
    assert config["baselines"] == ["Meso4_DF"]
    results, name = demo_run / "results", "Meso4_DF"
    tables = {t: pd.read_csv(results / "tables" / f"{t}.csv")
              for t in ("dfdc_logloss", "celebdf_f1", "celebdf_sensitivity_specificity", "robustness_auc")}
    videos = {t: pd.read_parquet(results / "baselines" / name / "predictions" / f"{t}.parquet")
              for t in ("dfdc_test", "celebdf")}
    grid_run = pd.read_parquet(results / "predictions" / "dfdc_test" / config["models"][0] / "default.parquet")
    assert sorted(videos["dfdc_test"]["video_id"]) == sorted(grid_run["video_id"])  # the same test videos
    dfdc = videos["dfdc_test"]
    row = tables["dfdc_logloss"].query("kind == 'baseline'").iloc[0]
    assert row["model"] == name and row["aug"] == "baseline"
    assert row["log_loss"] == pytest.approx(log_loss(dfdc["label"], dfdc["score"].clip(1e-15, 1 - 1e-15)))
    assert "not trained by the pipeline" in (results / "tables" / "dfdc_logloss.md").read_text().lower()
    celebdf = videos["celebdf"]
    y, score = celebdf["label"], celebdf["score"]
    f1_row = tables["celebdf_f1"].query("kind == 'baseline'").iloc[0]
    assert f1_row["f1_validation"] == pytest.approx(f1_score(y, score >= 0.5, zero_division=0))  # run.yaml's 0.5
    ss_row = tables["celebdf_sensitivity_specificity"].query("kind == 'baseline'").iloc[0]
    assert ss_row["sensitivity_validation"] == pytest.approx(recall_score(y, score >= 0.5, zero_division=0))
    assert ss_row["specificity_validation"] == pytest.approx(recall_score(1 - y, score < 0.5, zero_division=0))
    robust = tables["robustness_auc"].set_index("run").loc[f"{name}/baseline"]
    assert robust["clean"] == pytest.approx(roc_auc_score(dfdc["label"], dfdc["score"]))
    perturbed = pd.read_parquet(results / "baselines" / name / "robustness" / "dfdc_test" / "jpeg_20.parquet")
    assert robust["jpeg_20"] == pytest.approx(roc_auc_score(perturbed["label"], perturbed["score"]))


def test_demo_learns(demo_run: Path) -> None:
    """The demo's promise: video ROC-AUC of at least 0.8 on the demo's own test set for the best setup."""
    aucs = {}
    for path in (demo_run / "results" / "metrics" / "dfdc_test").glob("*/*.json"):
        aucs[f"{path.parent.name}/{path.stem}"] = json.loads(path.read_text())["auc"]
    assert aucs, "no metrics were written"
    best = max(aucs, key=aucs.get)
    assert aucs[best] >= 0.8, f"best demo run {best} reaches AUC {aucs[best]:.3f}: {aucs}"


def test_every_demo_video_has_one_status_row(demo_run: Path) -> None:
    for dataset in demo_config()["datasets"]:
        manifest = pd.read_parquet(demo_run / "results" / "manifests" / f"{dataset}.parquet")
        status = pd.read_parquet(demo_run / "results" / "faces" / dataset / "status.parquet")
        assert sorted(status["video_id"]) == sorted(manifest["video_id"])


def test_demo_manifests_faces_and_splits_agree_with_the_generated_dataset(demo_run: Path) -> None:
    """Labels and originals survive every stage: demo.json -> manifests -> faces -> splits."""
    generated = json.loads((demo_run / "resources" / "demo" / "demo.json").read_text())
    for dataset in demo_config()["datasets"]:
        manifest = pd.read_parquet(demo_run / "results" / "manifests" / f"{dataset}.parquet")
        expected = {
            Path(r["path"]).as_posix(): r["label"]
            for r in generated["videos"]
            if r["dataset"] == dataset and r.get("listed", True)
        }
        rows = {Path(p).relative_to("resources/demo").as_posix(): int(label) for p, label in zip(manifest["path"], manifest["label"])}
        assert rows == expected, f"{dataset}: the manifest's videos or labels differ from what the demo generated"
        assert manifest["video_id"].is_unique
        assert (manifest["status"] == "ok").all(), manifest[manifest["status"] != "ok"]

        faces = pd.concat(pd.read_parquet(p) for p in sorted((demo_run / "results" / "faces" / dataset).glob("[0-9]*[0-9].parquet")))
        by_video = dict(zip(manifest["video_id"], manifest["label"]))
        assert (faces["video_id"].map(by_video) == faces["label"]).all(), f"{dataset}: a face carries another label than its video"
        status = pd.read_parquet(demo_run / "results" / "faces" / dataset / "status.parquet")
        kept = faces.groupby("video_id").size()
        assert (status.set_index("video_id")["faces_kept"].reindex(kept.index) == kept).all(), f"{dataset}: status counts differ from the faces"

    manifest = pd.read_parquet(demo_run / "results" / "manifests" / "dfdc_train.parquet")
    fakes = manifest[manifest["label"] == 1]
    assert set(fakes["original"]) <= set(manifest.loc[manifest["label"] == 0, "video_id"])
    split = pd.read_parquet(demo_run / "results" / "splits" / "dfdc_train.parquet")
    sides = split.groupby("video_id")["split"].nunique()
    assert (sides == 1).all(), "a video has faces on both sides of the train/validation split"
    # group_by: original keeps a real and its fakes together
    family = split["original"].fillna(split["video_id"]).where(split["label"] == 1, split["video_id"])
    assert (split.groupby(family)["split"].nunique() == 1).all(), "a fake and its original fall in different splits"


def test_changed_training_setting_reruns_training_and_downstream_only(demo_run: Path) -> None:
    config = demo_config()
    config["training"]["lr"] = config["training"].get("lr", 1e-4) * 2
    (demo_run / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        planned = planned_jobs(snakemake(demo_run, "-n", "--cores", "2").stdout)
    finally:
        shutil.copy(REPO / "config" / "config.yaml", demo_run / "config" / "config.yaml")
    runs = len(config["models"]) * len(config["augmentation_setups"])
    assert planned.get("train", 0) >= runs
    assert planned.get("validate", 0) >= runs
    assert planned.get("predict", 0) >= runs * len(config["evaluation"]["testsets"])
    assert planned.get("metrics", 0) >= runs * len(config["evaluation"]["testsets"])
    assert any(rule.startswith("table_") for rule in planned), planned
    for upstream in ("demo_dataset", "manifest", "extract_faces", "extraction_summary", "splits"):
        assert upstream not in planned, f"changing training.lr replans {upstream}: {planned}"


def test_changed_test_flow_setting_does_not_rerun_train_extraction(demo_run: Path) -> None:
    config = demo_config()
    config["extraction"]["test_flow"]["faces_per_video"] += 1
    (demo_run / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        planned = planned_jobs(snakemake(demo_run, "-n", "--cores", "2").stdout)
    finally:
        shutil.copy(REPO / "config" / "config.yaml", demo_run / "config" / "config.yaml")
    assert "extract_faces" in planned, planned
    test_chunks = sum(d["chunks"] for d in config["datasets"].values() if d["flow"] == "test")
    assert planned["extract_faces"] == test_chunks, "train-flow chunks were replanned too"
    assert "train" not in planned and "splits" not in planned


def test_changed_train_frame_policy_reruns_train_extraction_not_test_extraction(demo_run: Path) -> None:
    config = demo_config()
    config["extraction"].setdefault("train_flow", {})["frame_policy"] = "exact"
    (demo_run / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        planned = planned_jobs(snakemake(demo_run, "-n", "--cores", "2").stdout)
    finally:
        shutil.copy(REPO / "config" / "config.yaml", demo_run / "config" / "config.yaml")
    train_chunks = sum(d["chunks"] for d in config["datasets"].values() if d["flow"] == "train")
    assert planned.get("extract_faces") == train_chunks, "test-flow chunks were replanned too"
    assert "demo_dataset" not in planned and "manifest" not in planned


def test_onnx_predictions_rerun_only_scoring_and_agree_with_torch(demo_run: Path, tmp_path: Path) -> None:
    """evaluation.backend: onnx replans the scoring rules and what reads their scores, nothing
    upstream; one predict job run with it (in a copy of the demo) scores every face as torch did."""
    pytest.importorskip("onnxruntime")
    config = demo_config()
    config["evaluation"]["backend"] = "onnx"
    copy = tmp_path / "demo"
    shutil.copytree(demo_run, copy, symlinks=True, ignore=shutil.ignore_patterns("onnx"))
    (copy / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    planned = planned_jobs(snakemake(copy, "-n", "--cores", "2").stdout)
    runs = len(config["models"]) * len(config["augmentation_setups"])
    assert planned.get("predict", 0) == runs * len(config["evaluation"]["testsets"])
    assert planned.get("validate", 0) == runs and "metrics" in planned
    for upstream in ("demo_dataset", "manifest", "extract_faces", "splits", "train"):
        assert upstream not in planned, f"changing evaluation.backend replans {upstream}: {planned}"

    model, target = config["models"][0], "results/predictions/dfdc_test/{}/none.faces.parquet"
    torch_scores = pd.read_parquet(demo_run / target.format(model))
    snakemake(copy, "--cores", "2", target.format(model), "--allowed-rules", "predict")
    onnx_scores = pd.read_parquet(copy / target.format(model))
    assert (copy / "results/models" / model / "none/onnx").is_dir()
    assert onnx_scores["face_id"].tolist() == torch_scores["face_id"].tolist() and len(onnx_scores) > 10
    difference = (onnx_scores["score"] - torch_scores["score"]).abs()
    assert difference.max() <= 1e-4 and difference.max() * 10 < torch_scores["score"].std()


def test_tracking_turned_on_reruns_nothing_and_the_workflow_end_logs_the_study(demo_run: Path, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    config = demo_config()
    store = tmp_path / "mlflow.db"
    config["tracking"] = {"backends": ["mlflow", "tensorboard"], "experiment": "demo", "mlflow_uri": str(store)}
    (demo_run / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        planned = planned_jobs(snakemake(demo_run, "-n", "--cores", "2").stdout)
        assert planned == {}, f"turning tracking on plans jobs: {planned}"
        # one job, so that the workflow ends and its onsuccess logs what results/ holds
        snakemake(demo_run, "--cores", "2", "--forcerun", "table_params")
    finally:
        shutil.copy(REPO / "config" / "config.yaml", demo_run / "config" / "config.yaml")
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("demo")
    found = client.search_runs([experiment.experiment_id], max_results=1000)
    runs = {r.info.run_name: r for r in found}
    assert len(runs) == len(found), "a run was tracked twice (training, then the workflow's end)"
    folders = sorted((demo_run / "results" / "models").glob("*/*/run.yaml"))
    assert folders
    for folder in (path.parent for path in folders):
        run = runs[f"{folder.parent.name}/{folder.name}"]
        history = pd.read_csv(folder / "history.csv")
        assert [m.value for m in client.get_metric_history(run.info.run_id, "val_loss")] == history["val_loss"].tolist()
        for metrics_file in (demo_run / "results" / "metrics").glob(f"*/{folder.parent.name}/{folder.name}.json"):
            record = json.loads(metrics_file.read_text())
            for key in ("auc", "log_loss", "eer"):
                assert run.data.metrics[f"{record['testset']}/{key}"] == record[key]
            assert run.data.metrics[f"{record['testset']}/at_threshold/validation/tp"] == \
                record["at_threshold"]["validation"]["tp"]
    for name in config.get("ensembles") or {}:
        assert f"ensemble/{name}" in runs
    robustness = pd.read_csv(demo_run / "results" / "tables" / "robustness_auc.csv")
    assert sum(name.startswith("robustness/") for name in runs) == len(robustness)
    assert "tracking:" in (demo_run / "logs" / "tracking" / "results.log").read_text()


def test_wrong_config_fails_before_any_job_naming_the_key(tmp_path: Path) -> None:
    config = demo_config()
    config["training"]["precision"] = "fp8"
    workdir = new_workdir(tmp_path / "typo", config)
    result = snakemake(workdir, "--cores", "1", check=False)
    assert result.returncode != 0
    assert "training.precision" in result.stderr + result.stdout
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()

    config = demo_config()
    config["trainnig"] = {"epochs": 1}
    workdir = new_workdir(tmp_path / "unknown", config)
    result = snakemake(workdir, "--cores", "1", check=False)
    assert result.returncode != 0
    assert "trainnig" in result.stderr + result.stdout

    config = demo_config()
    config["baselines"] = ["runs/no_such_run"]
    workdir = new_workdir(tmp_path / "baseline", config)
    result = snakemake(workdir, "--cores", "1", check=False)
    assert result.returncode != 0
    assert "baseline 'runs/no_such_run'" in result.stderr + result.stdout and "weights import" in result.stderr
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()


def build_thesis_tree(root: Path) -> dict[str, Path]:
    """Empty files in the real layouts of DFDC train, DFDC test, DFDC validation and Celeb-DF-v2."""
    dfdc_train = root / "dfdc" / "train"
    for part in range(50):
        folder = dfdc_train / f"dfdc_train_part_{part}"
        folder.mkdir(parents=True)
        metadata = {
            f"real{part}.mp4": {"label": "REAL", "split": "train", "original": None},
            f"fake{part}.mp4": {"label": "FAKE", "split": "train", "original": f"real{part}.mp4"},
        }
        (folder / "metadata.json").write_text(json.dumps(metadata))
        for name in metadata:
            (folder / name).touch()
    dfdc_test = root / "dfdc" / "test"
    dfdc_test.mkdir(parents=True)
    rows = ["filename,label,augmenters,distractors"]
    for i in range(10):
        (dfdc_test / f"t{i}.mp4").touch()
        rows.append(f"t{i}.mp4,{i % 2},noise,text")
    (dfdc_test / "labels.csv").write_text("\n".join(rows) + "\n")
    # DFDC's validation set as released: the test set's layout, labels.csv with filename,label only
    dfdc_val = root / "dfdc" / "validation"
    dfdc_val.mkdir(parents=True)
    rows = ["filename,label"]
    for i in range(8):
        (dfdc_val / f"v{i}.mp4").touch()
        rows.append(f"v{i}.mp4,{i % 2}")
    (dfdc_val / "labels.csv").write_text("\n".join(rows) + "\n")
    celebdf = root / "Celeb-DF-v2"
    for folder, name in [("Celeb-real", "id0_0000"), ("YouTube-real", "00000"), ("Celeb-synthesis", "id0_id1_0000")]:
        (celebdf / folder).mkdir(parents=True)
        (celebdf / folder / f"{name}.mp4").touch()
    (celebdf / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n1 YouTube-real/00000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n"
    )
    return {"dfdc_train": dfdc_train, "dfdc_test": dfdc_test, "dfdc_val": dfdc_val, "celebdf": celebdf}


def thesis_workdir(tmp_path: Path, splits: dict | None = None) -> tuple[Path, dict]:
    """A working directory whose config/thesis.yaml points at a tree of empty files (``splits`` merged in)."""
    roots = build_thesis_tree(tmp_path / "data")
    thesis = yaml.safe_load((REPO / "config" / "thesis.yaml").read_text())
    for name, root in roots.items():
        thesis["datasets"][name]["root"] = str(root)
    thesis["splits"].update(splits or {})
    workdir = new_workdir(tmp_path / "work")
    (workdir / "config" / "thesis.yaml").write_text(yaml.safe_dump(thesis, sort_keys=False))
    return workdir, thesis


def planned_inputs(dry_run_output: str, rule: str) -> list[list[str]]:
    """The input files of each planned job of ``rule``, from a dry run's job listing."""
    lines = dry_run_output.splitlines()
    jobs = []
    for i, line in enumerate(lines):
        if line.strip() in (f"rule {rule}:", f"localrule {rule}:"):
            inputs = next((l.strip() for l in lines[i + 1 : i + 4] if l.strip().startswith("input:")), "input:")
            jobs.append([name.strip() for name in inputs.removeprefix("input:").split(",") if name.strip()])
    return jobs


def test_thesis_dry_run_plans_every_job_of_the_study(tmp_path: Path) -> None:
    workdir, thesis = thesis_workdir(tmp_path)
    planned = planned_jobs(snakemake(workdir, "-n", "--cores", "12", "--configfile", "config/thesis.yaml").stdout)

    grid = len(thesis["models"]) * len(thesis["augmentation_setups"])  # 32 runs
    assert grid == 32
    # Table 2.3: the fp16 run at batch 64 is the grid's own; fp32 at batch 32 is one more run.
    runs = grid + 1
    testsets = thesis["evaluation"]["testsets"]
    # DFDC train, test and validation, Celeb-DF-v2
    assert planned["manifest"] == 4
    assert planned["extract_faces"] == sum(d["chunks"] for d in thesis["datasets"].values()) == 50 + 20 + 16 + 26
    assert planned["extraction_summary"] == 4
    assert planned["splits"] == 1
    assert planned["train"] == runs
    assert planned["validate"] == runs
    # every grid run on both test sets, the extra precision run on the DFDC test set only
    assert planned["predict"] == grid * len(testsets) + 1
    assert planned["metrics"] == grid * len(testsets) + 1
    assert "demo_dataset" not in planned
    table_rules = [rule for rule in planned if rule.startswith("table")]
    figure_rules = [rule for rule in planned if rule.startswith("figure")]
    assert table_rules and figure_rules, planned
    # planning writes no file of its own: the report captions are the package's static files
    written = sorted(str(p.relative_to(workdir)) for p in (workdir / ".snakemake").rglob("*.rst"))
    assert written == [], written


def test_thesis_validates_on_the_dfdc_validation_set(tmp_path: Path) -> None:
    """With splits.validation_dataset, training reads that dataset's test-flow faces (validation
    loss, best epoch) and validate scores its videos (threshold.json); the split is not read for it."""
    workdir, thesis = thesis_workdir(tmp_path)
    assert thesis["splits"]["validation_dataset"] == "dfdc_val" and thesis["datasets"]["dfdc_val"]["flow"] == "test"
    target = "results/models/resnet50/default/threshold.json"
    out = snakemake(workdir, target, "-n", "--cores", "1", "--configfile", "config/thesis.yaml").stdout
    val_faces = {f"results/faces/dfdc_val/{chunk:03d}.parquet" for chunk in range(thesis["datasets"]["dfdc_val"]["chunks"])}
    val_status = {name.replace(".parquet", ".status.parquet") for name in val_faces}
    [train] = planned_inputs(out, "train")
    assert set(train) == {"results/splits/dfdc_train.parquet"} | val_faces
    [validate] = planned_inputs(out, "validate")
    assert set(validate) == val_faces | val_status | {"results/manifests/dfdc_val.parquet",
                                                      "results/models/resnet50/default/best.pt"}
    # the validation set is extracted with the test flow
    assert len(planned_inputs(out, "extract_faces")) == 50 + len(val_faces)


def test_thesis_without_validation_dataset_holds_faces_out(tmp_path: Path) -> None:
    workdir, _ = thesis_workdir(tmp_path, {"validation_dataset": None})
    target = "results/models/resnet50/default/threshold.json"
    out = snakemake(workdir, target, "-n", "--cores", "1", "--configfile", "config/thesis.yaml").stdout
    [train] = planned_inputs(out, "train")
    assert train == ["results/splits/dfdc_train.parquet"]
    [validate] = planned_inputs(out, "validate")
    assert set(validate) == {"results/splits/dfdc_train.parquet", "results/models/resnet50/default/best.pt"}
    assert not any("dfdc_val" in name for job in planned_inputs(out, "extract_faces") for name in job)


def test_lint_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(REPO), "--lint"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
