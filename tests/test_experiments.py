"""Experiment tracking read back with each tracker's own reader (MLflow's client, TensorBoard's
event accumulator, W&B's offline records) and compared with history.csv, run.yaml and the
metrics files: every epoch, every metric, equal values."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from face_crops import write_split
from mlflow import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from train_settings import tiny_run_settings
from wandb_records import read_run

from facesleuth.train import experiments
from facesleuth.train.experiments import ENV_VAR, EPOCH_METRICS, STATE_FILE, TrackingSettings
from facesleuth.train.loop import train_run

SETTINGS = tiny_run_settings("none", epochs=3)
HISTORY_METRICS = [m for m in EPOCH_METRICS if m != "lr"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No tracker reaches the network, whatever the machine's W&B login."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture(scope="module")
def split(samples, tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("split") / "train.parquet", samples)


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory) -> str:
    """One SQLite store for the module: creating its tables takes seconds."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()
    return uri


def tracking(uri: str, experiment: str, *backends: str) -> TrackingSettings:
    return TrackingSettings(backends=backends or experiments.BACKENDS, experiment=experiment, mlflow_uri=uri)


def runs_named(client: MlflowClient, experiment: str, name: str):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment}"
    return [r for r in client.search_runs([found.experiment_id]) if r.info.run_name == name]


def check_mlflow_epochs(client: MlflowClient, run_id: str, history: pd.DataFrame, lr: float) -> None:
    for metric in HISTORY_METRICS:
        logged = client.get_metric_history(run_id, metric)
        assert [m.step for m in logged] == history["epoch"].tolist(), metric
        expected = history[metric].tolist()
        assert [m.value for m in logged] == expected or all(
            (math.isnan(a) and math.isnan(b)) or a == b for a, b in zip((m.value for m in logged), expected)), metric
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "lr")] == \
        [(e, lr) for e in history["epoch"]]


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_a_tracked_run_logs_settings_every_epoch_and_its_end(split, tmp_path, monkeypatch, mlflow_store):
    settings = tracking(mlflow_store, "trained")
    monkeypatch.setenv(ENV_VAR, settings.to_json())
    run_dir = tmp_path / "models" / SETTINGS["model"] / "none"
    summary = train_run(split, run_dir, copy.deepcopy(SETTINGS))
    history = pd.read_csv(run_dir / "history.csv")
    info = yaml.safe_load((run_dir / "run.yaml").read_text())
    state = json.loads((run_dir / STATE_FILE).read_text())

    # MLflow, through its client
    client = MlflowClient(tracking_uri=mlflow_store)
    [run] = runs_named(client, "trained", f"{SETTINGS['model']}/none")
    assert run.info.status == "FINISHED" and run.info.run_id == state["backends"]["mlflow"]["run_id"]
    check_mlflow_epochs(client, run.info.run_id, history, info["lr"])
    params = run.data.params
    assert params["lr"] == "0.001" and params["batch_size"] == "8" and params["model"] == SETTINGS["model"]
    assert params["preprocessing.padding"] == info["preprocessing"]["padding"]
    assert json.loads(params["trained_on"]) == info["trained_on"]
    assert params["float32_math.cudnn_tf32"] == "false"
    leaves = set(pd.json_normalize(info).columns) | {k for k, v in info.items() if v == {}}
    assert set(params) == leaves  # every run.yaml leaf, flattened
    tags = run.data.tags
    assert (tags["model"], tags["setup"], tags["precision"], tags["trainset"]) == \
        (SETTINGS["model"], "none", "fp32", "-".join(info["trained_on"]))
    assert run.data.metrics["best_epoch"] == summary["best_epoch"] == history.loc[history["val_loss"].idxmin(), "epoch"]
    assert run.data.metrics["best_val_loss"] == history["val_loss"].min()
    artefacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"run.yaml", "history.csv"} <= artefacts
    local = Path(client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path / "download")))
    assert local.read_bytes() == (run_dir / "history.csv").read_bytes()

    # TensorBoard, through its event reader (scalars are stored as float32)
    scalars = tensorboard_scalars(Path(state["backends"]["tensorboard"]["dir"]))
    for metric in HISTORY_METRICS:
        assert [s for s, _ in scalars[metric]] == history["epoch"].tolist()
        assert [v for _, v in scalars[metric]] == pytest.approx(history[metric].tolist(), rel=1e-6), metric
    assert scalars["lr"] == [(e, pytest.approx(0.001, rel=1e-6)) for e in history["epoch"]]

    # W&B, from its offline transaction log
    wandb_run = read_run(run_dir / "wandb", state["backends"]["wandb"]["id"])
    rows = [r for r in wandb_run["history"] if "train_loss" in r]
    assert [r["epoch"] for r in rows] == history["epoch"].tolist()
    for metric in HISTORY_METRICS:
        assert [r[metric] for r in rows] == history[metric].tolist(), metric
    assert [r["lr"] for r in rows] == [0.001] * len(history)
    assert wandb_run["config"]["lr"] == "0.001" and wandb_run["config"]["model"] == SETTINGS["model"]
    assert wandb_run["summary"]["best_epoch"] == summary["best_epoch"]
    assert wandb_run["runs"][0].display_name == f"{SETTINGS['model']}/none"


KILLED_EPOCHS = 6
# Trains in a process that SIGKILLs its whole group (its W&B service too) once the first epoch is
# checkpointed, before it is logged: the kill at a fixed point, not wherever a watcher's signal
# happens to land. (The training loop logs an epoch after its checkpoint, so that a run killed in
# between logs it on resuming; a kill while the trackers are sending can lose W&B's buffered records.)
TRAIN_IN_SUBPROCESS = """
import json, os, signal, sys
import torch
from facesleuth.train import experiments
from facesleuth.train.loop import train_run
torch.set_num_threads(1)
log_epochs = experiments.TrackedRun.log_epochs
def die_before_logging_an_epoch(self, history, lr):
    if history:  # it is called on starting too, with no epoch yet
        os.killpg(os.getpgid(0), signal.SIGKILL)
    log_epochs(self, history, lr)
experiments.TrackedRun.log_epochs = die_before_logging_an_epoch
split, run_dir, settings = sys.argv[1:4]
train_run(split, run_dir, json.loads(settings))
"""


def test_a_killed_tracked_run_resumes_into_the_same_tracked_run(split, tmp_path, monkeypatch, mlflow_store):
    settings = tracking(mlflow_store, "killed")
    monkeypatch.setenv(ENV_VAR, settings.to_json())
    run_dir = tmp_path / "models" / SETTINGS["model"] / "none"
    run_settings = copy.deepcopy(SETTINGS)
    run_settings["training"]["epochs"] = KILLED_EPOCHS
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(experiments.__file__).parents[2]),
                                                          os.environ.get("PYTHONPATH", "")])}
    env.pop("WANDB_SERVICE", None)  # its own W&B service, as a training job has (not this process's)
    proc = subprocess.Popen([sys.executable, "-c", TRAIN_IN_SUBPROCESS, str(split), str(run_dir), json.dumps(run_settings)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        returncode = proc.wait(300)  # nothing gets to finish a tracked run
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert returncode == -signal.SIGKILL, f"training ended ({returncode}) unkilled:\n{proc.stderr.read()[-3000:]}"
    time.sleep(0.5)
    killed_at = int(torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)["epoch"])
    assert killed_at == 1
    before = json.loads((run_dir / STATE_FILE).read_text())["backends"]

    for name in ("best.pt", "history.csv", "run.yaml"):  # as Snakemake does before the rerun
        (run_dir / name).unlink(missing_ok=True)
    resumed = train_run(split, run_dir, copy.deepcopy(run_settings))
    assert resumed["resumed_from"] == killed_at
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == list(range(1, KILLED_EPOCHS + 1))
    after = json.loads((run_dir / STATE_FILE).read_text())["backends"]
    assert after["mlflow"]["run_id"] == before["mlflow"]["run_id"] and after["wandb"]["id"] == before["wandb"]["id"]

    client = MlflowClient(tracking_uri=mlflow_store)
    [run] = runs_named(client, "killed", f"{SETTINGS['model']}/none")  # one tracked run, not two
    assert run.info.status == "FINISHED"
    check_mlflow_epochs(client, run.info.run_id, history, 0.001)  # every epoch once, the killed run's included

    scalars = tensorboard_scalars(Path(after["tensorboard"]["dir"]))
    assert [s for s, _ in scalars["train_loss"]] == history["epoch"].tolist()
    assert [v for _, v in scalars["val_loss"]] == pytest.approx(history["val_loss"].tolist(), rel=1e-6)

    wandb_run = read_run(run_dir / "wandb", after["wandb"]["id"])
    assert len(wandb_run["files"]) == 2  # the killed process's records and the resumed one's, one run id
    rows = [r for r in wandb_run["history"] if "train_loss" in r]
    assert [r["epoch"] for r in rows] == history["epoch"].tolist()
    assert [r["train_loss"] for r in rows] == history["train_loss"].tolist()


@pytest.fixture(scope="module")
def untracked_run(split, tmp_path_factory) -> Path:
    """A run folder trained with tracking off (the study tracked afterwards)."""
    run_dir = tmp_path_factory.mktemp("untracked") / "run"
    previous, threads = os.environ.pop(ENV_VAR, None), torch.get_num_threads()
    torch.set_num_threads(1)  # module-scoped: before the one_torch_thread fixture applies
    try:
        train_run(split, run_dir, copy.deepcopy(SETTINGS))
    finally:
        torch.set_num_threads(threads)
        if previous is not None:
            os.environ[ENV_VAR] = previous
    assert not (run_dir / STATE_FILE).exists()
    return run_dir


def write_results(root: Path, run_dir: Path) -> dict:
    """A study's results/ with one run folder, its metrics, an ensemble and the study tables."""
    import shutil

    from results_factory import dfdc_videos, write_run

    model = SETTINGS["model"]
    target = root / "results" / "models" / model / "none"
    shutil.copytree(run_dir, target)
    threshold = {"eer_threshold": 0.4375, "aggregation": "mean", "eer": 0.25, "n_videos": 4}
    calibration = {"temperature": 1.75, "log_loss_before": 0.66, "log_loss_after": 0.61}
    (target / "threshold.json").write_text(json.dumps(threshold))
    (target / "calibration.json").write_text(json.dumps(calibration))
    metrics = write_run(root, dfdc_videos(24), model, "none", strength=1.3, validation_threshold=0.4375)
    ensemble = root / "results" / "ensembles" / "pair"
    (ensemble / "metrics").mkdir(parents=True)
    (ensemble / "ensemble.yaml").write_text(yaml.safe_dump({"name": "pair", "method": "mean_logit",
                                                             "runs": [f"{model}/none", f"{model}/default"]}))
    (ensemble / "threshold.json").write_text(json.dumps({"eer_threshold": 0.5}))
    (ensemble / "calibration.json").write_text(json.dumps({"temperature": 1.2}))
    ensemble_metrics = {**metrics, "ensemble": "pair"}
    (ensemble / "metrics" / "dfdc_test.json").write_text(json.dumps(ensemble_metrics))
    tables = root / "results" / "tables"
    tables.mkdir(parents=True)
    # the matrix's run, then a baseline's row (config baselines), as study_report writes them
    pd.DataFrame([{"trainset": "dfdc", "model": model, "aug": "none", "name": "MobileNet (none)",
                   "dfdc_test": 0.71, "celebdf": 0.58},
                  {"trainset": "-", "model": "Meso4_DF", "aug": "baseline", "name": "Meso4_DF (baseline)",
                   "dfdc_test": 0.66, "celebdf": 0.52, "kind": "baseline", "trained_on": "Deepfakes"}]
                 ).to_csv(tables / "generalisation_auc.csv", index=False)
    pd.DataFrame([{"testset": "dfdc_test", "run": f"{model}/none", "clean": 0.71, "jpeg_70": 0.64}]).to_csv(
        tables / "robustness_auc.csv", index=False)
    pd.DataFrame([{"testset": "dfdc_test", "run": f"{model}/none", "clean": 0.62, "jpeg_70": float("nan")}]).to_csv(
        tables / "robustness_logloss.csv", index=False)
    return {"run": target, "threshold": threshold, "calibration": calibration, "metrics": metrics,
            "ensemble": ensemble_metrics}


def test_track_backfills_a_finished_study_once(untracked_run, tmp_path, mlflow_store):
    from facesleuth.cli import main

    written = write_results(tmp_path, untracked_run)
    results = tmp_path / "results"
    command = ["track", str(results), "--to", "mlflow", "--to", "tensorboard", "--mlflow-uri", mlflow_store,
               "--experiment", "backfill"]
    assert main(command) == 0

    client = MlflowClient(tracking_uri=mlflow_store)
    [run] = runs_named(client, "backfill", f"{SETTINGS['model']}/none")
    history = pd.read_csv(written["run"] / "history.csv")
    check_mlflow_epochs(client, run.info.run_id, history, 0.001)
    logged = run.data.metrics
    assert logged["best_epoch"] == history.loc[history["val_loss"].idxmin(), "epoch"]
    assert logged["validation/eer_threshold"] == 0.4375 and logged["validation/eer"] == 0.25
    assert logged["calibration/temperature"] == 1.75 and logged["calibration/log_loss_after"] == 0.61
    metrics = written["metrics"]
    for key in ("log_loss", "auc", "eer", "eer_threshold", "validation_threshold"):
        assert logged[f"dfdc_test/{key}"] == metrics[key], key
    for kind in ("validation", "test_eer"):
        for count in ("tp", "fp", "tn", "fn", "sensitivity", "specificity", "f1"):
            assert logged[f"dfdc_test/at_threshold/{kind}/{count}"] == metrics["at_threshold"][kind][count]
    assert logged["dfdc_test/n_videos/evaluated"] == 24
    assert {"run.yaml", "history.csv", "threshold.json", "calibration.json"} <= \
        {a.path for a in client.list_artifacts(run.info.run_id)}
    assert run.data.tags["facesleuth.kind"] == "run"

    [ensemble] = runs_named(client, "backfill", "ensemble/pair")
    assert ensemble.data.tags["facesleuth.kind"] == "ensemble"
    assert ensemble.data.params["method"] == "mean_logit"
    assert ensemble.data.metrics["dfdc_test/auc"] == written["ensemble"]["auc"]
    assert ensemble.data.metrics["validation/eer_threshold"] == 0.5
    [matrix] = runs_named(client, "backfill", f"generalisation/dfdc/{SETTINGS['model']}/none")
    assert (matrix.data.metrics["auc/dfdc_test"], matrix.data.metrics["auc/celebdf"]) == (0.71, 0.58)
    [baseline] = runs_named(client, "backfill", "generalisation/-/Meso4_DF/baseline")
    assert baseline.data.metrics == {"auc/dfdc_test": 0.66, "auc/celebdf": 0.52}
    [robust] = runs_named(client, "backfill", f"robustness/dfdc_test/{SETTINGS['model']}/none")
    assert (robust.data.metrics["auc/clean"], robust.data.metrics["auc/jpeg_70"], robust.data.metrics["logloss/clean"]) \
        == (0.71, 0.64, 0.62)
    assert math.isnan(client.get_metric_history(robust.info.run_id, "logloss/jpeg_70")[0].value)
    scalars = tensorboard_scalars(Path(json.loads((written["run"] / STATE_FILE).read_text())["backends"]["tensorboard"]["dir"]))
    assert scalars["dfdc_test/auc"] == [(0, pytest.approx(metrics["auc"], rel=1e-6))]

    # again: nothing is sent twice; a changed metrics file is sent again
    assert main(command) == 0
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == len(history)
    assert len(client.get_metric_history(run.info.run_id, "dfdc_test/auc")) == 1
    metrics_file = results / "metrics" / "dfdc_test" / SETTINGS["model"] / "none.json"
    changed = {**metrics, "auc": 0.5}
    metrics_file.write_text(json.dumps(changed))
    assert main(command) == 0
    assert [m.value for m in client.get_metric_history(run.info.run_id, "dfdc_test/auc")] == [metrics["auc"], 0.5]
    assert len(runs_named(client, "backfill", f"{SETTINGS['model']}/none")) == 1


def test_an_unreachable_tracker_is_one_warning_not_a_failed_run(split, tmp_path, monkeypatch, caplog):
    settings = TrackingSettings(backends=("mlflow",), experiment="x", mlflow_uri="http://127.0.0.1:9", timeout_s=2)
    monkeypatch.setenv(ENV_VAR, settings.to_json())
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with caplog.at_level(logging.WARNING, logger="facesleuth.train.experiments"):
        summary = train_run(split, tmp_path, copy.deepcopy(SETTINGS) | {"training": {**SETTINGS["training"], "epochs": 1}})
    assert summary["epochs"] == 1 and pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "mlflow could not start" in warnings[0], warnings


def test_settings_resolve_and_travel_through_the_environment(tmp_path, monkeypatch):
    off = TrackingSettings.from_config({}, tmp_path)
    assert not off.enabled and off.backends == ()
    assert off.mlflow_uri == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    on = TrackingSettings.from_config({"backends": ["wandb", "mlflow"], "mlflow_uri": "http://tracker:5000"}, tmp_path)
    assert on.backends == ("wandb", "mlflow") and on.mlflow_uri == "http://tracker:5000"
    experiments.export_settings(on)
    assert TrackingSettings.from_env() == on
    experiments.export_settings(off)
    assert ENV_VAR not in os.environ and not TrackingSettings.from_env().enabled
    monkeypatch.setenv(ENV_VAR, "{not json")
    assert not TrackingSettings.from_env().enabled
    with pytest.raises(ValueError, match="unknown"):
        TrackingSettings(backends=("neptune",))


def test_wandb_is_offline_unless_an_account_is_configured(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    monkeypatch.setenv("WANDB_BASE_URL", "https://api.wandb.ai")
    assert experiments.wandb_mode("auto") == "offline"
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert experiments.wandb_mode("auto") == "online"
    assert experiments.wandb_mode("offline") == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert experiments.wandb_mode("online") is None  # W&B reads its own variable


def test_wandb_online_without_a_network_falls_back_to_offline_files(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    settings = TrackingSettings(backends=("wandb",), experiment="offline-fallback", timeout_s=5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="facesleuth.train.experiments"):
        with experiments.TrackedRun(settings, tmp_path / STATE_FILE, "m/none", tags={"model": "m"}).open() as run:
            run.log_epochs([{"epoch": 1, "train_loss": 0.5, "val_loss": 0.25, "seconds": 2.0, "images_per_s": 8.0}], 0.01)
    assert time.monotonic() - started < 60
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "tracking: W&B server http://127.0.0.1:9 unreachable; logging m/none offline instead "
        "(upload later with wandb sync)"]
    state = json.loads((tmp_path / STATE_FILE).read_text())
    logged = read_run(tmp_path, state["backends"]["wandb"]["id"])
    assert [(r["epoch"], r["val_loss"], r["lr"]) for r in logged["history"] if "val_loss" in r] == [(1, 0.25, 0.01)]


def test_a_run_trained_again_from_scratch_gets_a_new_tracked_run(split, tmp_path, monkeypatch, mlflow_store):
    monkeypatch.setenv(ENV_VAR, tracking(mlflow_store, "retrained", "mlflow").to_json())
    run_dir = tmp_path / "models" / SETTINGS["model"] / "none"
    first = copy.deepcopy(SETTINGS) | {"training": {**SETTINGS["training"], "epochs": 1}}
    train_run(split, run_dir, first)
    first_id = json.loads((run_dir / STATE_FILE).read_text())["backends"]["mlflow"]["run_id"]
    second = copy.deepcopy(first)
    second["training"]["seed"] = 8  # other settings: last.pt is ignored, training starts over
    train_run(split, run_dir, second)
    second_id = json.loads((run_dir / STATE_FILE).read_text())["backends"]["mlflow"]["run_id"]

    client = MlflowClient(tracking_uri=mlflow_store)
    assert second_id != first_id
    assert {r.info.run_id for r in runs_named(client, "retrained", f"{SETTINGS['model']}/none")} == {first_id, second_id}
    check_mlflow_epochs(client, second_id, pd.read_csv(run_dir / "history.csv"), 0.001)
    assert client.get_run(second_id).data.params["seed"] == "8" and client.get_run(first_id).data.params["seed"] == "7"
