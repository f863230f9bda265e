"""Resume with the plain command: a hard-killed ``snakemake --cores 2`` is finished by
``snakemake --unlock`` and the same command again (profiles/default sets rerun-incomplete), and
the killed training continues from its last.pt instead of starting over."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from test_workflow import REPO, demo_config, new_workdir, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

EPOCHS = 10
MODEL, SETUP = "mobilenetv3_small_050", "none"


def small_demo() -> dict:
    """The demo reduced to one model, one setup and a few small videos: minutes, not quarters of an hour."""
    config = demo_config()
    config["demo"].update(train_parts=2, originals_per_part=6, fakes_per_original=1,
                          test_videos=8, celebdf_videos=6, frames=24)
    config["extraction"]["test_flow"].update(min_track_length=4, faces_per_video=4)
    config["models"] = [MODEL]
    config["augmentation_setups"] = [SETUP]
    config["training"]["epochs"] = EPOCHS
    # sections naming runs of the full grid, which this one-run grid does not have
    for section in ("precision_study", "ensembles", "robustness"):
        config.pop(section, None)
    return config


def kill_during_training(workdir: Path, run_dir: Path, timeout: float = 900) -> int:
    """Start the plain command, SIGKILL its whole process group once the first epoch is
    checkpointed; return the epoch the checkpoint holds at the kill."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2"]
    log = (workdir / "killed_run.log").open("w")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not (run_dir / "last.pt").exists():
            if proc.poll() is not None:
                pytest.fail(f"snakemake ended ({proc.returncode}) before training wrote last.pt:\n"
                            + (workdir / "killed_run.log").read_text()[-5000:])
            if time.monotonic() > deadline:
                pytest.fail("no last.pt within the timeout")
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its jobs: nothing gets to clean up
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    time.sleep(1)  # a checkpoint being renamed into place at the kill has landed or not
    return int(torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)["epoch"])


def test_unlock_and_the_same_command_finish_a_killed_study(tmp_path: Path) -> None:
    workdir = new_workdir(tmp_path / "study", small_demo())
    run_dir = workdir / "results" / "models" / MODEL / SETUP

    killed_at = kill_during_training(workdir, run_dir)
    assert 1 <= killed_at < EPOCHS, f"the kill came after training ended (last.pt at epoch {killed_at})"
    before = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)["history"]
    assert (workdir / ".snakemake" / "locks").is_dir() and any((workdir / ".snakemake" / "locks").iterdir()), \
        "a SIGKILLed Snakemake should leave its lock behind"

    snakemake(workdir, "--unlock")
    rerun = snakemake(workdir, "--cores", "2")

    assert "profiles/default" in rerun.stderr  # the plain command found the default profile
    train_log = (workdir / "logs" / "train" / MODEL / f"{SETUP}.log").read_text()
    assert re.search(rf"resuming from \S*{MODEL}/{SETUP}/last\.pt after epoch {killed_at}\b", train_log), train_log[-3000:]
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    # The epochs before the kill were kept, not trained again: their wall seconds are the
    # killed run's own, to the last digit (a retrained epoch would take a different time).
    kept = history.iloc[:killed_at]
    assert kept["seconds"].tolist() == pytest.approx([row["seconds"] for row in before], rel=1e-12)
    assert kept["train_loss"].tolist() == pytest.approx([row["train_loss"] for row in before], rel=1e-12)

    planned = planned_jobs(snakemake(workdir, "-n", "--cores", "2").stdout)
    assert planned == {}, f"the finished study still plans jobs: {planned}"
    tables = list((workdir / "results" / "tables").glob("*.csv"))
    figures = list((workdir / "results" / "figures").glob("*.png"))
    assert tables and figures
