"""The registry of shared names and the catalogue of tables and figures: what the thesis numbers,
and that a new setup needs its registry entry and chain, a new table its catalogue entry, caption
file and builder, nothing else (everything else is derived from them)."""

from __future__ import annotations

import re
from pathlib import Path

import albumentations as A
import pandas as pd
import pytest

from facesleuth import config, registry
from facesleuth.report import catalog
from facesleuth.train import augment
from facesleuth.report import tables
from facesleuth.extract.flows import NO_TRACK
from facesleuth.report.figures import make_figures
from facesleuth.scan import scanner
from facesleuth.extract.video import EMPTY, UNREADABLE
from report_captions import render_caption

REPO = Path(__file__).resolve().parents[1]

# The thesis's numbering (thesis.txt, lists of tables and figures), written out by hand.
THESIS_TABLES = {
    "params": "Table 2.1", "precision": "Table 2.3", "dfdc_logloss": "Table 3.1",
    "dfdc_fake_errors_by_distractor": "Table 3.2", "dfdc_real_errors_by_distractor": "Table 3.3",
    "dfdc_fake_errors_by_augmenter": "Table 3.4", "dfdc_real_errors_by_augmenter": "Table 3.5",
    "celebdf_sensitivity_specificity": "Table 3.6", "celebdf_f1": "Table 3.7",
}
THESIS_FIGURES = {
    "augmentation_examples": "Fig. 2.12", "train_loss": "Fig. 2.13", "validation_loss": "Fig. 2.14",
    "precision_epoch_time": "Fig. 2.15", "eer": "Fig. 3.1", "thresholds": "Fig. 3.2",
    "dfdc_logloss_none": "Fig. 3.3", "dfdc_logloss_default": "Fig. 3.4", "dfdc_logloss_grid": "Fig. 3.5",
    "dfdc_logloss_coarse": "Fig. 3.6", "dfdc_roc": "Fig. 3.7", "dfdc_misclassified_fake": "Fig. 3.8",
    "dfdc_misclassified_real": "Fig. 3.9", "celebdf_f1": "Fig. 3.10", "celebdf_misclassified_fake": "Fig. 3.11",
    "celebdf_misclassified_real": "Fig. 3.12",
}

# Entries of the project's own, beyond the thesis: no thesis number.
OWN_TABLES = {"robustness_auc": None, "robustness_logloss": None}
OWN_FIGURES = {"dfdc_logloss_sbi": None, "robustness_auc": None}


# Tables beyond the thesis (its discussion, 3.3): no thesis number.
BEYOND_THESIS_TABLES = ["calibration_logloss", "aggregations", "auc", "generalisation_auc"]
BEYOND_THESIS_FIGURES = ["generalisation_auc"]


def study_config(**evaluation) -> dict:
    return {
        "augmentation_setups": ["none", "default", "coarse", "grid"],
        "evaluation": {"dfdc_testset": None, "celebdf_testset": None, **evaluation},
        "precision_study": None,
    }


def test_numbers_are_the_thesis():
    assert {name: t.number for name, t in catalog.TABLES.items()} == {
        **THESIS_TABLES, **dict.fromkeys(BEYOND_THESIS_TABLES), **OWN_TABLES}
    assert {name: f.number for name, f in catalog.figures().items()} == {
        **THESIS_FIGURES, **dict.fromkeys(BEYOND_THESIS_FIGURES), **OWN_FIGURES}
    for entry in [*catalog.TABLES.values(), *catalog.figures().values()]:
        caption = render_caption(entry)
        assert len(caption) > 80 and caption.endswith("."), entry.name  # sentences, not a placeholder
        assert "{" not in caption and "}" not in caption, entry.name


def test_studies_beyond_the_thesis_are_made_when_asked_for():
    studies = study_config(testsets=["d", "c"], dfdc_testset="d", celebdf_testset="c", aggregations=["mean", "max"],
                           calibration=True, auc_table=True)
    assert set(BEYOND_THESIS_TABLES) - {"generalisation_auc"} <= set(catalog.wanted_tables(studies))
    matrix = {**studies, "generalisation": {"training_sets": {"dfdc": {"datasets": ["t"]}}}}
    assert "generalisation_auc" in catalog.wanted_tables(matrix) and "generalisation_auc" in catalog.wanted_figures(matrix)
    assert "generalisation_auc" not in catalog.wanted_figures(studies)
    # without test sets to compare on, none of them
    bare = study_config(testsets=[], aggregations=["mean"], calibration=True, auc_table=True)
    assert not set(BEYOND_THESIS_TABLES) & set(catalog.wanted_tables(bare))
    assert config.calibration_testsets(studies) == ["d", "c"]
    assert config.calibration_testsets(study_config(celebdf_testset="c")) == ["c"]


def test_every_builder_and_drawing_resolves_to_a_function():
    for table in catalog.TABLES.values():
        assert callable(registry.resolve(table.builder)), table.name
        assert set(table.settings) <= set(catalog.SETTINGS)
    for setup in registry.AUGMENTATION_SETUPS.values():
        assert callable(registry.resolve(setup.chain)), setup.name
    for figure in catalog.figures().values():
        assert callable(registry.resolve(catalog.DRAWINGS[figure.drawing])), figure.name


def test_aug_wildcard_accepts_setups_and_precision_variants_only():
    pattern = re.compile(registry.aug_pattern())
    good = ["none", "default", "coarse", "grid", "default-fp32", "grid-bf16", "none-fp16"]
    bad = ["", "fp32", "default-", "default-fp8", "defaults", "coarse-fp32-fp16", "Default"]
    assert all(pattern.fullmatch(aug) for aug in good)
    assert not any(pattern.fullmatch(aug) for aug in bad)


def test_statuses_have_one_home():
    limits = ("too_large", "too_long", "timed_out")
    assert registry.EXTRACTION_STATUSES == ("ok", "no_face", "no_track", "unreadable", "missing", *limits, "error")
    assert scanner.STATUSES == ("ok", "no_face", "unreadable", "unsupported", "missing", *limits, "error")
    assert scanner.FAILED_STATUSES == {"unreadable", "unsupported", "missing", *limits, "error"}
    assert registry.LIMIT_STATUSES == limits
    assert (NO_TRACK, UNREADABLE, EMPTY) == ("no_track", "unreadable", "empty")
    assert set(registry.STATUS_MEANINGS) == {*registry.EXTRACTION_STATUSES, *registry.SCAN_STATUSES, EMPTY}


def test_wanted_tables_and_figures_follow_the_config():
    assert catalog.wanted_tables(study_config()) == ["params"]
    assert catalog.wanted_figures(study_config()) == ["augmentation_examples", "train_loss", "validation_loss"]
    dfdc = study_config(dfdc_testset="dfdc_test")
    assert set(catalog.wanted_tables(dfdc)) == {"params", "dfdc_logloss"} | {
        f"dfdc_{label}_errors_by_{kind}" for label in ("fake", "real") for kind in ("distractor", "augmenter")
    }
    assert {"dfdc_logloss_none", "dfdc_logloss_grid", "eer"} <= set(catalog.wanted_figures(dfdc))
    study = {**dfdc, "precision_study": {"model": "m", "augmentation": "default", "runs": {"fp16": 64, "fp32": 32}}}
    assert "precision" in catalog.wanted_tables(study) and "precision_epoch_time" in catalog.wanted_figures(study)
    # the precision table needs the DFDC test set too; its figure does not
    no_dfdc = {**study_config(), "precision_study": study["precision_study"]}
    assert "precision" not in catalog.wanted_tables(no_dfdc)
    assert "precision_epoch_time" in catalog.wanted_figures(no_dfdc)
    everything = {**study, "evaluation": {"dfdc_testset": "d", "celebdf_testset": "c"}}
    assert catalog.wanted_tables(everything) == list(THESIS_TABLES)
    assert set(catalog.wanted_figures(everything)) == set(THESIS_FIGURES)
    # one log-loss figure per configured setup, in any order the config gives
    two = {**dfdc, "augmentation_setups": ["grid", "none"]}
    assert [f for f in catalog.wanted_figures(two) if f.startswith("dfdc_logloss_")] == [
        "dfdc_logloss_grid", "dfdc_logloss_none"]


def test_loss_figures_show_default_or_the_first_setup():
    assert config.loss_setup({"augmentation_setups": ["none", "default"]}) == "default"
    assert config.loss_setup({"augmentation_setups": ["grid", "coarse"]}) == "grid"


def test_every_table_and_figure_has_its_caption_file_and_no_other_exists():
    folder = Path(str(catalog.CAPTIONS))
    files = {path.relative_to(folder).as_posix() for path in folder.rglob("*.rst")}
    specs = [*catalog.TABLES.values(), *catalog.figures().values()]
    assert files == {spec.caption_file().relative_to(folder).as_posix() for spec in specs}
    # the log-loss figures share one caption, which names how each setup trained
    coarse = render_caption(catalog.logloss_figure("coarse"))
    assert coarse.startswith("DFDC video log loss of every model trained ") and "CoarseDropout" in coarse
    assert catalog.logloss_figure("coarse").caption_file() == catalog.logloss_figure("none").caption_file()


def test_the_workflow_takes_its_names_from_the_registry():
    """Nothing in the workflow spells a setup, precision, table or figure number (a new one would
    have to be added there too)."""
    text = "\n".join(p.read_text() for p in [REPO / "Snakefile", *sorted((REPO / "workflow").rglob("*.smk"))])
    assert not re.search(r"\b(Table|Fig\.) \d", text)
    assert "fp16" not in text and "bf16" not in text
    assert not re.search(r"[\"'](none|coarse|grid)[\"']", text)
    assert "registry.aug_pattern()" in text and "catalog.TABLES" in text
    assert not (REPO / "workflow" / "schemas").exists() and not (REPO / "workflow" / "report").exists()


# ---------------------------------------------------------------- a fifth setup and a tenth table


def dummy_chain(params: dict, input_size: int) -> list:
    return augment.default_chain(params) + [A.VerticalFlip(p=params["hflip_p"])]


@pytest.fixture
def fifth_setup(monkeypatch):
    """A setup registered in the registry alone, the way a new one would be."""
    entry = registry.AugmentationSetup("vflip", "Default + VerticalFlip", "with the default chain plus VerticalFlip",
                                       dummy_chain)
    monkeypatch.setitem(registry.AUGMENTATION_SETUPS, "vflip", entry)
    config._schema.cache_clear()
    yield entry
    config._schema.cache_clear()


def minimal_config(setups: list[str], precision: str = "fp16") -> dict:
    return {
        "datasets": {"v": {"format": "csv", "root": ".", "labels": "l.csv", "flow": "train"}},
        "models": ["resnet50"],
        "augmentation_setups": setups,
        "splits": {"train_datasets": ["v"]},
        "evaluation": {"testsets": []},
        "training": {"precision": precision},
        "precision_study": {"model": "resnet50", "augmentation": setups[-1], "runs": {"fp16": 64, "fp32": 32}},
    }


def test_a_fifth_setup_needs_only_its_registry_entry(fifth_setup, tmp_path):
    with pytest.raises(config.ConfigError, match="augmentation_setups"):
        config.validate_config(minimal_config(["none", "vflap"]))
    validated = config.validate_config(minimal_config(["none", "vflip"]))
    assert validated["augmentation_setups"] == ["none", "vflip"]
    assert re.fullmatch(registry.aug_pattern(), "vflip-fp32")
    compose = augment.build_augmentation("vflip", 64, {"hflip_p": 1.0}, seed=1)
    assert type(compose.transforms[-1]).__name__ == "VerticalFlip"
    assert tables.setup_label("vflip-bf16") == "Default + VerticalFlip (BF16)"
    wanted = catalog.wanted_figures({**validated, "evaluation": {"dfdc_testset": "d", "celebdf_testset": None}})
    assert "dfdc_logloss_vflip" in wanted
    caption = render_caption(catalog.figures(validated["augmentation_setups"])["dfdc_logloss_vflip"])
    assert caption.startswith("DFDC video log loss of every model trained with the default chain plus VerticalFlip")


def dummy_table(inputs: dict, settings: dict, scale: int) -> tables.Table:
    rows = [{"model": m, "value": scale * len(m)} for m in settings["models"]]
    body = tables.markdown_table(["Model", "Value"], [[r["model"], r["value"]] for r in rows])
    return tables.Table(pd.DataFrame(rows), tables._document("dummy", "Name lengths.", body))


def test_a_new_table_needs_only_its_catalog_entry_caption_and_builder(monkeypatch, tmp_path):
    caption_file = tmp_path / "dummy.rst"
    caption_file.write_text("the length of each model's name, times three. Each run is tested with the weights of\n"
                            "its epoch of lowest validation loss on {{ snakemake.params.caption.validation }}.\n")
    entry = catalog.TableSpec("dummy", "Table 9.9", str(caption_file), builder=dummy_table, settings=("models",),
                              options={"scale": 3}, needs=("celebdf_testset",))
    monkeypatch.setitem(catalog.TABLES, "dummy", entry)
    study = {**study_config(celebdf_testset="c"), "models": ["ab", "abcd"]}
    assert "dummy" in catalog.wanted_tables(study) and "dummy" not in catalog.wanted_tables(study_config())
    settings = entry.rule_settings(study)
    assert settings == {"models": ["ab", "abcd"]}
    table = tables.make_table("dummy", {}, settings, tmp_path / "d.csv", tmp_path / "d.md")
    assert pd.read_csv(tmp_path / "d.csv")["value"].tolist() == [6, 12]
    assert (tmp_path / "d.md").read_text().startswith("**Table 9.9.** Name lengths.") and table.markdown
    # its caption file, rendered as Snakemake's report does, names the validation data
    assert render_caption(entry) == ("the length of each model's name, times three. Each run is tested with the "
                                     "weights of\nits epoch of lowest validation loss on the validation data (not "
                                     "recorded).")


def test_unknown_table_and_figure_kinds_are_named():
    with pytest.raises(tables.TableError, match="unknown table 'tabel_2'"):
        tables.make_table("tabel_2", {}, {}, "x.csv", "x.md")
    with pytest.raises(ValueError, match="unknown figure kind 'rok'"):
        make_figures("rok", {}, {}, {})
