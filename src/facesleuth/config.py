"""The configuration schema, shipped in the package: loading, validating, defaults, documentation,
and the settings derived from a validated config (the robustness plan, the baselines, the
generalisation matrix, the validation source...), each derived here once for the workflow, the
tables and the figures.

The schema (``facesleuth/schemas/config.schema.yaml``) is read with :mod:`importlib.resources`,
so a wheel carries it; lists of names the registry owns (augmentation setups, precisions) are
filled in from :mod:`facesleuth.registry`. The Snakefile validates through
:func:`validate_config` as the command line and the tests do.

``python -m facesleuth.config`` (or ``facesleuth config-docs``) regenerates config/README.md,
the list of every key with its type, default and meaning, from the schema's descriptions.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import sys
from importlib import resources
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Iterator

import jsonschema
import yaml

from facesleuth import registry

SCHEMA_RESOURCE = "schemas/config.schema.yaml"
#: ``x-registry: <name>`` in the schema becomes ``enum: REGISTRY_ENUMS[name]``.
REGISTRY_ENUMS = {
    "augmentation_setups": registry.setup_names,
    "precisions": lambda: registry.PRECISIONS,
    "frame_policies": lambda: registry.FRAME_POLICIES,
    "perturbations": lambda: registry.PERTURBATION_FAMILIES,
    "aggregations": lambda: registry.AGGREGATIONS,
    "ensemble_methods": lambda: registry.ENSEMBLE_METHODS,
    "tracking_backends": lambda: registry.TRACKING_BACKENDS,
    "wandb_modes": lambda: registry.WANDB_MODES,
    "inference_backends": lambda: registry.INFERENCE_BACKENDS,
}


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


# ---------------------------------------------------------------- the schema


def _fill_registry_enums(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _fill_registry_enums(value) for key, value in node.items()}
        name = node.pop("x-registry", None)
        if name is not None:
            node["enum"] = list(REGISTRY_ENUMS[name]())
        return node
    if isinstance(node, list):
        return [_fill_registry_enums(item) for item in node]
    return node


def load_schema() -> dict[str, Any]:
    """The config schema with the registry's names filled in (a fresh copy: callers may change it)."""
    return copy.deepcopy(_schema())


@functools.lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    text = resources.files("facesleuth").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return _fill_registry_enums(yaml.safe_load(text))


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a local ``$ref`` merged in (the node's own keywords win)."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(schema, target), **{k: v for k, v in node.items() if k != "$ref"}}


def section_defaults(*keys: str) -> dict[str, Any]:
    """The defaults of the object at ``keys`` (e.g. ``"extraction", "detection"``), from the schema.

    Properties without a default are left out.
    """
    schema = _schema()
    node = _resolve(schema, schema)
    for key in keys:
        node = _resolve(schema, node["properties"][key])
    defaults = {}
    for key, spec in node.get("properties", {}).items():
        spec = _resolve(schema, spec)
        if "default" in spec:
            defaults[key] = copy.deepcopy(spec["default"])
    return defaults


# ---------------------------------------------------------------- validation


def _with_defaults(validator_class: type) -> type:
    """A validator that fills each missing property's default before checking it (jsonschema FAQ)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def fill_then_check(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(key, copy.deepcopy(subschema["default"]))
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": fill_then_check})


_FillingValidator = _with_defaults(jsonschema.Draft202012Validator)


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it.

    Raises :class:`ConfigError` naming the offending key, e.g. ``training.precision``.
    """
    problems = schema_problems(config)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    try:
        _FillingValidator(_schema()).validate(config)
    except jsonschema.ValidationError as err:  # a default that breaks the schema: a bug here
        raise ConfigError(f"{'.'.join(map(str, err.absolute_path))}: {err.message}") from None
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
    # DFDC's validation set is extracted like a test set (thesis 2.4.2), so it needs flow test.
    check("splits.validation_dataset", config["splits"].get("validation_dataset"), "test")
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
    robustness = config.get("robustness")
    if robustness:
        for i, name in enumerate(robustness.get("testsets", [])):
            if name not in evaluation.get("testsets", []):
                problems.append(f"robustness.testsets.{i}: {name!r} is not in evaluation.testsets")
        for i, run in enumerate(robustness.get("runs", [])):
            model, _, setup = run.partition("/")
            if model not in config["models"] or setup not in config["augmentation_setups"]:
                problems.append(f"robustness.runs.{i}: {run!r} is not a model/setup of models x augmentation_setups")
    generalisation = config.get("generalisation") or {}
    for trainset, entry in (generalisation.get("training_sets") or {}).items():
        for i, name in enumerate(entry["datasets"]):
            check(f"generalisation.training_sets.{trainset}.datasets.{i}", name, "train")
        home = entry.get("home_testset")
        if home is not None and home not in evaluation.get("testsets", []):
            problems.append(f"generalisation.training_sets.{trainset}.home_testset: {home!r} is not in evaluation.testsets")
    for i, name in enumerate(generalisation.get("testsets") or []):
        if name not in evaluation.get("testsets", []):
            problems.append(f"generalisation.testsets.{i}: {name!r} must also be listed in evaluation.testsets")
    for key, known in (("models", config.get("models", [])), ("setups", config.get("augmentation_setups", []))):
        for i, name in enumerate(generalisation.get(key) or []):
            if name not in known:
                problems.append(f"generalisation.{key}.{i}: {name!r} is not in the grid ({key.replace('setups', 'augmentation_setups')})")
    grid = {f"{model}/{setup}" for model in config.get("models", []) for setup in config.get("augmentation_setups", [])}
    for name, ensemble in (config.get("ensembles") or {}).items():
        for i, run in enumerate(ensemble["runs"]):
            if run not in grid:
                problems.append(f"ensembles.{name}.runs.{i}: {run!r} is not a run of the grid (models x "
                                f"augmentation_setups, e.g. {sorted(grid)[:2]})")
    if isinstance(config.get("baselines"), list):
        names = [name for name in baselines({"baselines": config["baselines"]})]
        for i, source in enumerate(config["baselines"]):
            name = str(source).rstrip("/").rsplit("/", 1)[-1]
            if not registry.BASELINE_NAME.fullmatch(name):
                problems.append(f"baselines.{i}: {source!r} gives the name {name!r}, which may hold only letters, "
                                "digits, _ and .; name it with a map, baselines: {{NAME: {source}}}")
        if len(names) < len(config["baselines"]):
            problems.append("baselines: two sources end in the same name; name them with a map, baselines: {NAME: SOURCE}")
    for name, dataset in datasets.items():
        if dataset["format"] == "csv" and not dataset.get("labels"):
            problems.append(f"datasets.{name}.labels: a csv dataset needs labels: <file.csv>")
    return problems


def schema_problems(config: dict[str, Any]) -> list[str]:
    """One short line per violation, each naming the dotted key, e.g. ``training.precision``."""
    validator = jsonschema.Draft202012Validator(_schema())
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


# ---------------------------------------------------------------- documentation

README_HEAD = """\
# Configuration keys

Every key of a facesleuth config (`config/config.yaml`, the embedded demo;
`config/thesis.yaml`, the thesis's study), with its type, default and meaning. Unknown keys are
errors, so a typo fails before any job runs. Runtime settings (threads, GPUs, partitions) belong
in `profiles/`, not here.

This file is generated from the schema the package ships
(`src/facesleuth/schemas/config.schema.yaml`); after changing the schema, regenerate it with
`facesleuth config-docs --output config/README.md` (a test fails while the two differ).
`<name>` in a key stands for any name you choose, e.g. a dataset's.
"""


def _type_text(schema: dict[str, Any], spec: dict[str, Any]) -> str:
    spec = _resolve(schema, spec)
    if "enum" in spec:
        return "one of " + ", ".join(f"`{value}`" for value in spec["enum"])
    types = spec.get("type", "")
    types = [types] if isinstance(types, str) else list(types)
    names = [t for t in types if t != "null"]
    text = " or ".join(names) or "any"
    if "array" in names and "items" in spec:
        text = f"list of {_type_text(schema, spec['items'])}"
        count = (spec.get("minItems"), spec.get("maxItems"))
        if count[0] is not None and count[0] == count[1]:
            text = f"{count[0]} × {_type_text(schema, spec['items'])}"
    bounds = []
    for keyword, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if keyword in spec:
            bounds.append(f"{sign} {spec[keyword]}")
    if bounds:
        text += " " + ", ".join(bounds)
    if "null" in types:
        text += " or null"
    return text


def _default_text(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return "required" if spec.get("_required") else "–"
    return f"`{json.dumps(spec['default'])}`"


def _one_line(text: str | None) -> str:
    """A description as one Markdown table cell (``<method>`` would read as an HTML tag)."""
    return " ".join((text or "").split()).replace("|", "\\|").replace("<", "\\<")


def _rows(schema: dict[str, Any], node: dict[str, Any], prefix: str) -> Iterator[tuple[str, str, str, str]]:
    """(key, type, default, meaning) of every property below ``node``, depth first."""
    node = _resolve(schema, node)
    required = set(node.get("required", ()))
    for key, spec in node.get("properties", {}).items():
        spec = {**_resolve(schema, spec), "_required": key in required}
        name = f"{prefix}{key}"
        yield name, _type_text(schema, spec), _default_text(spec), _one_line(spec.get("description"))
        yield from _nested(schema, spec, name)


def _nested(schema: dict[str, Any], spec: dict[str, Any], name: str) -> Iterator[tuple[str, str, str, str]]:
    if "properties" in spec:
        yield from _rows(schema, spec, f"{name}.")
    extra = spec.get("additionalProperties")
    if isinstance(extra, dict):
        extra = _resolve(schema, extra)
        key = f"{name}.<name>"
        names = spec.get("propertyNames", {}).get("enum")
        meaning = _one_line(extra.get("description") or spec.get("description"))
        if names:
            meaning = f"`<name>`: one of {', '.join(f'`{n}`' for n in names)}. {meaning}"
        if "properties" in extra:
            yield from _rows(schema, extra, f"{key}.")
        else:
            yield key, _type_text(schema, extra), _default_text(extra), meaning


def schema_rows() -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, meaning) of every key of the config, in schema order."""
    schema = _schema()
    return list(_rows(schema, schema, ""))


def schema_markdown() -> str:
    """config/README.md: one table per top-level section of the schema."""
    schema = _schema()
    parts = [README_HEAD]
    required = set(schema.get("required", ()))
    for key, spec in schema["properties"].items():
        spec = {**_resolve(schema, spec), "_required": key in required}
        meaning = _one_line(spec.get("description"))
        parts.append(f"\n## `{key}`{'' if key in required else ' (optional)'}\n")
        if "properties" in spec or isinstance(spec.get("additionalProperties"), dict):
            parts.append(f"\n{meaning}\n")
            rows = list(_nested(schema, spec, key))
        else:
            rows = [(key, _type_text(schema, spec), _default_text(spec), meaning)]
        if rows:
            parts.append("\n| key | type | default | meaning |\n|---|---|---|---|\n")
            parts.extend(f"| `{name}` | {kind} | {default} | {meaning} |\n" for name, kind, default, meaning in rows)
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m facesleuth.config", description="Write config/README.md (every config key) from the schema."
    )
    parser.add_argument("--output", type=Path, help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    return write_docs(args.output)


def write_docs(output: Path | None) -> int:
    text = schema_markdown()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())


#: The ``extraction.detection`` settings that decide which faces are cut and how: a trained run
#: records those its training faces had (run.yaml ``face_crops``) and the scanner cuts alike.
#: Not the device, the batch size or the implementation, which change only the speed.
CROP_KEYS = ("detect_max_side", "thresholds", "min_detection_size", "min_probability", "min_face_size", "margin",
             "jpeg_quality")


def face_crop_settings(detection: dict[str, Any]) -> dict[str, Any]:
    """The :data:`CROP_KEYS` of a complete (validated) ``extraction.detection``."""
    return {key: detection[key] for key in CROP_KEYS}


def extraction_settings(config_path: Path | None) -> dict[str, Any]:
    """The ``extraction`` section of ``config_path``, validated and with the schema's defaults."""
    return config_section(config_path, "extraction")


def config_section(config_path: Path | None, section: str) -> dict[str, Any]:
    """One top-level section of ``config_path`` (None: no config), validated and with the schema's defaults.

    Only that section is read: it is validated inside a minimal otherwise-valid config, so a
    config written for another machine (dataset roots absent) still works here.
    """
    written: dict[str, Any] = {}
    if config_path is not None:
        with open(config_path) as fh:
            loaded = yaml.safe_load(fh) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_path}: expected a YAML mapping at the top level")
        written = loaded.get(section) or {}
    minimal = {
        "datasets": {"video": {"format": "csv", "root": ".", "labels": "labels.csv", "flow": "train"}},
        "models": ["resnet50"],
        "augmentation_setups": ["none"],
        "splits": {"train_datasets": ["video"]},
        "evaluation": {"testsets": []},
        section: written,
    }
    return validate_config(minimal)[section]


# ---------------------------------------------------------------- settings derived from a config
# What the workflow, the tables and the figures read from a validated config, each derived once.


def robustness_plan(config: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """The robustness suite's test sets, runs (model/setup) and perturbation names (family_value)
    as the config asks, its defaults filled in; None without a ``robustness`` section."""
    settings = config.get("robustness")
    if not settings:
        return None
    runs = [f"{model}/{setup}" for model in config["models"] for setup in config["augmentation_setups"]]
    return {
        "testsets": list(settings.get("testsets") or config["evaluation"]["testsets"]),
        "runs": list(settings.get("runs") or runs),
        "perturbations": registry.perturbation_names(settings["perturbations"]),
    }


def robustness_cells(config: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every test set x run x (``clean`` + perturbation): the robustness tables' inputs, in order,
    followed by the baselines' cells (:func:`baseline_cells`)."""
    plan = robustness_plan(config) or {"testsets": [], "runs": [], "perturbations": []}
    return [
        {"testset": testset, "run": run, "perturbation": perturbation}
        for testset in plan["testsets"]
        for run in plan["runs"]
        for perturbation in [registry.CLEAN, *plan["perturbations"]]
    ] + baseline_cells(config)


def baselines(config: Mapping[str, Any]) -> dict[str, str]:
    """The config's baselines as ``name -> source`` (a built-in detector's name or a run folder).

    ``baselines`` is a map ``name: source``, or a list of sources each named after itself (a
    run folder after its last path component).
    """
    entries = config.get("baselines") or {}
    if isinstance(entries, Mapping):
        return {str(name): str(source) for name, source in entries.items()}
    return {str(source).rstrip("/").rsplit("/", 1)[-1]: str(source) for source in entries}


def baseline_cells(config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The robustness cells of the baselines: every robustness test set x baseline x (``clean`` +
    perturbation), ``run`` being ``<name>/baseline`` and ``baseline`` the name."""
    plan = robustness_plan(config)
    if not plan:
        return []
    return [
        {"testset": testset, "run": f"{name}/{registry.BASELINE}", "perturbation": perturbation, "baseline": name}
        for testset in plan["testsets"]
        for name in baselines(config)
        for perturbation in [registry.CLEAN, *plan["perturbations"]]
    ]


def generalisation_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The generalisation matrix of ``config``: training sets, models, setups, test sets, each
    training set's home test set, and its cells ``[training set, model, setup, test set]`` in the
    order the workflow lists their metrics."""
    generalisation = config.get("generalisation") or {}
    training_sets = generalisation.get("training_sets") or {}
    models = list(generalisation.get("models") or config["models"])
    setups = list(generalisation.get("setups") or config["augmentation_setups"])
    testsets = list(generalisation.get("testsets") or config["evaluation"]["testsets"])
    return {
        "training_sets": list(training_sets),
        "models": models,
        "setups": setups,
        "testsets": testsets,
        "home_testsets": {name: entry.get("home_testset") for name, entry in training_sets.items()
                          if entry.get("home_testset")},
        "cells": [[t, m, s, test] for t in training_sets for m in models for s in setups for test in testsets],
    }


def calibration_testsets(config: Mapping[str, Any]) -> list[str]:
    """The calibration table's test sets: the DFDC and Celeb-DF-v2 ones that are configured."""
    evaluation = config["evaluation"]
    return [name for name in (evaluation.get("dfdc_testset"), evaluation.get("celebdf_testset")) if name]


def loss_setup(config: Mapping[str, Any]) -> str:
    """Figs. 2.13-2.14 show the default setup, or the first configured one without it."""
    setups = config["augmentation_setups"]
    return "default" if "default" in setups else setups[0]


def validation_source(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the runs validate on, as threshold.json records it.

    ``{"kind": "dataset", "name": <dataset>, "flow": "test"}`` when ``splits.validation_dataset``
    is set, else ``{"kind": "holdout", "fraction": <validation_fraction>, "group_by": ..., "flow":
    "train"}``.
    """
    splits = config["splits"]
    name = splits.get("validation_dataset")
    if name:
        return {"kind": registry.VALIDATION_DATASET, "name": name, "flow": "test"}
    return {"kind": registry.VALIDATION_HOLDOUT, "fraction": float(splits.get("validation_fraction", 0.2)),
            "group_by": splits.get("group_by", "original"), "flow": "train"}
