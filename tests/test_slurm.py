"""The workflow on a real SLURM cluster: a single node on localhost, jobs submitted by Snakemake's
SLURM executor plugin through ``--workflow-profile profiles/slurm``.

The targets in ``tests/slurm/targets.txt`` are built twice with a reduced demo (the demo config
with ``tests/slurm/config.yaml`` merged over it): locally with ``profiles/local``, then through sbatch. The test
checks that every planned job became a SLURM job that the controller scheduled and that finished,
that the profile's requests (CPUs, memory, GPUs) reached SLURM, and that both runs wrote the same
results (Parquet contents, not timestamps). SLURM is installed from Debian's packages when
missing; the test skips only when it is not root or apt-get is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
import yte

from slurm.localcluster import LocalSlurm, SlurmUnavailable, ensure_installed
from test_profiles import planned

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "slurm"
CONFIG_CHANGES = HERE / "config.yaml"
TARGETS = HERE / "targets.txt"
PROFILES = REPO / "profiles"

pytestmark = pytest.mark.slurm

# Columns that measure the run rather than the data (wall time, clock time): not compared.
RUN_DEPENDENT_COLUMN = re.compile(r"(^|_)(seconds|elapsed|duration|timestamp|time|wall)(_|$)")


def targets() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in TARGETS.read_text().splitlines())
    found = [line for line in lines if line]
    assert found, f"{TARGETS} names no target"
    return found


def snakemake(workdir: Path, profile: str, *args: str, timeout: int = 900) -> str:
    """Run Snakemake on the repo's Snakefile in ``workdir``; return its output, fail with its tail."""
    command = [
        sys.executable, "-m", "snakemake",
        *targets(),  # first: options such as --resources take every word after them
        "-s", str(REPO / "Snakefile"),
        "-d", str(workdir),
        "--workflow-profile", str(PROFILES / profile),
        *args,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"snakemake with profiles/{profile} failed ({result.returncode}):\n{output[-12000:]}")
    return output


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` merged in, mapping by mapping; other values are replaced."""
    result = dict(base)
    for key, value in changes.items():
        result[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return result


def new_workdir(path: Path) -> Path:
    """A fresh working directory whose config/config.yaml (the Snakefile's default configfile) is
    the demo's with the test's changes."""
    path.mkdir(parents=True)
    shutil.copytree(REPO / "config", path / "config")
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    changes = yaml.safe_load(CONFIG_CHANGES.read_text())
    config = merged(demo, changes)
    # sections naming runs of the demo's full grid, which the reduced grid does not have
    for section in ("ensembles", "robustness"):
        config.pop(section, None)
    (path / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def planned_jobs(output: str) -> Counter[str]:
    """Rule -> job count from the first 'Job stats' table Snakemake prints."""
    counts: Counter[str] = Counter()
    table = output.split("Job stats:", 1)[1].splitlines()
    for line in table[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match or match.group(1) == "total":
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


def most_gpu_jobs_at_once(output: str, gpu_rules: set[str]) -> int:
    """The most jobs of ``gpu_rules`` running at the same time, from a local run's log (job starts
    and ends appear in the order they happened)."""
    running: set[str] = set()
    most = 0
    pending_rule = None
    for line in output.splitlines():
        started = re.match(r"^(?:local)?rule (\w+):$", line)
        if started:
            pending_rule = started.group(1)
            continue
        job = re.match(r"^\s+jobid: (\d+)$", line)
        if job and pending_rule is not None:
            if pending_rule in gpu_rules:
                running.add(job.group(1))
                most = max(most, len(running))
            pending_rule = None
            continue
        finished = re.match(r"^Finished jobid: (\d+)", line)
        if finished:
            running.discard(finished.group(1))
    return most


def gpu_claims(output: str) -> dict[str, int]:
    """Rule -> the GPUs its jobs claimed (the rule's resource gpu), from the jobs Snakemake printed."""
    return {rule: int(resources.get("gpu", 0)) for rule, _, resources in planned(output)}


def rule_of(comment: str) -> str:
    """The rule name in the plugin's job comment: ``rule_<name>`` or ``rule_<name>_wildcards_<...>``."""
    assert comment.startswith("rule_"), f"unexpected SLURM job comment {comment!r}"
    return comment.removeprefix("rule_").split("_wildcards_", 1)[0]


def profile_settings() -> dict:
    with (PROFILES / "slurm" / "config.yaml").open() as stream:
        return yte.process_yaml(stream, require_use_yte=True)


def requested_memory_mb(value: int | str) -> int:
    """A profile memory value at the first attempt (values may be expressions of ``attempt``)."""
    return int(eval(str(value), {"__builtins__": {}}, {"attempt": 1}))  # noqa: S307 (our own profile)


def memory_mb(scontrol_value: str) -> float:
    """``scontrol``'s memory field (``4000M``, ``62.50G``) in MB."""
    number, unit = re.fullmatch(r"([\d.]+)([KMGT])", scontrol_value).groups()
    return float(number) * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[unit]


def comparable(frame: pd.DataFrame, workdir: Path) -> pd.DataFrame:
    """``frame`` without run-dependent columns, with the working directory's path made neutral."""
    frame = frame.drop(columns=[c for c in frame.columns if RUN_DEPENDENT_COLUMN.search(str(c))])
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, str)).any():
            frame[column] = frame[column].map(
                lambda v: v.replace(str(workdir), "<workdir>") if isinstance(v, str) else v
            )
    return frame


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        ensure_installed()
    except SlurmUnavailable as reason:
        pytest.skip(str(reason))
    local_slurm = LocalSlurm(tmp_path_factory.mktemp("slurm-cluster"))
    try:
        local_slurm.start()
    except SlurmUnavailable as reason:
        pytest.skip(str(reason))
    try:
        yield local_slurm
    finally:
        local_slurm.stop()


@pytest.fixture(scope="module")
def runs(cluster: LocalSlurm, tmp_path_factory) -> dict:
    """The targets built locally and through SLURM, each in a fresh working directory."""
    base = tmp_path_factory.mktemp("runs")
    local = new_workdir(base / "local")
    # more cores than GPU jobs need, so only the profile's gpu=1 keeps them from overlapping
    local_output = snakemake(local, "local", "--cores", "8")
    on_slurm = new_workdir(base / "slurm")
    output = snakemake(
        on_slurm, "slurm",
        "--slurm-init-seconds-before-status-checks", "3",  # the profile's 40 s is for busy clusters
        "--slurm-keep-successful-logs",  # the plugin's per-job logs, checked below
    )  # fmt: skip
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    assert run_id, f"the SLURM executor did not start:\n{output[-5000:]}"
    return {"local": local, "local_output": local_output, "slurm": on_slurm, "output": output, "run_id": run_id.group(1)}


def test_local_profile_runs_one_gpu_job_at_a_time(runs: dict) -> None:
    gpu_rules = {rule for rule, gpus in gpu_claims(runs["local_output"]).items() if gpus}
    assert {"extract_faces", "train", "validate", "predict"} <= gpu_rules
    planned = planned_jobs(runs["local_output"])
    assert sum(planned[rule] for rule in gpu_rules) >= 2, f"too few GPU jobs to test overlap: {dict(planned)}"
    assert most_gpu_jobs_at_once(runs["local_output"], gpu_rules) == 1


def test_every_job_went_through_sbatch(cluster: LocalSlurm, runs: dict) -> None:
    output = runs["output"]
    jobs = cluster.jobs(name=runs["run_id"])
    failed = [f"{job['JobId']} ({job['Comment']}): {job['JobState']}" for job in jobs if job["JobState"] != "COMPLETED"]
    # the profile's retries may hide a failed attempt from Snakemake's exit status, not from SLURM
    assert not failed, f"SLURM jobs that did not complete (logs in .snakemake/slurm_logs): {failed}"

    ran_locally = Counter(re.findall(r"^localrule (\w+):", output, re.MULTILINE))
    expected = planned_jobs(output) - ran_locally
    assert expected, "the SLURM run planned no job: are the targets already built?"
    submitted = Counter(rule_of(job["Comment"]) for job in jobs)
    assert submitted == expected, f"SLURM jobs per rule {dict(submitted)} != planned jobs {dict(expected)}"

    controller = cluster.controller_log_records()
    for job in jobs:
        assert job["ExitCode"] == "0:0", f"SLURM job {job['JobId']} exited with {job['ExitCode']}"
        job_id = int(job["JobId"])
        assert job_id in controller.submitted, f"slurmctld's log has no sbatch submission of job {job_id}"
        assert job_id in controller.started, f"slurmctld's log does not say job {job_id} started"
        assert controller.exit_status.get(job_id) == 0, f"slurmctld's log has no exit status 0 for job {job_id}"
        rule = rule_of(job["Comment"])
        logs = list((runs["slurm"] / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob(f"{job['JobId']}.log"))
        assert logs, f"no plugin log for SLURM job {job['JobId']} ({rule}) under .snakemake/slurm_logs"


def test_profile_requests_reached_slurm(cluster: LocalSlurm, runs: dict) -> None:
    """CPUs (set-threads, or cpus_per_gpu), memory (set-resources) of profiles/slurm and the GPUs each
    rule claims are what sbatch asked for."""
    profile = profile_settings()
    claims = gpu_claims(runs["output"])
    jobs = cluster.jobs(name=runs["run_id"])
    checked = 0
    for job in jobs:
        rule = rule_of(job["Comment"])
        # set-resources and set-threads win over the rule's own values; default-resources do not
        resources = profile["set-resources"].get(rule, {})
        threads = profile["set-threads"].get(rule)
        gpus = claims[rule]
        if "cpus_per_gpu" in resources:
            cpus = resources["cpus_per_gpu"] * gpus
            assert int(job["NumCPUs"]) == cpus, f"{rule}: {job['NumCPUs']} CPUs, profile asks {cpus} for {gpus} GPUs"
        elif threads is not None:
            assert int(job["NumCPUs"]) == threads, f"{rule}: {job['NumCPUs']} CPUs, profile asks {threads}"
        if "mem_mb_per_cpu" in resources:
            memory = requested_memory_mb(resources["mem_mb_per_cpu"])
            granted = memory_mb(job["MinMemoryCPU"])
            assert abs(granted - memory) < 10, f"{rule}: memory {job['MinMemoryCPU']} per CPU, profile asks {memory}M"
        elif "mem_mb" in resources:
            memory = requested_memory_mb(resources["mem_mb"])
            granted = memory_mb(job["MinMemoryNode"])
            assert abs(granted - memory) < 10, f"{rule}: memory {job['MinMemoryNode']}, profile asks {memory}M"
        if gpus:
            assert f"gres:gpu:{gpus}" in job.get("TresPerJob", ""), f"{rule}: no GPU request in {job}"
        else:
            assert "gpu" not in job.get("TresPerJob", ""), f"{rule} asked for a GPU it should not hold: {job}"
        checked += 1
    assert checked, "no SLURM job to check"


def test_slurm_run_equals_local_run(runs: dict) -> None:
    local, on_slurm = runs["local"], runs["slurm"]
    local_files = sorted(p.relative_to(local) for p in (local / "results").rglob("*") if p.is_file())
    slurm_files = sorted(p.relative_to(on_slurm) for p in (on_slurm / "results").rglob("*") if p.is_file())
    assert local_files == slurm_files, "the two runs wrote different files under results/"
    parquets = [p for p in local_files if p.suffix == ".parquet"]
    assert parquets, "no Parquet output to compare"
    for path in parquets:
        expected = comparable(pd.read_parquet(local / path), local)
        actual = comparable(pd.read_parquet(on_slurm / path), on_slurm)
        # Scores may differ in the fourth digit: local and SLURM jobs need not run torch with the same
        # threads, and a training amplifies roundoff; every other value must be equal.
        pd.testing.assert_frame_equal(actual, expected, obj=str(path), check_exact=False, rtol=1e-3, atol=0)
