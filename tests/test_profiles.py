"""The GPU a job uses is the GPU it claims, and both profiles size every such job.

Derived from the workflow, not from a list kept here: dry runs of a study that plans every rule
(the thesis, the extended studies and a robustness suite) print each job's threads and
resources as the profile leaves them. A rule made with ``use rule ... as`` inherits the rule's
own resources but none of a profile's ``set-threads``/``set-resources``, which name rules
exactly: the five such rules once ran on the CPU partition with 30 minutes and one thread.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from test_plan_studies import study_configs
from test_workflow import REPO, snakemake

pytestmark = pytest.mark.workflow

ROBUSTNESS = {"testsets": ["dfdc_test"], "runs": ["efb0_ns/default"], "perturbations": {"jpeg": [50]}}


def planned(output: str) -> list[tuple[str, int, dict[str, str]]]:
    """(rule, threads, resources) of every job a dry run prints."""
    jobs, rule, threads = [], None, 1
    for line in output.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            rule, threads = match.group(1), 1
        elif rule and (match := re.match(r"^\s+threads: (\d+)$", line)):
            threads = int(match.group(1))
        elif rule and (match := re.match(r"^\s+resources: (.*)$", line)):
            resources = dict(item.split("=", 1) for item in match.group(1).split(", "))
            jobs.append((rule, threads, resources))
            rule = None
    return jobs


def rule_scripts() -> dict[str, str]:
    """Rule -> its script, from the workflow's files (a rule made with ``use rule A as B`` runs A's)."""
    scripts, derived = {}, {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        rule = None
        for line in path.read_text().splitlines():
            if match := re.match(r"^rule (\w+):", line):
                rule = match.group(1)
            elif match := re.match(r"^use rule (\w+) as (\w+)", line):
                derived[match.group(2)] = match.group(1)
                rule = None
            elif rule and (match := re.match(r'^\s+"\.\./scripts/(\w+\.py)"', line)):
                scripts[rule] = match.group(1)
    for rule, base in derived.items():
        scripts[rule] = scripts[base]
    return scripts


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, list[str]]:
    workdir, _thesis, extended = study_configs(tmp_path_factory.mktemp("profiles"))
    extended["robustness"] = ROBUSTNESS
    extended["baselines"] = ["Meso4_DF"]  # their prediction rules are GPU rules too
    (workdir / "config" / "extended.yaml").write_text(yaml.safe_dump(extended, sort_keys=False))
    return workdir, ["--configfile", "config/thesis.yaml", "config/extended.yaml"]


def dry_run(study, *options: str, overrides: dict | None = None) -> list[tuple[str, int, dict[str, str]]]:
    workdir, configfiles = study
    extra = []
    if overrides:
        (workdir / "config" / "override.yaml").write_text(yaml.safe_dump(overrides))
        extra = ["config/override.yaml"]
    return planned(snakemake(workdir, "-n", "--cores", "12", *configfiles, *extra, *options).stdout)


@pytest.fixture(scope="module")
def gpu_rules(study) -> set[str]:
    return {rule for rule, _, resources in dry_run(study) if int(resources.get("gpu", 0)) > 0}


def test_every_rule_that_runs_device_code_claims_a_gpu(gpu_rules):
    scripts = rule_scripts()
    device_scripts = {scripts[rule] for rule in gpu_rules}
    # a rule that runs the same script as a GPU rule uses the same device, whoever wrote it
    same_script = {rule for rule, script in scripts.items() if script in device_scripts}
    assert same_script == gpu_rules, same_script ^ gpu_rules
    assert {"extract_faces", "train", "validate", "predict", "train_trainset", "validate_trainset",
            "predict_trainset", "extract_perturbed_faces", "predict_perturbed"} <= gpu_rules


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_each_profile_gives_every_gpu_job_its_threads_and_resources(study, gpu_rules, profile):
    jobs = dry_run(study, "--workflow-profile", str(REPO / "profiles" / profile))
    settings = yaml.safe_load((REPO / "profiles" / profile / "config.yaml").read_text())
    unsized = sorted({rule for rule, threads, _ in jobs if rule in gpu_rules and threads == 1})
    assert not unsized, f"profiles/{profile} leaves these GPU rules one thread: {unsized}"
    assert set(settings["set-threads"]) == gpu_rules, set(settings["set-threads"]) ^ gpu_rules
    for rule, _threads, resources in jobs:
        if rule not in gpu_rules:
            continue
        assert int(resources["gpu"]) >= 1, (rule, resources)
        if profile == "slurm":
            assert int(resources["runtime"]) > 30, f"{rule} gets the default 30 minutes: {resources}"
            assert int(resources.get("mem_mb_per_cpu", 0)) or int(resources["mem_mb"]) > 2000, (rule, resources)
    if profile == "local":
        assert settings["resources"]["gpu"] == 1  # one GPU job at a time


def test_a_cpu_device_claims_no_gpu_and_several_gpus_are_claimed_by_training(study, gpu_rules):
    on_cpu = dry_run(study, overrides={"extraction": {"detection": {"device": "cpu"}}, "training": {"device": "cpu"}})
    assert not [rule for rule, _, resources in on_cpu if int(resources.get("gpu", 0))]
    two = dry_run(study, overrides={"training": {"gpus": 2}})
    claims = {rule: int(resources.get("gpu", 0)) for rule, _, resources in two if rule in gpu_rules}
    assert claims["train"] == claims["train_trainset"] == 2
    assert claims["predict"] == claims["extract_faces"] == 1
