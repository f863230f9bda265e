"""The config schema the package ships: validation with defaults, and config/README.md kept in step."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from facesleuth import config, registry
from facesleuth.train.augment import augmentation_defaults
from facesleuth.cli import main
from facesleuth.extract.flows import extraction_defaults

REPO = Path(__file__).resolve().parents[1]


def minimal() -> dict:
    return {
        "datasets": {"v": {"format": "csv", "root": ".", "labels": "l.csv", "flow": "train"}},
        "models": ["resnet50"],
        "augmentation_setups": ["none"],
        "splits": {"train_datasets": ["v"]},
        "evaluation": {"testsets": []},
    }


def test_config_readme_is_generated_from_the_schema():
    readme = (REPO / "config" / "README.md").read_text()
    assert readme == config.schema_markdown(), (
        "config/README.md differs from the schema; run: facesleuth config-docs --output config/README.md"
    )


def test_every_key_is_documented_with_type_default_and_meaning():
    rows = config.schema_rows()
    keys = [key for key, *_ in rows]
    assert len(keys) == len(set(keys))
    undocumented = [key for key, _, _, meaning in rows if not meaning]
    assert not undocumented, f"schema keys without a description: {undocumented}"
    # every key a real config writes is listed (thesis.yaml uses most sections)
    thesis = yaml.safe_load((REPO / "config" / "thesis.yaml").read_text())

    def dotted(node, prefix=""):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if prefix == "datasets.":
                name = "datasets.<name>"
            if isinstance(value, dict) and key not in ("runs",):
                yield from dotted(value, f"{name}.")
            else:
                yield name

    written = set(dotted(thesis))
    listed = set(keys) | {key.rsplit(".<name>", 1)[0] for key in keys}
    assert written <= listed, sorted(written - listed)
    by_key = {key: (kind, default) for key, kind, default, _ in rows}
    assert by_key["training.precision"] == ("one of `fp16`, `bf16`, `fp32`", '`"fp16"`')
    assert by_key["extraction.test_flow.iou_threshold"] == ("number >= 0, <= 1", "`0.75`")
    assert by_key["datasets.<name>.root"][1] == "required"


def test_schema_lists_come_from_the_registry():
    schema = config.load_schema()
    assert schema["properties"]["augmentation_setups"]["items"]["enum"] == list(registry.AUGMENTATION_SETUPS)
    assert schema["properties"]["training"]["properties"]["precision"]["enum"] == list(registry.PRECISIONS)
    assert "x-registry" not in str(schema)


def test_validation_fills_defaults_and_names_the_key():
    validated = config.validate_config(minimal())
    assert validated["training"]["precision"] == "fp16" and validated["training"]["epochs"] == 10
    assert validated["extraction"]["detection"]["margin"] == 30  # nested default through $ref
    assert validated["datasets"]["v"]["chunks"] == 1
    assert validated["demo"]["enabled"] is False and validated["demo"]["out"] == "resources/demo"
    # defaults are copies: filling one config leaves the next one's untouched
    validated["extraction"]["detection"]["margin"] = 99
    assert config.validate_config(minimal())["extraction"]["detection"]["margin"] == 30
    wrong = minimal() | {"training": {"precision": "fp8"}}
    with pytest.raises(config.ConfigError, match=r"training\.precision: 'fp8' is not one of"):
        config.validate_config(wrong)
    with pytest.raises(config.ConfigError, match="trainnig"):
        config.validate_config(minimal() | {"trainnig": {}})
    with pytest.raises(config.ConfigError, match=r"splits\.train_datasets\.0: 'w' is not a dataset"):
        config.validate_config(minimal() | {"splits": {"train_datasets": ["w"]}})


def test_package_defaults_are_the_schemas():
    schema = yaml.safe_load((REPO / "src" / "facesleuth" / "schemas" / "config.schema.yaml").read_text())
    augmentations = schema["properties"]["augmentations"]["properties"]
    assert augmentation_defaults() == {key: spec["default"] for key, spec in augmentations.items()}
    assert augmentation_defaults()["compression_quality"] == [60, 100] and len(augmentation_defaults()) == 13
    detection = schema["definitions"]["face_detection"]["properties"]
    assert extraction_defaults()["detection"] == {key: spec["default"] for key, spec in detection.items()}
    assert extraction_defaults()["test_flow"]["min_track_length"] == 50
    demo = schema["properties"]["demo"]["properties"]
    assert config.section_defaults("demo") == {key: spec["default"] for key, spec in demo.items()}


def test_config_docs_command_writes_the_readme(tmp_path, capsys):
    assert main(["config-docs"]) == 0
    assert capsys.readouterr().out == config.schema_markdown()
    out = tmp_path / "README.md"
    assert main(["config-docs", "--output", str(out)]) == 0
    assert out.read_text() == config.schema_markdown()


def test_ensemble_runs_must_be_grid_runs_and_methods_known():
    good = {**minimal(), "models": ["resnet50", "efb0_ns"], "augmentation_setups": ["none", "default"],
            "ensembles": {"pair": {"runs": ["resnet50/none", "efb0_ns/default"]}}}
    validated = config.validate_config(good)
    assert validated["ensembles"]["pair"]["method"] == "mean_probability"  # the default
    assert validated["evaluation"]["aggregations"] == [] and validated["evaluation"]["calibration"] is False
    stranger = {**good, "ensembles": {"pair": {"runs": ["resnet50/grid"]}}}
    with pytest.raises(config.ConfigError, match="ensembles.pair.runs.0: 'resnet50/grid' is not a run of the grid"):
        config.validate_config(stranger)
    with pytest.raises(config.ConfigError, match="ensembles.pair.method"):
        config.validate_config({**good, "ensembles": {"pair": {"runs": ["resnet50/none"], "method": "vote"}}})
    with pytest.raises(config.ConfigError, match="evaluation.aggregations.0"):
        config.validate_config({**good, "evaluation": {"testsets": [], "aggregations": ["mode"]}})
