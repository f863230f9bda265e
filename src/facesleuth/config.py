"""Loading and validating configuration against the workflow's JSON schema.

The Snakefile validates with ``snakemake.utils.validate`` on the same schema file; this module
gives tests and the command line the same check (with defaults filled in) outside Snakemake.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


def validate_config(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it.

    Raises :class:`ConfigError` naming the offending key, e.g. ``training.precision``.
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema_path = Path(schema_path)
    if not schema_path.exists():
        raise ConfigError(f"config schema not found at {schema_path}; run from a facesleuth checkout")
    problems = schema_problems(config, schema_path)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    try:
        # Snakemake's own validator fills in the schema's defaults.
        validate(config, str(schema_path), set_default=True)
    except WorkflowError as err:
        raise ConfigError(str(err)) from None
    problems = reference_problems(config)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


def reference_problems(config: dict[str, Any]) -> list[str]:
    """Checks the schema cannot express: names that must refer to other entries."""
    datasets = config.get("datasets", {})
    problems = []

    def check(key: str, name: str | None, flow: str) -> None:
        if name is None:
            return
        if name not in datasets:
            problems.append(f"{key}: {name!r} is not a dataset (known: {sorted(datasets)})")
        elif datasets[name]["flow"] != flow:
            problems.append(f"{key}: dataset {name!r} has flow {datasets[name]['flow']!r}, needs flow {flow!r}")

    for i, name in enumerate(config["splits"].get("train_datasets", [])):
        check(f"splits.train_datasets.{i}", name, "train")
    if not config["splits"].get("train_datasets"):
        problems.append("splits.train_datasets: name at least one dataset with flow 'train'")
    evaluation = config["evaluation"]
    for i, name in enumerate(evaluation.get("testsets", [])):
        check(f"evaluation.testsets.{i}", name, "test")
    for key in ("dfdc_testset", "celebdf_testset"):
        name = evaluation.get(key)
        check(f"evaluation.{key}", name, "test")
        if name is not None and name not in evaluation.get("testsets", []):
            problems.append(f"evaluation.{key}: {name!r} must also be listed in evaluation.testsets")
    study = config.get("precision_study")
    if study and study["augmentation"] not in config["augmentation_setups"]:
        problems.append(
            f"precision_study.augmentation: {study['augmentation']!r} is not in augmentation_setups"
        )
    for name, dataset in datasets.items():
        if dataset["format"] == "csv" and not dataset.get("labels"):
            problems.append(f"datasets.{name}.labels: a csv dataset needs labels: <file.csv>")
    return problems


def schema_problems(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> list[str]:
    """One short line per violation, each naming the dotted key, e.g. ``training.precision``."""
    import jsonschema

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        problems.append(f"{key}: {error.message}")
    return problems


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config, apply ``overrides`` (deep-merged), validate and fill defaults."""
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    if overrides:
        config = deep_merge(config, overrides)
    return validate_config(config)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``base`` with ``update`` merged in, nested dicts merged key by key."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
